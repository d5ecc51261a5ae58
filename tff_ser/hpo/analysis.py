"""The pure analysis of a grid table: Pareto front, hypervolume, sensitivity.

Functions of arrays and tables only (no study, no files, no figures), so
:mod:`tff_ser.hpo.report` (tables and ``summary.md``) and
:mod:`tff_ser.hpo.plots` (figures) both import from here and not from each
other.  The hypervolume is checked against Optuna's own (the values behind
``optuna.visualization.matplotlib.plot_hypervolume_history``) in
``tests/unit/test_hpo_analysis.py``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.hpo.space import ABBREVIATIONS, VARIABLES

ACC, CT = "accuracy", "computation_time"

#: Hypervolume reference point in the normalised minimisation space of
#: :func:`normalised_objectives`: the grid's nadir (its worst Acc, its
#: slowest CT).
HV_REFERENCE = (1.0, 1.0)


def _require(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"the grid table lacks columns {missing}; it needs {list(columns)} "
                         "(tff_ser.hpo.readout.grid_table builds it)")
    if table.empty:
        raise ValueError("the grid table is empty: no grid point has finished yet")


def pareto_mask(accuracy: Sequence[float], time: Sequence[float]) -> np.ndarray:
    """Which points are non-dominated for {max Acc, min CT}.

    A point is dominated when another is at least as accurate and at least as
    fast, and strictly better in one of the two.  Identical points are both kept.
    """
    acc = np.asarray(accuracy, float)
    t = np.asarray(time, float)
    keep = np.ones(len(acc), bool)
    for i in range(len(acc)):
        no_worse = (acc >= acc[i]) & (t <= t[i])
        better = (acc > acc[i]) | (t < t[i])
        keep[i] = not np.any(no_worse & better)
    return keep


def main_effect_share(table: pd.DataFrame, variable: str, objective: str) -> float:
    """Share of the objective's variance explained by ``variable``'s main effect.

    ``Var(E[y | variable]) / Var(y)`` (the first-order Sobol index, or eta
    squared).  On a full factorial grid the main effects are orthogonal, so
    the shares of the five variables add up to at most 1; the rest is
    interactions.
    """
    y = table[objective].astype(float)
    total = float(np.var(y))
    if total == 0.0:
        return 0.0
    level_means = y.groupby(table[variable]).transform("mean")
    return float(np.var(level_means)) / total


def sensitivity_table(table: pd.DataFrame, *, log_time: bool = True) -> pd.DataFrame:
    """Per variable and level: mean, min and max of Acc and CT, and main-effect shares.

    Returns one row per (variable, level) with ``acc_mean``, ``acc_min``,
    ``acc_max``, ``ct_mean``, ``ct_min``, ``ct_max`` and, repeated on each
    level row of a variable, ``acc_share`` and ``ct_share`` from
    :func:`main_effect_share`.  With ``log_time`` the CT share is computed
    on log10(CT): time is multiplicative in NGE, CD and NLE, and on a log
    scale their effects add.
    """
    _require(table, tuple(VARIABLES) + (ACC, CT))
    work = table.copy()
    ct_column = CT
    if log_time:
        work["log10_computation_time"] = np.log10(work[CT].astype(float))
        ct_column = "log10_computation_time"
    rows = []
    for v in VARIABLES:
        acc_share = main_effect_share(work, v, ACC)
        ct_share = main_effect_share(work, v, ct_column)
        for level, group in work.groupby(v):
            rows.append({"variable": ABBREVIATIONS[v], "level": level,
                         "acc_mean": group[ACC].mean(), "acc_min": group[ACC].min(),
                         "acc_max": group[ACC].max(),
                         "ct_mean": group[CT].mean(), "ct_min": group[CT].min(),
                         "ct_max": group[CT].max(),
                         "acc_share": acc_share, "ct_share": ct_share})
    return pd.DataFrame(rows)


def sensitivity_summary(sensitivity: pd.DataFrame) -> pd.DataFrame:
    """One row per variable: main-effect shares and the spread of level means."""
    out = []
    for var, group in sensitivity.groupby("variable", sort=False):
        out.append({"variable": var, "acc_share": group["acc_share"].iloc[0],
                    "acc_level_mean_range": group["acc_mean"].max() - group["acc_mean"].min(),
                    "ct_share": group["ct_share"].iloc[0],
                    "ct_level_mean_ratio": group["ct_mean"].max() / group["ct_mean"].min()})
    return pd.DataFrame(out)


def hypervolume_2d(points: Sequence[Sequence[float]],
                   reference: Sequence[float] = HV_REFERENCE) -> float:
    """Area dominated by ``points`` (both objectives minimised) below ``reference``.

    Points not strictly better than the reference in both objectives add nothing.
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    r1, r2 = float(reference[0]), float(reference[1])
    pts = pts[(pts[:, 0] < r1) & (pts[:, 1] < r2)]
    if len(pts) == 0:
        return 0.0
    # Non-dominated staircase: by f1 ascending, each step lowers f2.
    front, best_f2 = [], r2
    for f1, f2 in pts[np.lexsort((pts[:, 1], pts[:, 0]))]:
        if f2 < best_f2:
            front.append((f1, f2))
            best_f2 = f2
    edges = [f1 for f1, _ in front[1:]] + [r1]
    return float(sum((right - f1) * (r2 - f2) for (f1, f2), right in zip(front, edges)))


def normalised_objectives(accuracy: Sequence[float], time: Sequence[float], *,
                          grid: pd.DataFrame) -> np.ndarray:
    """Both objectives minimised and scaled to [0, 1] over the grid.

    Column 0: ``(max Acc - Acc) / (max Acc - min Acc)``; column 1:
    ``(log CT - log min CT) / (log max CT - log min CT)``.  Time is scaled on a
    log axis because it spans two orders of magnitude over the grid (NGE x CD
    x NLE); on a linear axis every point faster than a tenth of the slowest
    would look equally fast.  (0, 0) is the grid's ideal, (1, 1) its nadir.
    """
    acc_grid = grid[ACC].astype(float)
    log_grid = np.log(grid[CT].astype(float))
    acc_span = max(float(acc_grid.max() - acc_grid.min()), 1e-12)
    log_span = max(float(log_grid.max() - log_grid.min()), 1e-12)
    f1 = (float(acc_grid.max()) - np.asarray(accuracy, float)) / acc_span
    f2 = (np.log(np.asarray(time, float)) - float(log_grid.min())) / log_span
    return np.column_stack([f1, f2])


def hypervolume_ratio(accuracy: Sequence[float], time: Sequence[float], *,
                      grid: pd.DataFrame) -> float:
    """Hypervolume of the given points over that of the whole grid (1.0 = the grid's front).

    Objectives as in :func:`normalised_objectives`, reference point
    :data:`HV_REFERENCE` (the grid's nadir).
    """
    full = hypervolume_2d(normalised_objectives(grid[ACC], grid[CT], grid=grid))
    if full == 0.0:
        return float("nan")
    return hypervolume_2d(normalised_objectives(accuracy, time, grid=grid)) / full


def evaluations_to_best(accuracies: Sequence[float], best: float, *,
                        atol: float = 1e-12) -> Optional[int]:
    """1-based count of evaluations until one reaches ``best`` accuracy (None: never)."""
    for i, a in enumerate(accuracies):
        if a >= best - atol:
            return i + 1
    return None
