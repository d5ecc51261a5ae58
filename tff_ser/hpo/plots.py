"""Figures of paper 000's grid: Figs 2-4, sensitivity, and the sampler comparison.

Like :mod:`tff_ser.plots`, every function takes a plain table and returns a
:class:`matplotlib.figure.Figure` built without ``pyplot``;
:func:`save_figure` writes a PNG.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tff_ser.hpo.analysis import pareto_mask
from tff_ser.hpo.space import ABBREVIATIONS, PAPER_000_DEFAULT, VARIABLES, point_key
from tff_ser.plots import save_figure

__all__ = ["plot_accuracy_by_lr", "plot_time_by_variables", "plot_pareto_front",
           "plot_sensitivity", "plot_sampler_comparison", "save_figure"]

ACC, CT = "accuracy", "computation_time"


def _by_other_variables(table: pd.DataFrame, variable: str, objective: str):
    """One series per level of ``variable``, aligned on the combinations of the others.

    Returns (labels of the other-variable combinations, {level: values}).
    """
    others = [v for v in VARIABLES if v != variable]
    wide = table.pivot_table(index=others, columns=variable, values=objective, aggfunc="first")
    wide = wide.sort_index()
    labels = [" ".join(f"{ABBREVIATIONS[v]}{x:g}" for v, x in zip(others, idx))
              for idx in wide.index]
    return labels, {level: wide[level].to_numpy() for level in wide.columns}


def _experiment_axis(ax, n: int, others: Sequence[str]) -> None:
    ax.set_xlabel(f"experiment (combinations of {', '.join(ABBREVIATIONS[v] for v in others)}, "
                  f"{n} in all)")
    ax.set_xlim(-0.5, n - 0.5)


def plot_accuracy_by_lr(table: pd.DataFrame) -> Figure:
    """Fig 2: accuracy of every experiment, one curve per learning rate."""
    labels, series = _by_other_variables(table, "client_lr", ACC)
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    x = np.arange(len(labels))
    for level, values in series.items():
        ax.plot(x, values, marker=".", lw=1, label=f"LR = {level:g}")
    _experiment_axis(ax, len(labels), [v for v in VARIABLES if v != "client_lr"])
    ax.set_ylabel("Acc (mean over validation clients)")
    ax.set_title("Accuracy by client learning rate (paper 000 Fig 2)")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_time_by_variables(table: pd.DataFrame,
                           variables: Sequence[str] = ("rounds", "client_fraction",
                                                       "local_epochs")) -> Figure:
    """Fig 3: computation time of every experiment, one panel per variable, a curve per level."""
    fig = Figure(figsize=(10, 3.2 * len(variables)))
    for i, variable in enumerate(variables):
        ax = fig.add_subplot(len(variables), 1, i + 1)
        labels, series = _by_other_variables(table, variable, CT)
        x = np.arange(len(labels))
        for level, values in series.items():
            ax.plot(x, values, marker=".", lw=1, label=f"{ABBREVIATIONS[variable]} = {level:g}")
        _experiment_axis(ax, len(labels), [v for v in VARIABLES if v != variable])
        ax.set_yscale("log")
        ax.set_ylabel("CT (s)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, ncol=len(series))
    fig.suptitle("Computation time by NGE, CD and NLE (paper 000 Fig 3)")
    fig.tight_layout()
    return fig


def plot_pareto_front(table: pd.DataFrame) -> Figure:
    """Fig 4: every grid point, the Pareto front of {max Acc, min CT}, and the default setup."""
    mask = pareto_mask(table[ACC], table[CT])
    front = table[mask].sort_values(CT)
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    ax.scatter(table.loc[~mask, CT], table.loc[~mask, ACC], s=10, color="0.6",
               label="dominated points")
    ax.step(front[CT], front[ACC], where="post", color="C3", lw=1)
    ax.scatter(front[CT], front[ACC], s=30, color="C3", zorder=3, label="Pareto-optimal points")
    for i, (_, row) in enumerate(front.iterrows()):
        ax.annotate(str(i + 1), (row[CT], row[ACC]), textcoords="offset points", xytext=(4, -10),
                    fontsize=8, color="C3")
    default = [k for k, row in table.iterrows() if point_key(row) == point_key(PAPER_000_DEFAULT)]
    if default:
        row = table.loc[default[0]]
        ax.scatter([row[CT]], [row[ACC]], marker="*", s=120, color="C0", zorder=4,
                   label="default setup (NGE200 NLE3 LR0.001 BS32 CD1.0)")
    ax.set_xscale("log")
    ax.set_xlabel("CT (s, log scale)")
    ax.set_ylabel("Acc (mean over validation clients)")
    ax.set_title("Pareto front (paper 000 Fig 4)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_sensitivity(summary: pd.DataFrame) -> Figure:
    """Main-effect share of each variable for Acc and log CT (``sensitivity_summary``)."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    x = np.arange(len(summary))
    ax.bar(x - 0.2, summary["acc_share"], width=0.4, label="Acc")
    ax.bar(x + 0.2, summary["ct_share"], width=0.4, label="log CT")
    ax.set_xticks(x, summary["variable"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of variance (main effect)")
    ax.set_title("Which variable moves which objective")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return fig


def plot_sampler_comparison(traces: pd.DataFrame, grid: pd.DataFrame) -> Figure:
    """Best accuracy found and hypervolume ratio against distinct evaluations, per sampler."""
    fig = Figure(figsize=(11, 4))
    ax_best, ax_hv = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colors = itertools.cycle([f"C{i}" for i in range(10)])
    for sampler, group in traces.groupby("sampler", sort=False):
        color = next(colors)
        best = group.pivot_table(index="evaluation", columns="seed", values="best_accuracy")
        hv = group.pivot_table(index="evaluation", columns="seed", values="hv_ratio")
        ax_best.plot(best.index, best.mean(axis=1), color=color, label=sampler)
        ax_best.fill_between(best.index, best.min(axis=1), best.max(axis=1), color=color,
                             alpha=0.15)
        ax_hv.plot(hv.index, hv.mean(axis=1), color=color, label=sampler)
        ax_hv.fill_between(hv.index, hv.min(axis=1), hv.max(axis=1), color=color, alpha=0.15)
    ax_best.axhline(float(grid[ACC].max()), color="k", ls="--", lw=1, label="grid best")
    ax_best.set_xlabel("distinct points evaluated")
    ax_best.set_ylabel("best Acc so far")
    ax_best.grid(alpha=0.3)
    ax_best.legend(fontsize=8)
    ax_hv.axhline(1.0, color="k", ls="--", lw=1)
    ax_hv.set_xlabel("distinct points evaluated")
    ax_hv.set_ylabel("hypervolume / grid's hypervolume")
    ax_hv.grid(alpha=0.3)
    fig.suptitle("Samplers on the grid's space, scored by lookup in the grid "
                 "(mean and range over seeds)")
    fig.tight_layout()
    return fig
