"""Reading a study: its tables and counts, samplers compared by lookup, the report."""
from __future__ import annotations

import os
import pathlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.hpo.objective import (RunSettings, SERVER_LR_NOTE,
                                   settings_digest)
from tff_ser.hpo.space import VARIABLES, GridSpace, point_key
from tff_ser.hpo.storage import (PER_SPEAKER_ATTR, TRAJECTORY_DIR, _distributions, _optuna,
                                  _trial_point, completed_points, load_study, mask_url,
                                  study_settings)


# --------------------------------------------------------------------------
# reading the study
# --------------------------------------------------------------------------

def grid_table(study) -> pd.DataFrame:
    """One row per finished grid point: the five variables, Acc, CT and provenance.

    If a point somehow finished twice, its lowest-numbered trial is kept.
    """
    optuna = _optuna()
    rows, seen = [], set()
    for trial in sorted(study.get_trials(deepcopy=False,
                                         states=(optuna.trial.TrialState.COMPLETE,)),
                        key=lambda t: t.number):
        point = _trial_point(trial)
        if point is None or point_key(point) in seen:
            continue
        seen.add(point_key(point))
        attrs = trial.user_attrs
        rows.append({"trial": trial.number, **point,
                     "accuracy": trial.values[0], "computation_time": trial.values[1],
                     **{k: v for k, v in attrs.items()
                        if k.startswith("validation_") and k != PER_SPEAKER_ATTR},
                     "trajectory": attrs.get("trajectory"),
                     "rounds_computed": attrs.get("rounds_computed"),
                     "engine": attrs.get("engine"), "host": attrs.get("host"),
                     "retry_of": attrs.get("retry_of"),
                     "started": trial.datetime_start, "finished": trial.datetime_complete})
    columns = ["trial", *VARIABLES, "accuracy", "computation_time"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def per_speaker_table(study) -> pd.DataFrame:
    """Each finished point's accuracy on each validation speaker (client).

    One row per point of :func:`grid_table` (same ``trial``), one column per
    held-out speaker; empty when the study predates per-speaker scores
    (studies written before 2026-12-02 kept only the client mean).
    """
    table = grid_table(study)
    optuna = _optuna()
    by_number = {t.number: t for t in study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))}
    rows = []
    for number in table.get("trial", []):
        scores = by_number[int(number)].user_attrs.get(PER_SPEAKER_ATTR)
        if scores is None:
            return pd.DataFrame()
        rows.append({"trial": int(number), **scores})
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


def study_counts(study) -> Dict[str, int]:
    """Trials per state, and distinct finished points."""
    counts: Dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    counts["points_complete"] = completed_points(study)
    return counts


def study_wall_seconds(study) -> float:
    """First trial start to last trial finish."""
    optuna = _optuna()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    starts = [t.datetime_start for t in done if t.datetime_start]
    ends = [t.datetime_complete for t in done if t.datetime_complete]
    if not starts or not ends:
        return 0.0
    return (max(ends) - min(starts)).total_seconds()


def trajectory_compute_seconds(directory: str, study) -> Optional[float]:
    """Training seconds actually spent: per trajectory, the sum of its saved rounds' times."""
    from tff_ser.hpo.objective import read_progress
    settings = study_settings(study)
    root = os.path.join(directory, TRAJECTORY_DIR,
                        settings_digest(RunSettings(**settings["run"]), settings["task"]))
    if not os.path.isdir(root):
        return None
    total = 0.0
    for key in os.listdir(root):
        rows = read_progress(os.path.join(root, key))["rows"]
        total += sum(r["seconds"] for r in rows)
    return total


# --------------------------------------------------------------------------
# sampler comparison by lookup
# --------------------------------------------------------------------------

SAMPLERS = ("random", "tpe", "nsga2")


