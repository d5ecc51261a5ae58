"""Paper 000's analysis of the grid: SOO, Pareto MOO, sensitivity, sampler comparison.

Everything here is a pure function of the grid table (one row per point:
the five variables, ``accuracy`` and ``computation_time``), so the same
code reads a fresh study, a saved ``grid.csv`` or a hand-made table.

* :func:`soo_table` -- Table I: the default setup, the point of best
  accuracy (problem (1)) and of least computation time (problem (7));
* :func:`pareto_front` -- Table II and Fig 4: the non-dominated points of
  {max Acc, min CT} (problem (8));
* :func:`sensitivity_table` -- how much each variable moves each objective
  (per-level mean and range, and the share of variance each variable's main
  effect explains);
* :func:`hypervolume_2d`, :func:`hypervolume_ratio`,
  :func:`evaluations_to_best` -- the yardsticks of the sampler comparison.

:func:`write_report` writes all of it (tables, figures, ``summary.md``).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.hpo.space import (ABBREVIATIONS, PAPER_000_DEFAULT, PAPER_000_TABLE_I,
                               PAPER_000_TABLE_II, VARIABLES, GridSpace, point_key)

from tff_ser.hpo.analysis import (ACC, CT, HV_REFERENCE, _require,  # noqa: F401 (re-exported)
                                  evaluations_to_best, hypervolume_2d, hypervolume_ratio,
                                  main_effect_share, normalised_objectives, pareto_mask,
                                  sensitivity_summary, sensitivity_table)


# --------------------------------------------------------------------------
# single- and multi-objective solutions
# --------------------------------------------------------------------------

def find_point(table: pd.DataFrame, point: Mapping) -> Optional[pd.Series]:
    """The row of ``point`` in ``table`` (None if it is not there)."""
    _require(table, VARIABLES)
    target = point_key(point)
    for _, row in table.iterrows():
        if point_key(row) == target:
            return row
    return None


def best_accuracy(table: pd.DataFrame) -> pd.Series:
    """Problem (1): the point of highest Acc (ties: the faster one)."""
    _require(table, (ACC, CT))
    return table.sort_values([ACC, CT], ascending=[False, True], kind="mergesort").iloc[0]


def best_time(table: pd.DataFrame) -> pd.Series:
    """Problem (7): the point of least CT (ties: the more accurate one)."""
    _require(table, (ACC, CT))
    return table.sort_values([CT, ACC], ascending=[True, False], kind="mergesort").iloc[0]


def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """Problem (8): the Pareto-optimal points, fastest first (Table II)."""
    _require(table, (ACC, CT))
    front = table[pareto_mask(table[ACC], table[CT])]
    return front.sort_values([CT, ACC], ascending=[True, False], kind="mergesort")


def soo_table(table: pd.DataFrame, *, default: Mapping = PAPER_000_DEFAULT) -> pd.DataFrame:
    """Table I: default setup, optimal accuracy, optimal computation time."""
    _require(table, tuple(VARIABLES) + (ACC, CT))
    rows = []
    default_row = find_point(table, default)
    if default_row is not None:
        rows.append(("Default setup", default_row))
    rows += [("Optimal accuracy", best_accuracy(table)), ("Optimal comp. time", best_time(table))]
    return pd.DataFrame([_display_row(label, row) for label, row in rows])


def _display_row(label: str, row) -> dict:
    out = {"Results": label, "Acc": float(row[ACC])}
    for v in VARIABLES:
        # iterrows() turns a mixed row into floats; NGE, NLE and BS are counts.
        out[ABBREVIATIONS[v]] = float(row[v]) if v in ("client_lr", "client_fraction") \
            else int(row[v])
    out["Time (s)"] = float(row[CT])
    return out


def pareto_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table II: the Pareto-optimal points in the paper's columns."""
    front = pareto_front(table)
    return pd.DataFrame([_display_row(f"Point {i + 1}", row)
                         for i, (_, row) in enumerate(front.iterrows())]).rename(
        columns={"Results": "POP"})


