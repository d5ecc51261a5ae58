"""Paper 000's grid answers under seeds and on speakers the selection never saw.

Paper 000 picks its points (Table I, Table II) by the accuracy on the 18
held-out speakers and reports that same accuracy: selection and report on
the same speakers, with one training seed.  This module keeps that
reproduction untouched and adds a second, clearly labelled protocol:

* **paper 000 protocol** (the reproduction, ``results/hpo_grid``): 73
  training speakers (clients), the grid scored on all 18 held-out speakers,
  seed 0.
* **held-out test protocol** (this module, ``results/hpo_confirm``): the
  same 73 training speakers, and the 18 held-out speakers split by a seeded
  draw into 9 *selection* speakers and 9 *test* speakers (73 / 9 / 9).
  Points are chosen on the selection speakers' client-mean accuracy only;
  the test speakers' accuracy of the chosen points is read afterwards and
  never used to choose.

Why this split and not nested folds over speakers: keeping paper 000's 73
training speakers means every model the grid trained is a model of this
protocol too (the grid's per-speaker scores are re-read, nothing is
retrained to select), while a nested 5-fold protocol needs one 576-point
grid per outer fold (~50 min each on the 2-core development machine).  The
price is a small test set (9 speakers, ~480 clips); the intervals over
seeds say how much that matters.

Steps (:func:`run_confirmation`):

1. :func:`rescore` -- every grid point's Acc on the selection and on the
   test speakers, from the grid's per-speaker scores
   (:func:`tff_ser.hpo.readout.per_speaker_table`);
2. :func:`candidates` -- the top ``top`` points by selection Acc, every
   Pareto point of (selection Acc, CT), and paper 000 protocol's Table I and
   Table II points;
3. :func:`confirm_points` -- each candidate trained with every seed through
   the grid's own objective (:func:`tff_ser.hpo.objective.evaluate_point`:
   batched engine, one trajectory per (NLE, LR, BS, CD, seed), checkpointed
   and resumable; the grid's own seed reads the grid's trajectories back);
4. :func:`answers` -- Table I and Table II re-read over seeds: mean, sd and
   95 % t-interval of each candidate on selection, test and all 18 speakers;
   whether the one-seed answers survive, with paired tests over seeds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.hpo.analysis import ACC, CT, pareto_mask
from tff_ser.hpo.space import (ABBREVIATIONS, PAPER_000_DEFAULT, VARIABLES, point_key,
                               point_label, trajectory_key)

#: Seeds every candidate is trained with (0 is the grid's own seed).
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: Candidates by selection accuracy.
DEFAULT_TOP = 10
#: Seed of the draw that splits the held-out speakers into selection and test.
DEFAULT_SPLIT_SEED = 0
#: Where ``tff-ser hpo confirm`` writes (full grid; the quick one goes to _scratch).
DEFAULT_OUT = {"paper000": "results/hpo_confirm", "quick": "results/_scratch/hpo_confirm-quick"}

SELECTION, TEST, ALL = "selection", "test", "all"
RUNS_FILE, SPLIT_FILE = "runs.csv", "split.json"


@dataclasses.dataclass(frozen=True)
class SpeakerSplit:
    """The held-out speakers split into the selector's and the report's."""

    selection: tuple
    test: tuple
    seed: int

    def to_dict(self) -> dict:
        return {"selection": list(self.selection), "test": list(self.test), "seed": self.seed}


def split_heldout_speakers(speakers: Sequence[str], *, seed: int = DEFAULT_SPLIT_SEED,
                           test_fraction: float = 0.5) -> SpeakerSplit:
    """Split held-out speakers into selection and test by a seeded permutation.

    ``round_half_up(test_fraction x n)`` speakers go to test (18 -> 9 / 9);
    both sides keep at least one speaker.

    Raises
    ------
    ValueError
        With fewer than 2 speakers, duplicates, or ``test_fraction`` outside (0, 1).
    """
    ids = sorted(str(s) for s in speakers)
    if len(set(ids)) != len(ids):
        raise ValueError(f"held-out speakers must be distinct; got {list(speakers)}")
    if len(ids) < 2:
        raise ValueError(f"a selection / test split needs at least 2 held-out speakers; got "
                         f"{len(ids)} ({ids}); hold out more speakers (split_seed / "
                         "val_fraction of the task)")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    n_test = min(len(ids) - 1, max(1, int(np.floor(test_fraction * len(ids) + 0.5))))
    order = np.random.default_rng([seed, 9009]).permutation(len(ids))
    test = tuple(sorted(ids[i] for i in order[:n_test]))
    selection = tuple(sorted(ids[i] for i in order[n_test:]))
    return SpeakerSplit(selection=selection, test=test, seed=int(seed))


def _subset_mean(per_speaker: pd.DataFrame, speakers: Sequence[str]) -> pd.Series:
    missing = [s for s in speakers if s not in per_speaker.columns]
    if missing:
        raise ValueError(f"the grid's per-speaker scores lack speakers {missing}; the split "
                         "must be drawn from the grid's own held-out speakers")
    return per_speaker[list(speakers)].mean(axis=1)


def rescore(table: pd.DataFrame, per_speaker: pd.DataFrame, split: SpeakerSplit) -> pd.DataFrame:
    """The grid table with Acc on the selection (``accuracy_selection``) and test speakers.

    ``per_speaker`` is :func:`tff_ser.hpo.readout.per_speaker_table` (index =
    trial).  The mean over both subsets' speakers must give back the grid's
    Acc (a check that the scores belong together).
    """
    if per_speaker is None or per_speaker.empty:
        raise ValueError("the grid study holds no per-speaker scores (it was run before they "
                         "were recorded); rerun the grid with `tff-ser hpo run` to select on "
                         "a subset of the held-out speakers")
    scores = per_speaker.loc[table["trial"].astype(int)]
    out = table.copy()
    out["accuracy_selection"] = _subset_mean(scores, split.selection).to_numpy()
    out["accuracy_test"] = _subset_mean(scores, split.test).to_numpy()
    every = scores[list(split.selection) + list(split.test)].mean(axis=1).to_numpy()
    if not np.allclose(every, out[ACC].to_numpy(), atol=1e-9):
        raise ValueError("the grid's per-speaker scores do not average to its Acc; they are "
                         "from another run")
    return out


def _front(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    front = frame[pareto_mask(frame[column], frame[CT])]
    return front.sort_values([CT, column], ascending=[True, False], kind="mergesort")


def candidates(scored: pd.DataFrame, *, top: int = DEFAULT_TOP) -> pd.DataFrame:
    """Points to confirm over seeds, each with the reasons it is there.

    The ``top`` points by selection Acc, every Pareto point of (selection
    Acc, CT), the default setup, and paper 000 protocol's answers (Table I's
    optimal-accuracy and optimal-time points and Table II's Pareto points,
    chosen on all 18 speakers).
    """
    from tff_ser.hpo.report import best_accuracy, best_time, pareto_front
    if top < 1:
        raise ValueError(f"top must be >= 1; got {top}")
    reasons: Dict[tuple, List[str]] = {}

    def add(rows: pd.DataFrame, why: str):
        for _, row in rows.iterrows():
            reasons.setdefault(point_key(row), []).append(why)

    ranked = scored.sort_values(["accuracy_selection", CT], ascending=[False, True],
                                kind="mergesort")
    add(ranked.head(top), f"top {top} by selection Acc")
    add(_front(scored, "accuracy_selection"), "Pareto (selection Acc, CT)")
    add(scored[[point_key(r) == point_key(PAPER_000_DEFAULT) for _, r in scored.iterrows()]],
        "default setup")
    add(best_accuracy(scored).to_frame().T, "paper-protocol optimal accuracy")
    add(best_time(scored).to_frame().T, "paper-protocol optimal comp. time")
    add(pareto_front(scored), "paper-protocol Pareto")
    keep = scored[[point_key(r) in reasons for _, r in scored.iterrows()]].copy()
    keep["why"] = ["; ".join(reasons[point_key(r)]) for _, r in keep.iterrows()]
    return keep.sort_values(["accuracy_selection", CT], ascending=[False, True],
                            kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------
# training the candidates with several seeds
# --------------------------------------------------------------------------

def _done_runs(path: pathlib.Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def confirm_points(task, points: pd.DataFrame, *, seeds: Sequence[int], space, settings,
                   out_dir, trajectory_dir, split: SpeakerSplit, fingerprint=None,
                   log=print) -> pd.DataFrame:
    """Train every point of ``points`` with every seed; one row per (point, seed).

    Rows are appended to ``<out_dir>/runs.csv`` as each run finishes, and
    trajectories live beside the grid's, under
    ``<trajectory_dir>/<settings digest>/`` (the digest holds the seed), so a
    killed call resumes where it stopped and the grid's own seed reads the
    grid's trajectories back instead of training them again.  ``settings`` is
    the grid's :class:`~tff_ser.hpo.objective.RunSettings` (its seed is replaced).
    """
    from tff_ser.hpo.objective import evaluate_point, settings_digest, task_fingerprint
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / RUNS_FILE
    done = _done_runs(runs_path)
    finished = set() if done.empty else {
        (point_key(r), int(r["seed"])) for _, r in done.iterrows()}
    fingerprint = fingerprint or task_fingerprint(task)
    todo = [(row, int(s)) for s in seeds for _, row in points.iterrows()
            if (point_key(row), int(s)) not in finished]
    log(f"confirm: {len(points)} points x {len(seeds)} seeds, {len(todo)} runs left")
    for i, (row, seed) in enumerate(todo, 1):
        point = {v: row[v] for v in VARIABLES}
        point = {v: (float(point[v]) if v in ("client_lr", "client_fraction") else int(point[v]))
                 for v in VARIABLES}
        run = dataclasses.replace(settings, seed=seed)
        t0 = time.perf_counter()
        root = os.path.join(trajectory_dir, settings_digest(run, fingerprint))
        result = evaluate_point(task, point, run, trajectory_root=root,
                                milestones=space.milestones, final_round=space.final_round,
                                fingerprint=fingerprint)
        per = result.metrics.get("per_client_accuracy")
        if not per:
            raise ValueError(f"trajectory {root}/{trajectory_key(point)} holds no per-speaker "
                             "scores (made before they were recorded); delete it to retrain")
        record = {**point, "seed": seed, ACC: result.accuracy,
                  "accuracy_selection": float(np.mean([per[s] for s in split.selection])),
                  "accuracy_test": float(np.mean([per[s] for s in split.test])),
                  CT: result.computation_time, "rounds_computed": result.rounds_computed,
                  "wall_seconds": time.perf_counter() - t0}
        pd.DataFrame([record]).to_csv(runs_path, mode="a", header=not runs_path.exists(),
                                      index=False)
        log(f"  [{i}/{len(todo)}] {point_label(point)} seed {seed}: "
            f"selection {record['accuracy_selection']:.3f} test {record['accuracy_test']:.3f}")
    runs = _done_runs(runs_path)
    wanted = {(point_key(r), int(s)) for _, r in points.iterrows() for s in seeds}
    return runs[[(point_key(r), int(r["seed"])) in wanted for _, r in runs.iterrows()]] \
        .reset_index(drop=True)


# --------------------------------------------------------------------------
# the answers
# --------------------------------------------------------------------------

def _by_seed(runs: pd.DataFrame, key: tuple, column: str) -> Dict[int, float]:
    rows = runs[[point_key(r) == key for _, r in runs.iterrows()]]
    return {int(r["seed"]): float(r[column]) for _, r in rows.iterrows()}


def seed_table(runs: pd.DataFrame, cands: pd.DataFrame) -> pd.DataFrame:
    """Per candidate: mean, sd and 95 % t-interval over seeds on each speaker set, mean CT."""
    from tff_ser.stats import mean_interval
    rows = []
    for _, c in cands.iterrows():
        key = point_key(c)
        row = {**{ABBREVIATIONS[v]: c[v] for v in VARIABLES}, "why": c["why"],
               "grid Acc (seed 0, all held out)": float(c[ACC]),
               "grid Acc (seed 0, selection)": float(c["accuracy_selection"])}
        for label, column in ((SELECTION, "accuracy_selection"), (TEST, "accuracy_test"),
                              (ALL, ACC)):
            iv = mean_interval(list(_by_seed(runs, key, column).values()))
            row.update({f"{label} mean": iv.mean, f"{label} sd": iv.sd,
                        f"{label} low": iv.low, f"{label} high": iv.high})
        row["seeds"] = len(_by_seed(runs, key, ACC))
        row["CT mean (s)"] = float(np.mean(list(_by_seed(runs, key, CT).values())))
        rows.append(row)
    return pd.DataFrame(rows)


def _key_of(row: Mapping) -> tuple:
    return point_key({v: row[ABBREVIATIONS[v]] for v in VARIABLES})


def answers(table: pd.DataFrame, runs: pd.DataFrame) -> dict:
    """Table I and Table II re-read over seeds, and whether the one-seed answers survive.

    ``table`` is :func:`seed_table`'s output.  Returns a dict of readings
    (each a sentence or a small frame) for the summary.
    """
    from tff_ser.stats import compare
    out: dict = {}
    by_sel = table.sort_values([f"{SELECTION} mean", "CT mean (s)"], ascending=[False, True],
                               kind="mergesort")
    chosen = by_sel.iloc[0]
    out["chosen"] = chosen
    chosen_key = _key_of(chosen)
    # 1. the selection: is the chosen point's lead over the others real?
    ties = []
    for _, other in by_sel.iloc[1:].iterrows():
        c = compare(_by_seed(runs, chosen_key, "accuracy_selection"),
                    _by_seed(runs, _key_of(other), "accuracy_selection"))
        if not c.differs:
            ties.append(point_label({v: other[ABBREVIATIONS[v]] for v in VARIABLES}))
    out["ties_on_selection"] = ties
    # 2. one-seed winners: the grid's seed-0 choice on the selection speakers and on all 18
    one_seed_sel = table.sort_values(["grid Acc (seed 0, selection)", "CT mean (s)"],
                                     ascending=[False, True], kind="mergesort").iloc[0]
    one_seed_all = table.sort_values(["grid Acc (seed 0, all held out)", "CT mean (s)"],
                                     ascending=[False, True], kind="mergesort").iloc[0]
    out["one_seed_selection"], out["one_seed_all"] = one_seed_sel, one_seed_all
    ranks = by_sel.reset_index(drop=True)
    out["rank_of_one_seed_all"] = 1 + int(np.flatnonzero(
        [_key_of(r) == _key_of(one_seed_all) for _, r in ranks.iterrows()])[0])
    # 3. the test speakers: the chosen point against the default setup and the 18-speaker winner
    comparisons = {}
    default_rows = table[[_key_of(r) == point_key(PAPER_000_DEFAULT) for _, r in table.iterrows()]]
    for label, other in (("default setup", default_rows.iloc[0] if len(default_rows) else None),
                         ("paper-protocol optimal accuracy", one_seed_all)):
        if other is None or _key_of(other) == chosen_key:
            continue
        comparisons[label] = compare(_by_seed(runs, chosen_key, "accuracy_test"),
                                     _by_seed(runs, _key_of(other), "accuracy_test"))
    out["test_comparisons"] = comparisons
    # 4. Table II over seeds: the front of (mean selection Acc, mean CT) among the candidates
    mask = pareto_mask(table[f"{SELECTION} mean"], table["CT mean (s)"])
    front = table[mask].sort_values(["CT mean (s)"], kind="mergesort")
    out["front"] = front
    one_seed_front = table[pareto_mask(table["grid Acc (seed 0, selection)"],
                                       table["CT mean (s)"])]
    kept = {_key_of(r) for _, r in front.iterrows()}
    out["one_seed_front_kept"] = sum(_key_of(r) in kept for _, r in one_seed_front.iterrows())
    out["one_seed_front_size"] = len(one_seed_front)
    return out


def _fmt_iv(row, label: str) -> str:
    if row["seeds"] < 2:
        return f"{row[f'{label} mean']:.3f}"
    return (f"{row[f'{label} mean']:.3f} ± {row[f'{label} sd']:.3f} "
            f"[{row[f'{label} low']:.3f}, {row[f'{label} high']:.3f}]")


def _point_cols(row) -> str:
    return " | ".join(f"{row[ABBREVIATIONS[v]]:g}" for v in VARIABLES)


def summary_markdown(table: pd.DataFrame, ans: dict, *, split: SpeakerSplit, seeds, info) -> str:
    """The held-out test protocol's report."""
    lines = [
        "# Paper 000's grid under seeds and a held-out test split (generated stand-in corpus, "
        "not CREMA-D)", "",
        f"- corpus: {info.get('corpus')}",
        f"- command: `{info.get('command', 'tff-ser hpo confirm')}`",
        f"- grid study: `{info.get('study')}` in `{info.get('storage')}` (paper 000 protocol, "
        "seed 0, per-speaker scores)",
        f"- protocol: **held-out test protocol** -- {info.get('train_clients', '?')} training "
        "speakers (the grid's clients), "
        f"the grid's {len(split.selection) + len(split.test)} held-out speakers split by a "
        f"seeded draw (seed {split.seed}) into {len(split.selection)} selection and "
        f"{len(split.test)} test speakers. Points are chosen on the selection speakers' "
        "client-mean accuracy; test accuracy is read for the chosen points only. "
        "Paper 000's own protocol (select and report on all held-out speakers, one seed) is "
        f"the reproduction in `{info.get('grid_dir', 'results/hpo_grid')}`.",
        f"- selection speakers: {', '.join(split.selection)}",
        f"- test speakers: {', '.join(split.test)}",
        f"- seeds: {', '.join(str(s) for s in seeds)} (training seed: initial weights, client "
        "sampling, clip order, dropout; never the corpus or the split); intervals are 95 % "
        "t-intervals over seeds",
        f"- candidates: {len(table)} points ({info.get('candidates_note', '')})",
        f"- cost: {info.get('runs_wall_seconds', float('nan')):.0f} s of run wall time summed "
        f"over runs.csv ({info.get('rounds_computed', 0)} rounds trained; a run that "
        "extends a trajectory trains only the rounds past its last saved NGE); "
        f"this call {info.get('wall_seconds', float('nan')):.0f} s. Seed 0 is the grid's own "
        "seed (its trajectories are read back where they exist): max |Acc - grid Acc| = "
        f"{info.get('seed0_max_diff', float('nan')):.2g}", "",
        "## Every candidate over seeds", "",
        "| NGE | NLE | LR | BS | CD | why | grid Acc (seed 0, all held out) | selection Acc | "
        "test Acc | Acc on all held out | CT (s) |",
        "|---:|---:|---:|---:|---:|---|---:|---|---|---|---:|"]
    for _, row in table.sort_values(f"{SELECTION} mean", ascending=False,
                                    kind="mergesort").iterrows():
        lines.append(f"| {_point_cols(row)} | {row['why']} | {row['grid Acc (seed 0, all held out)']:.3f} "
                     f"| {_fmt_iv(row, SELECTION)} | {_fmt_iv(row, TEST)} | "
                     f"{_fmt_iv(row, ALL)} | {row['CT mean (s)']:.2f} |")
    chosen = ans["chosen"]
    lab = lambda r: point_label({v: r[ABBREVIATIONS[v]] for v in VARIABLES})  # noqa: E731
    lines += ["", "## Table I (optimal accuracy) under seeds", "",
              f"- chosen on the selection speakers over {len(seeds)} seeds: **{lab(chosen)}**, "
              f"selection {_fmt_iv(chosen, SELECTION)}, **test {_fmt_iv(chosen, TEST)}**.",
              f"- the grid's one-seed choice on the selection speakers: "
              f"{lab(ans['one_seed_selection'])}; on all held-out speakers (paper 000 protocol): "
              f"{lab(ans['one_seed_all'])}, rank {ans['rank_of_one_seed_all']} of "
              f"{len(table)} by the seed mean on the selection speakers."]
    ties = ans["ties_on_selection"]
    lines.append(f"- candidates the chosen point is not shown better than on the selection "
                 f"speakers (intervals overlap and paired p >= 0.05): {len(ties)} of "
                 f"{len(table) - 1}" + (f" ({'; '.join(ties)})" if ties else "") + ".")
    for label, c in ans["test_comparisons"].items():
        lines.append(f"- on the test speakers: {c.reading('chosen point', label, 'Acc')}.")
    front = ans["front"]
    lines += ["", "## Table II (Pareto points) under seeds", "",
              f"Front of (mean selection Acc, mean CT) among the candidates: {len(front)} "
              f"points; {ans['one_seed_front_kept']} of the {ans['one_seed_front_size']} "
              "points on the one-seed front (grid Acc on the selection speakers, among the "
              "candidates) stay on it.", "",
              "| NGE | NLE | LR | BS | CD | selection Acc | test Acc | CT (s) |",
              "|---:|---:|---:|---:|---:|---|---|---:|"]
    for _, row in front.iterrows():
        lines.append(f"| {_point_cols(row)} | {_fmt_iv(row, SELECTION)} | {_fmt_iv(row, TEST)} "
                     f"| {row['CT mean (s)']:.2f} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# the whole step
# --------------------------------------------------------------------------

def run_confirmation(*, quick: bool = False, grid_dir: Optional[str] = None,
                     storage: Optional[str] = None, study_name: Optional[str] = None,
                     out_dir: Optional[str] = None,
                     seeds: Sequence[int] = DEFAULT_SEEDS, top: int = DEFAULT_TOP,
                     split_seed: int = DEFAULT_SPLIT_SEED, data_dir: Optional[str] = None,
                     command: str = "tff-ser hpo confirm", log=print) -> Dict[str, object]:
    """Rescore the finished grid on a selection / test split and confirm its answers over seeds.

    Writes ``split.json``, ``runs.csv`` (one row per point and seed),
    ``candidates.csv`` (the seed table) and ``summary.md`` into ``out_dir``
    (default ``results/hpo_confirm``; quick: ``results/_scratch/hpo_confirm-quick``).

    Raises
    ------
    ValueError
        If the grid is unfinished or holds no per-speaker scores, or seeds are bad.
    """
    from tff_ser.hpo import grid_location
    from tff_ser.hpo.objective import RunSettings
    from tff_ser.hpo.space import GridSpace
    from tff_ser.hpo.readout import grid_table, per_speaker_table
    from tff_ser.hpo.storage import load_study, study_settings
    from tff_ser.hpo.workers import load_study_task
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct integers >= 0; got {seeds}")
    t0 = time.perf_counter()
    where = grid_location(quick, grid_dir, storage)
    study_name = study_name or where.study_name
    study = load_study(where.storage, study_name)
    settings = study_settings(study)
    space = GridSpace.from_dict(settings["space"])
    table = grid_table(study)
    if len(table) != len(space):
        raise ValueError(f"the grid study has {len(table)} of {len(space)} points; finish it "
                         f"(`tff-ser hpo run{' --quick' if quick else ''}`) before confirming")
    per_speaker = per_speaker_table(study)
    split = split_heldout_speakers(list(per_speaker.columns), seed=split_seed)
    scored = rescore(table, per_speaker, split)
    cands = candidates(scored, top=top)
    out = pathlib.Path(out_dir or DEFAULT_OUT[space.name])
    out.mkdir(parents=True, exist_ok=True)
    split_path = out / SPLIT_FILE
    if split_path.exists() and json.loads(split_path.read_text()) != split.to_dict():
        raise ValueError(f"{split_path} holds another selection / test split; use another "
                         "--out or delete the folder to start over")
    split_path.write_text(json.dumps(split.to_dict(), indent=2))
    task, fingerprint, corpus = load_study_task(settings, data_dir=data_dir)
    run = RunSettings(**{k: v for k, v in settings["run"].items()
                         if k in {f.name for f in dataclasses.fields(RunSettings)}})
    from tff_ser.hpo.storage import TRAJECTORY_DIR, mask_url
    runs = confirm_points(task, cands, seeds=seeds, space=space, settings=run, out_dir=out,
                          trajectory_dir=os.path.join(where.directory, TRAJECTORY_DIR),
                          split=split, fingerprint=fingerprint, log=log)
    seed_tab = seed_table(runs, cands)
    ans = answers(seed_tab, runs)
    seed0 = runs[runs["seed"] == settings["run"]["seed"]]
    grid_acc = {point_key(r): float(r[ACC]) for _, r in table.iterrows()}
    diffs = [abs(float(r[ACC]) - grid_acc[point_key(r)]) for _, r in seed0.iterrows()]
    info = {"command": command, "study": study_name, "storage": mask_url(where.storage),
            "grid_dir": where.directory,
            "wall_seconds": time.perf_counter() - t0,
            "seed0_max_diff": max(diffs) if diffs else float("nan"),
            "candidates_note": f"top {top} by selection Acc, the selection Pareto front, the "
                               "default setup, and paper 000 protocol's Table I / II points",
            "corpus": corpus, "train_clients": len(task.train_clients),
            "runs_wall_seconds": float(runs["wall_seconds"].sum()),
            "rounds_computed": int(runs["rounds_computed"].sum())}
    seed_tab.to_csv(out / "candidates.csv", index=False)
    text = summary_markdown(seed_tab, ans, split=split, seeds=seeds, info=info)
    (out / "summary.md").write_text(text)
    log(f"wrote {out}/summary.md")
    return {"out_dir": str(out), "split": split, "runs": runs, "table": seed_tab,
            "answers": ans, "info": info}