def make_sampler(name: str, seed: int, *, budget: int):
    """An Optuna sampler by name, seeded."""
    optuna = _optuna()
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed,
                                             population_size=max(4, min(50, budget // 8)))
    raise ValueError(f"unknown sampler {name!r}; choose from {SAMPLERS}")


def compare_samplers(table: pd.DataFrame, space: GridSpace, *,
                     samplers: Sequence[str] = SAMPLERS, seeds: Sequence[int] = range(5),
                     budget: Optional[int] = None, max_trials_factor: int = 3) -> pd.DataFrame:
    """Run each sampler on the grid's space, scoring points by LOOKUP in the grid table.

    Parameters
    ----------
    table : DataFrame
        The finished grid (:func:`grid_table`); must hold every point of ``space``.
    space : GridSpace
    samplers : sequence of str
        Names from :data:`SAMPLERS`.
    seeds : sequence of int
        Sampler seeds; results are reported per seed and averaged.
    budget : int, optional
        Distinct points each run may evaluate (default: a third of the grid,
        at least 8 and at most all of it).
    max_trials_factor : int
        A run also stops after ``budget * max_trials_factor`` suggestions
        (samplers repeat points on a small categorical space; a repeat is a
        lookup of a known value and costs no evaluation).

    Returns
    -------
    DataFrame
        One row per distinct evaluation: ``sampler``, ``seed``, ``budget``,
        ``evaluation`` (1-based), the point, ``accuracy``, ``computation_time``,
        ``best_accuracy`` (so far) and ``hv_ratio`` (hypervolume of the
        points so far over the grid's, see :func:`tff_ser.hpo.report.hypervolume_ratio`).
    """
    from tff_ser.hpo.analysis import hypervolume_2d, normalised_objectives
    optuna = _optuna()
    lookup = {point_key(row): (float(row["accuracy"]), float(row["computation_time"]))
              for _, row in table.iterrows()}
    missing = [p for p in space.points() if point_key(p) not in lookup]
    if missing:
        raise ValueError(f"{len(missing)} grid points have no result yet (e.g. {missing[0]}); "
                         "finish the grid before comparing samplers")
    budget = budget or min(len(space), max(8, len(space) // 3))
    full_hv = hypervolume_2d(normalised_objectives(table["accuracy"], table["computation_time"],
                                                   grid=table))
    distributions = _distributions(space)
    rows = []
    for name in samplers:
        for seed in seeds:
            study = optuna.create_study(directions=["maximize", "minimize"],
                                        sampler=make_sampler(name, int(seed), budget=budget))
            seen: Dict[tuple, tuple] = {}
            order: List[tuple] = []
            for _ in range(budget * max_trials_factor):
                trial = study.ask(distributions)
                key = point_key(trial.params)
                values = lookup[key]
                study.tell(trial, list(values))
                if key not in seen:
                    seen[key] = values
                    order.append(key)
                    acc = np.array([seen[k][0] for k in order])
                    ct = np.array([seen[k][1] for k in order])
                    hv = hypervolume_2d(normalised_objectives(acc, ct, grid=table))
                    rows.append({"sampler": name, "seed": int(seed), "budget": budget,
                                 "evaluation": len(order),
                                 **dict(zip(VARIABLES, key)), "accuracy": values[0],
                                 "computation_time": values[1], "best_accuracy": float(acc.max()),
                                 "hv_ratio": hv / full_hv if full_hv else float("nan")})
                if len(order) >= budget:
                    break
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# the report of a study
# --------------------------------------------------------------------------

def report_study(storage: str, study_name: str, *, directory: str,
                 out_dir: Optional[str] = None, samplers: Sequence[str] = SAMPLERS,
                 sampler_seeds: Sequence[int] = range(5), budget: Optional[int] = None,
                 command: str = "tff-ser hpo report",
                 benchmark: str = "results/benchmarks/round_ratio.json") -> Dict[str, object]:
    """Write the grid's tables, figures and summary for a (finished) study.

    The sampler comparison needs every point; on an unfinished grid it is
    skipped and the summary says how many points are done.  Returns the
    :func:`tff_ser.hpo.report.write_report` file map.
    """
    from tff_ser.hpo.report import load_naive_model, write_report
    study = load_study(storage, study_name)
    settings = study_settings(study)
    space = GridSpace.from_dict(settings["space"])
    table = grid_table(study)
    traces = None
    if len(table) == len(space):
        traces = compare_samplers(table, space, samplers=samplers, seeds=sampler_seeds,
                                  budget=budget)
    naive = load_naive_model(benchmark)
    client_sizes = settings.get("train_client_sizes")
    info = {"corpus": settings.get("corpus"), "command": command,
            "engine": settings["run"]["engine"], "server_lr": settings["run"]["server_lr"],
            "seed": settings["run"]["seed"], "server_lr_note": SERVER_LR_NOTE,
            "study": study_name, "storage": mask_url(storage),
            "wall_seconds": study_wall_seconds(study),
            "compute_seconds": trajectory_compute_seconds(directory, study)}
    files = write_report(out_dir or directory, table, space=space, info=info, traces=traces,
                         naive_model=naive, client_sizes=client_sizes)
    per_speaker = per_speaker_table(study)
    if len(per_speaker):  # what tff_ser.hpo.confirm re-scores on its selection / test split
        path = pathlib.Path(out_dir or directory) / "grid_per_speaker.csv"
        per_speaker.to_csv(path)
        files["per_speaker"] = path
    return files