def paper_tables() -> Dict[str, pd.DataFrame]:
    """Paper 000's own Tables I and II (CREMA-D, the authors' laptop), for comparison."""
    t1 = pd.DataFrame([_display_row(r["result"], r) for r in PAPER_000_TABLE_I])
    t2 = pd.DataFrame([{"POP": f"Point {i + 1}", "Acc": r[0], "NGE": r[1], "NLE": r[2],
                        "LR": r[3], "BS": r[4], "CD": r[5], "Time (s)": r[6]}
                       for i, r in enumerate(PAPER_000_TABLE_II)])
    return {"table_i": t1, "table_ii": t2}


# --------------------------------------------------------------------------
# sensitivity
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# hypervolume and sampler yardsticks
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# time estimates
# --------------------------------------------------------------------------

def naive_tff_seconds(table: pd.DataFrame, naive_model: Mapping, *,
                      client_sizes: Sequence[int]) -> np.ndarray:
    """Estimated TFF-process CT of each grid point from the round-time model of
    ``benchmarks/bench_round.py``: ``fixed + clients * (per_client + per_step * steps)``.

    ``client_sizes`` are the training clients' clip counts; local steps are
    ``ceil(NLE * clips / BS)`` at the mean client size.
    """
    from tff_ser.fedconfig import sampled_per_round
    n = len(client_sizes)
    mean_clips = float(np.mean(client_sizes))
    out = []
    for _, row in table.iterrows():
        clients = sampled_per_round(n, float(row["client_fraction"]))
        steps = math.ceil(int(row["local_epochs"]) * mean_clips / int(row["batch_size"]))
        per_round = naive_model["fixed_s"] + clients * (
            naive_model["per_client_s"] + naive_model["per_client_step_s"] * steps)
        out.append(int(row["rounds"]) * per_round)
    return np.asarray(out)


def load_naive_model(path: str = "results/benchmarks/round_ratio.json") -> Optional[dict]:
    """The fitted TFF round-time model of the benchmark, if it has been run."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        data = json.load(f)
    model = data.get("naive_model")
    if not model or not all(k in model for k in ("fixed_s", "per_client_s", "per_client_step_s")):
        return None
    return {k: model[k] for k in ("fixed_s", "per_client_s", "per_client_step_s")} | {
        "source": path, "date": data.get("machine", {}).get("date")}


# --------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------

def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub markdown table (no external dependency)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            if math.isnan(v):
                return ""
            return format(v, floatfmt) if abs(v) >= 1e-3 or v == 0 else format(v, "g")
        return str(v)
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
                          for c in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule] + body)


def _format_points(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("LR", "CD"):
        if col in out:
            out[col] = out[col].map(lambda v: f"{float(v):g}")
    if "Time (s)" in out:
        out["Time (s)"] = out["Time (s)"].map(lambda v: f"{float(v):.2f}")
    return out


def sampler_summary(traces: pd.DataFrame, grid: pd.DataFrame,
                    checkpoints: Sequence[int] = (10, 25, 50, 100, 200)) -> pd.DataFrame:
    """Per sampler: evaluations to the grid's best accuracy and HV ratio at a few budgets.

    The HV ratio columns are the mean over seeds at ``checkpoints`` below the
    budget and at the budget itself.

    ``traces`` holds one row per distinct evaluation (``sampler``, ``seed``,
    ``evaluation``, ``accuracy``, ``computation_time``, ``hv_ratio``).
    """
    best = float(grid[ACC].max())
    rows = []
    for sampler, group in traces.groupby("sampler", sort=False):
        seeds = sorted(group["seed"].unique())
        hits = []
        for seed in seeds:
            run = group[group["seed"] == seed].sort_values("evaluation")
            hits.append(evaluations_to_best(run[ACC].tolist(), best))
        reached = [h for h in hits if h is not None]
        budget = int(group["budget"].max()) if "budget" in group else \
            int(group["evaluation"].max())
        row = {"sampler": sampler, "seeds": len(seeds), "budget": budget,
               "distinct_mean": float(group.groupby("seed")["evaluation"].max().mean()),
               "reached_best": f"{len(reached)}/{len(seeds)}",
               "evals_to_best_mean": float(np.mean(reached)) if reached else float("nan"),
               "evals_to_best_max": float(np.max(reached)) if reached else float("nan")}
        for c in sorted({c for c in checkpoints if c < budget} | {budget}):
            at = group[group["evaluation"] == c]["hv_ratio"]
            row[f"hv_ratio@{c}"] = float(at.mean()) if len(at) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# the report folder
# --------------------------------------------------------------------------

def write_report(out_dir, table: pd.DataFrame, *, space: GridSpace, info: Mapping,
                 traces: Optional[pd.DataFrame] = None,
                 naive_model: Optional[Mapping] = None,
                 client_sizes: Optional[Sequence[int]] = None) -> Dict[str, pathlib.Path]:
    """Write the grid's tables, figures and ``summary.md`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
    table : DataFrame
        One row per finished grid point (:func:`tff_ser.hpo.readout.grid_table`).
    space : GridSpace
    info : mapping
        Provenance for the summary: ``corpus``, ``command``, ``engine``,
        ``server_lr``, ``seed``, ``study``, ``storage``, ``wall_seconds``,
        ``compute_seconds`` (training seconds actually spent on trajectories).
    traces : DataFrame, optional
        Sampler comparison traces (:func:`tff_ser.hpo.readout.compare_samplers`).
    naive_model : mapping, optional
        TFF round-time model (:func:`load_naive_model`) for the naive estimate.
    client_sizes : sequence of int, optional
        Training clients' clip counts (needed with ``naive_model``).

    Returns
    -------
    dict
        Name -> path of every file written.
    """
    from tff_ser.hpo import plots
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _require(table, tuple(VARIABLES) + (ACC, CT))
    files: Dict[str, pathlib.Path] = {}
    table = table.copy()
    if naive_model is not None and client_sizes is not None:
        table["naive_tff_seconds_estimate"] = naive_tff_seconds(table, naive_model,
                                                                client_sizes=client_sizes)
    files["grid"] = out / "grid.csv"
    table.to_csv(files["grid"], index=False)

    t1, t2 = soo_table(table), pareto_table(table)
    sens = sensitivity_table(table)
    sens_summary = sensitivity_summary(sens)
    files["table_i"] = _write_text(out / "table_i_soo.md", markdown_table(_format_points(t1)))
    files["table_ii"] = _write_text(out / "table_ii_pareto.md", markdown_table(_format_points(t2)))
    files["sensitivity"] = out / "sensitivity.csv"
    sens.to_csv(files["sensitivity"], index=False)
    files["sensitivity_md"] = _write_text(out / "sensitivity.md",
                                          markdown_table(sens_summary) + "\n\n"
                                          + markdown_table(sens))
    sampler_md = None
    if traces is not None and len(traces):
        files["sampler_traces"] = out / "sampler_traces.csv"
        traces.to_csv(files["sampler_traces"], index=False)
        sampler_md = markdown_table(sampler_summary(traces, table))
        files["sampler_comparison"] = _write_text(out / "sampler_comparison.md", sampler_md)

    figures = {
        "fig2_accuracy_by_lr": plots.plot_accuracy_by_lr(table),
        "fig3_time_by_nge_cd_nle": plots.plot_time_by_variables(table),
        "fig4_pareto_front": plots.plot_pareto_front(table),
        "fig_sensitivity": plots.plot_sensitivity(sens_summary),
    }
    if traces is not None and len(traces):
        figures["fig_samplers"] = plots.plot_sampler_comparison(traces, table)
    for name, fig in figures.items():
        files[name] = plots.save_figure(fig, out / f"{name}.png")

    files["summary"] = _write_text(out / "summary.md", _summary_markdown(
        table, space=space, info=info, t1=t1, t2=t2, sens_summary=sens_summary,
        sampler_md=sampler_md, naive_model=naive_model, figures=figures))
    return files


def _write_text(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path


def _hours(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def _summary_markdown(table, *, space, info, t1, t2, sens_summary, sampler_md, naive_model,
                      figures) -> str:
    import tff_ser
    complete = len(table)
    total_ct = float(table[CT].sum())
    lines = [
        f"# Paper 000's hyperparameter grid ({space.name}, {complete}/{len(space)} points)",
        "",
        f"- corpus: {info.get('corpus', 'unknown')}",
        f"- command: `{info.get('command', 'unknown')}`",
        f"- tff_ser {tff_ser.__version__}, written "
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- engine: {info.get('engine', 'batched')}; client and server Adam, server learning "
        f"rate {info.get('server_lr')}, seed {info.get('seed')}. {info.get('server_lr_note', '')}",
        f"- study: `{info.get('study')}` in `{info.get('storage')}`",
        f"- wall time of the study (first trial start to last finish): "
        f"{_hours(float(info.get('wall_seconds') or 0.0))}",
        "- Acc = mean accuracy over the validation clients (held-out speakers); CT = sum of "
        "the NGE per-round training times (compilation, evaluation and checkpointing "
        "excluded).",
        f"- total CT over the grid (every point trained on its own, as the paper counts): "
        f"{_hours(total_ct)}",
    ]
    if info.get("compute_seconds") is not None:
        lines.append(
            f"- training actually spent (each (NLE, LR, BS, CD) trajectory trained once to "
            f"NGE {space.final_round}, shorter NGE read off it): "
            f"{_hours(float(info['compute_seconds']))}")
    if naive_model is not None and "naive_tff_seconds_estimate" in table:
        naive = float(table["naive_tff_seconds_estimate"].sum())
        lines.append(
            f"- the same grid through the TFF process, estimated from the round-time model of "
            f"`{naive_model.get('source')}` ({naive_model.get('date')}): {_hours(naive)} "
            f"(x{naive / max(total_ct, 1e-9):.0f} the grid's total CT)")
    lines += ["", "## Table I: single-objective solutions", "", markdown_table(_format_points(t1)),
              "", "Paper 000 on CREMA-D (for comparison; different corpus and machine):", "",
              markdown_table(_format_points(paper_tables()["table_i"])),
              "", "## Table II: Pareto-optimal points", "", markdown_table(_format_points(t2)),
              "", "Paper 000 on CREMA-D:", "",
              markdown_table(_format_points(paper_tables()["table_ii"])),
              "", "## Sensitivity", "",
              "Share of each objective's variance explained by one variable's main effect "
              "(CT on a log scale), the spread of the per-level mean accuracy, and the ratio "
              "of the slowest to the fastest per-level mean CT:", "",
              markdown_table(sens_summary), ""]
    if sampler_md:
        lines += ["## Samplers on the same space", "",
                  "TPE, NSGA-II and random search over the same categorical space.  The "
                  "objective is deterministic per point, so these studies are evaluated by "
                  "LOOKING UP the grid's recorded (Acc, CT), not by training again; an "
                  "evaluation is a distinct point (a repeated suggestion costs nothing). "
                  "Hypervolume: Acc and log CT scaled to [0, 1] by the grid's best and worst "
                  f"values, both minimised, reference point {HV_REFERENCE} (the grid's worst "
                  "Acc and slowest CT), as a ratio to the whole grid's hypervolume; averaged "
                  "over sampler seeds.", "", sampler_md, ""]
    lines += ["## Figures", ""] + [f"![{name}]({name}.png)" for name in figures] + [""]
    return "\n".join(lines)
