"""Run a declared experiment end to end and write its results folder.

:func:`run_experiment` takes a config from :mod:`tff_ser.experiments.configs`
and writes ``<out>/``:

* ``runs/<run_id>/`` -- each run's :class:`~tff_ser.results.RunResult`
  (``result.json``, ``history.csv``);
* ``results.csv`` -- one row per run: model, setup, accuracy, macro
  precision / recall / F1, UAR, client-mean accuracy, training time;
* PNG figures (confusion matrices, F1 against k, learning curves, bars);
* ``summary.md`` -- which corpus (a generated one says so), the exact
  command, package version, date, wall time, the table and the figures.

``summary.md`` is written last and removed when a run starts, so a folder
holding one is a finished experiment; a failed run leaves ``FAILED`` (the
traceback) instead and re-raises.  ``only`` trains a subset of the runs (to
split a long experiment over processes or sessions); until every run is
saved, the folder holds ``PARTIAL`` (done and missing runs) instead of the
experiment-level files.  A finished run whose settings and corpus
are unchanged is read back instead of retrained, so an interrupted
full-size experiment picks up where it stopped.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import shutil
import time
import traceback
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.experiments.common import limit_speakers
from tff_ser.experiments.configs import (CENTRALIZED, PAPER_000_BEST, PAPER_001_TABLES,
                                         PAPER_004_BEST, SETUP_LABELS, BaselineVsFederated,
                                         AlgorithmComparison, ClientCountSweep, Paper004Sweep,
                                         RunSpec)

SUMMARY_FILE = "summary.md"
FAILED_FILE = "FAILED"
PARTIAL_FILE = "PARTIAL"
TABLE_FILE = "results.csv"
RUNS_DIR = "runs"

#: Columns of ``results.csv``, in order.
TABLE_COLUMNS = ("run_id", "condition", "seed", "model", "setup", "mode", "partition",
                 "clients", "rounds", "accuracy", "precision_macro", "recall_macro",
                 "f1_macro", "uar", "client_mean_accuracy", "train_seconds", "wall_seconds",
                 "engine", "corpus", "train_speakers", "val_speakers", "train_clips",
                 "val_clips", "epsilon", "bytes_up", "bytes_down")

#: Scores summarised over seeds (mean ± sd, 95 % t-interval) in the summary tables.
SEED_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "uar",
                "client_mean_accuracy", "train_seconds")

GENERATED_NOTICE = "generated stand-in corpus, not CREMA-D"

#: Seconds read better to a tenth than to a thousandth.
TIME_FORMATS = {"train time (s)": ".1f", "paper time (s)": ".0f", "ours time (s)": ".1f"}


@dataclasses.dataclass
class ExperimentOutcome:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    config : experiment config
    out_dir : pathlib.Path
    table : pandas.DataFrame
        ``results.csv``'s contents (columns :data:`TABLE_COLUMNS`).
    results : dict
        run_id -> :class:`~tff_ser.results.RunResult`.
    figures : dict
        Figure name -> PNG path.
    corpus : str
        One line saying which corpus the runs used.
    wall_seconds : float
    reused : list of str
        Runs read back from an earlier invocation instead of trained.
    missing : list of str
        Runs neither selected by ``only`` nor saved earlier; non-empty means
        the experiment is not finished (no ``results.csv``, figures or
        ``summary.md`` were written, ``PARTIAL`` says what is left).
    """

    config: object
    out_dir: pathlib.Path
    table: pd.DataFrame
    results: Dict[str, object]
    figures: Dict[str, pathlib.Path]
    corpus: str
    wall_seconds: float
    reused: List[str] = dataclasses.field(default_factory=list)
    missing: List[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def summary_path(self) -> pathlib.Path:
        return self.out_dir / SUMMARY_FILE


# ---------------------------------------------------------------------------
# corpus and features
# ---------------------------------------------------------------------------

def describe_corpus(load, clips: Sequence) -> str:
    """One line naming the corpus; a generated one is never passed off as CREMA-D."""
    speakers = len({c.speaker for c in clips})
    if load.corpus == "generated":
        name = GENERATED_NOTICE
    elif load.corpus == "crema-d":
        name = "CREMA-D"
    elif load.corpus == "crema-d-layout":
        name = ("a corpus in CREMA-D layout, not known to be CREMA-D (all 91 actors and "
                "7,400+ clips make it CREMA-D; name it with --corpus-name)")
    else:
        name = load.corpus
    return f"{name}: {len(clips)} clips from {speakers} speakers in {load.root}"


def corpus_fingerprint(load, clips: Sequence) -> dict:
    """What identifies the corpus a run used, wherever it lies on disk.

    The corpus kind, the number of clips and a SHA-1 of their ids, speakers
    and emotions, plus the generator's parameters for a generated corpus.
    Saved runs are matched on this rather than on the corpus path, so
    committed results are read back in any clone of the repository.
    """
    import hashlib
    import json
    from tff_ser.corpus.cremad import GENERATED_MARKER, cremad_audio_dir, find_marker
    digest = hashlib.sha1()
    for clip in sorted(clips, key=lambda c: c.clip_id):
        digest.update(f"{clip.clip_id}|{clip.speaker}|{clip.emotion}\n".encode())
    fingerprint = {"corpus": load.corpus, "n_clips": len(clips), "clips_sha1": digest.hexdigest()}
    if load.corpus == "generated":
        marker = find_marker(cremad_audio_dir(load.root), GENERATED_MARKER)
        if marker:
            with open(marker, encoding="utf-8") as f:
                fingerprint["generator"] = json.load(f).get("parameters")
    return fingerprint


def _check_models(config) -> None:
    """Refuse unknown models, and models the chosen engine cannot train, before any data work."""
    from tff_ser.models import MODELS
    unknown = [m for m in config.models if m not in MODELS]
    if unknown:
        raise ValueError(f"{config.name} names unknown model(s) {unknown}; "
                         f"choose from {sorted(MODELS)}")
    if config.engine in ("batched", "tf"):
        from tff_ser.engines.base import unsupported_reason
        from tff_ser.fedconfig import FederatedConfig
        from tff_ser.task import Task
        for model in config.models:
            spec = MODELS[model]
            shape = spec.input_shape
            probe = Task(model, np.zeros((2,) + shape, np.float32), np.zeros(2, np.int32),
                         {"a": np.arange(2)}, {})
            reason = unsupported_reason(config.engine, probe, FederatedConfig(
                rounds=1, client_optimizer=config.client_optimizer,
                server_optimizer=config.server_optimizer))
            if reason:
                raise ValueError(f"engine={config.engine!r} cannot train model {model!r} "
                                 f"({reason}); use engine='auto' or 'tff'")


def _load_features(config, data_dir: Optional[str], progress: bool):
    """(corpus line, corpus fingerprint, {feature kind: FeatureSet}) for the config's models."""
    from tff_ser.corpus import resolve_corpus
    from tff_ser.features.pipeline import extract
    from tff_ser.models import MODELS
    load = resolve_corpus(data_dir, size=config.size, corpus_seed=0, progress=progress)
    clips = limit_speakers(load.clips, config.max_speakers)
    kinds = list(dict.fromkeys(MODELS[m].feature_kind for m in config.models))
    features = {kind: extract(clips, kind, progress=progress) for kind in kinds}
    return describe_corpus(load, clips), corpus_fingerprint(load, clips), features


# ---------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------

def _run_key(spec: RunSpec, corpus: dict, features) -> dict:
    """What a saved run must match to be reused instead of retrained.

    The run's settings (:meth:`RunSpec.key_dict`: not its name, not the
    engine that computed it), the corpus fingerprint and the features.
    """
    return {"run_spec": spec.key_dict(), "corpus": corpus,
            "feature_kind": features.kind, "n_clips": len(features.clips)}


def _comparable(key: Optional[dict]) -> Optional[dict]:
    """A saved run key with the naming fields dropped (keys saved before runs had seeds
    and engines were interchangeable still held them)."""
    from tff_ser.experiments.configs import RUN_KEY_IGNORES
    if not isinstance(key, dict) or not isinstance(key.get("run_spec"), dict):
        return key
    spec = {k: v for k, v in key["run_spec"].items() if k not in RUN_KEY_IGNORES}
    return dict(key, run_spec=spec)


def _reusable(run_dir: pathlib.Path, key: dict):
    from tff_ser.results import RunResult
    if not (run_dir / "result.json").is_file():
        return None
    try:
        saved = RunResult.load(run_dir)
    except (ValueError, OSError):
        return None
    if _comparable(saved.extra.get("run_key")) != _comparable(key):
        return None
    return saved if _sampling_matches(saved) else None


def _sampling_matches(saved) -> bool:
    """False for a federated run whose rounds sampled another number of clients than CD
    samples now: one saved before 2026-12-02, when CD x clients was rounded half to even
    (73 x 0.5 -> 36, now 37).  Its key matches, but it is not this code's run: retrain it."""
    from tff_ser.fedconfig import sampled_per_round
    config = saved.config or {}
    n, cd = config.get("num_train_clients"), config.get("client_fraction")
    if config.get("mode") != "federated" or n is None or cd is None:
        return True
    sampled = {row.get("clients") for row in saved.history if row.get("clients") is not None}
    return sampled <= {sampled_per_round(int(n), float(cd))}


def train_run(spec: RunSpec, features, *, run_dir: Optional[pathlib.Path] = None,
              checkpoint: bool = False, progress: bool = True):
    """Build the task of ``spec`` from ``features`` and train it; returns the RunResult.

    Parameters
    ----------
    spec : RunSpec
    features : FeatureSet
        Features of the corpus in the kind ``spec.model`` reads.
    run_dir : pathlib.Path, optional
        With ``checkpoint``, the federated state is saved under
        ``run_dir/checkpoint`` every round, so a killed run resumes; the
        checkpoint is deleted once the run has finished.
    checkpoint : bool
    progress : bool
        Progress bar over rounds.
    """
    from tff_ser.experiments.common import task_from_features
    task = task_from_features(features, spec.model, partition=spec.partition, k=spec.clients,
                              seed=spec.seed, split_seed=spec.split_seed)
    if spec.mode == CENTRALIZED:
        from tff_ser.centralized import train_centralized
        result = train_centralized(task, spec.centralized_config(), progress=progress)
    else:
        from tff_ser.federated import train_federated
        checkpoint_dir = str(run_dir / "checkpoint") if (checkpoint and run_dir) else None
        result = train_federated(task, spec.federated_config(), checkpoint_dir=checkpoint_dir,
                                 progress=progress, federated_eval=spec.federated_eval,
                                 engine=spec.engine)
        if checkpoint_dir:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    # The final weights (104 MB for the dense model) are not part of the record.
    result.extra.pop("weights", None)
    return result


def table_row(spec: RunSpec, result) -> dict:
    """The ``results.csv`` row of one finished run."""
    val = result.final_metrics.get("validation", {})
    info = result.config.get("task", {})
    engine = None
    if spec.mode != CENTRALIZED:
        # runs saved before the engine was recorded in the result carry it in their key
        engine = result.config.get("engine") or \
            (result.extra.get("run_key") or {}).get("run_spec", {}).get("engine")
    return {
        "run_id": spec.run_id, "condition": spec.condition, "seed": spec.seed,
        "model": spec.model, "setup": spec.setup, "mode": spec.mode,
        "partition": spec.partition if spec.mode != CENTRALIZED else "pooled",
        "clients": info.get("k") if spec.mode != CENTRALIZED else None,
        "rounds": spec.rounds,
        "accuracy": val.get("accuracy"), "precision_macro": val.get("precision_macro"),
        "recall_macro": val.get("recall_macro"), "f1_macro": val.get("f1_macro"),
        "uar": val.get("balanced_accuracy"),
        "client_mean_accuracy": result.final_metrics.get("validation_client_mean_accuracy"),
        "train_seconds": result.times.get("train_seconds"),
        "wall_seconds": result.times.get("wall_seconds"),
        "engine": engine,
        "corpus": info.get("corpus"),
        "train_speakers": info.get("train_speakers"), "val_speakers": info.get("val_speakers"),
        "train_clips": info.get("train_clips"), "val_clips": info.get("val_clips"),
        # DP runs: epsilon at the run's delta; every federated run: bytes over all rounds
        "epsilon": (result.final_metrics.get("privacy") or {}).get("epsilon"),
        "bytes_up": (result.final_metrics.get("communication") or {}).get("bytes_up"),
        "bytes_down": (result.final_metrics.get("communication") or {}).get("bytes_down"),
    }


# ---------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------

def run_experiment(config, out_dir, *, data_dir: Optional[str] = None,
                   command: Optional[str] = None, progress: bool = True,
                   reuse: bool = True, checkpoint: Optional[bool] = None,
                   only: Optional[Sequence[str]] = None,
                   jobs: int = 1) -> ExperimentOutcome:
    """Run every run of ``config`` and write the results folder ``out_dir``.

    Parameters
    ----------
    config : BaselineVsFederated, ClientCountSweep or PerSpeakerFederation
    out_dir : str or path
        Created if needed.  Its ``summary.md`` and ``FAILED`` are removed
        first; figures and ``results.csv`` are rewritten.
    data_dir : str, optional
        Corpus directory; None resolves real CREMA-D at ``data/CREMA-D`` or
        the generated corpus (see :func:`tff_ser.corpus.resolve_corpus`).
    command : str, optional
        The command that started this, for the summary (default: a Python
        call naming the config).
    progress : bool
        tqdm bars over runs and rounds.
    reuse : bool
        Read back a run already saved under ``out_dir/runs`` with the same
        settings and corpus instead of training it again, and resume a
        federated run from its checkpoint.  False retrains everything from
        round 1.
    checkpoint : bool, optional
        Save federated state every round so a killed run resumes mid-run.
        Default: on for full-size configs, off for quick ones.
    only : sequence of str, optional
        Shell-style patterns of run ids (``"lstm-*"``, ``"dense-k?"``): train
        only the matching runs; the others are read back if saved, else
        listed as missing.  A pattern matching no run is an error.
    jobs : int
        Runs trained at once, each in its own process with
        ``cores // jobs`` TensorFlow threads (``-1``: one per core).  The
        metrics do not depend on it (``tests/test_experiments.py``); small
        models such as the MLP train faster this way, since one run cannot
        keep two cores busy.  Per-round progress bars are off with ``jobs > 1``.

    Returns
    -------
    ExperimentOutcome

    Raises
    ------
    Whatever stopped a run, after writing ``out_dir/FAILED``.
    """
    from tqdm.auto import tqdm
    from tff_ser.results import RunResult

    jobs = _check_jobs(jobs)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = config.runs()
    selected = select_runs(specs, only)
    # An older report must not look like this run's while it runs or after it fails.
    for stale in (TABLE_FILE, SUMMARY_FILE, FAILED_FILE, PARTIAL_FILE):
        (out / stale).unlink(missing_ok=True)
    command = command or f"run_experiment({type(config).__name__}(...), {str(out)!r})"
    checkpoint = (not config.quick) if checkpoint is None else checkpoint
    started = time.perf_counter()
    try:
        _check_models(config)
        corpus, fingerprint, features = _load_features(config, data_dir, progress)
        from tff_ser.models import MODELS
        results: Dict[str, RunResult] = {}
        reused: List[str] = []
        missing: List[str] = []
        to_train: List[tuple] = []
        for spec in specs:
            fs = features[MODELS[spec.model].feature_kind]
            run_dir = out / RUNS_DIR / spec.run_id
            key = _run_key(spec, fingerprint, fs)
            chosen = spec.run_id in selected
            result = _reusable(run_dir, key) if (reuse or not chosen) else None
            if result is not None:
                reused.append(spec.run_id)
                results[spec.run_id] = result
            elif not chosen:
                missing.append(spec.run_id)
            else:
                if not reuse:  # retrain from round 1, not from a killed run's checkpoint
                    shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
                to_train.append((spec, fs, run_dir, key))
        bar = tqdm(total=len(to_train), desc=config.name, unit="run", disable=not progress)
        for run_id, result in _train_runs(to_train, config.name, checkpoint=checkpoint,
                                          progress=progress, jobs=jobs):
            results[run_id] = result
            bar.set_postfix_str(run_id)
            bar.update(1)
        bar.close()
        done = [spec for spec in specs if spec.run_id in results]
        rows = [table_row(spec, results[spec.run_id]) for spec in done]
        results = {spec.run_id: results[spec.run_id] for spec in done}
        table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
        if missing:
            write_partial(out / PARTIAL_FILE, config=config, specs=specs, done=list(results),
                          missing=missing, command=command)
            return ExperimentOutcome(config=config, out_dir=out, table=table, results=results,
                                     figures={}, corpus=corpus,
                                     wall_seconds=time.perf_counter() - started,
                                     reused=reused, missing=missing)
        write_table(rows, out / TABLE_FILE)
        figures = draw_figures(config, specs, results, table, out)
        wall = time.perf_counter() - started
        write_summary(out / SUMMARY_FILE, config=config, table=table, figures=figures,
                      corpus=corpus, command=command, wall_seconds=wall, specs=specs,
                      reused=reused, machines=machines_line(results))
    except BaseException as exc:
        (out / FAILED_FILE).write_text(
            f"{config.name} failed after {time.perf_counter() - started:.0f} s\n"
            f"command: {command}\n\n{traceback.format_exc()}", encoding="utf-8")
        raise exc
    return ExperimentOutcome(config=config, out_dir=out, table=table, results=results,
                             figures=figures, corpus=corpus, wall_seconds=wall, reused=reused)


def _check_jobs(jobs) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or \
            not (jobs >= 1 or jobs == -1):
        raise ValueError(f"jobs must be a positive number of processes or -1 (one per core), "
                         f"got {jobs!r}")
    return (os.cpu_count() or 1) if jobs == -1 else int(jobs)


def _train_and_save(spec: RunSpec, features, run_dir: pathlib.Path, key: dict,
                    experiment: str, checkpoint: bool, progress: bool):
    result = train_run(spec, features, run_dir=run_dir, checkpoint=checkpoint,
                       progress=progress)
    result.extra["run_key"] = key
    result.extra["experiment"] = experiment
    result.save(run_dir)
    return result


def _job_init(threads: int) -> None:
    from tff_ser.runtime import set_threads
    set_threads(threads)


def _job(spec, features, run_dir, key, experiment, checkpoint) -> str:
    _train_and_save(spec, features, run_dir, key, experiment, checkpoint, progress=False)
    return spec.run_id


def _train_runs(to_train: Sequence[tuple], experiment: str, *, checkpoint: bool,
                progress: bool, jobs: int):
    """Train ``(spec, features, run_dir, key)`` items, yielding ``(run_id, result)`` as each
    one is saved: in this process one after another, or in ``jobs`` spawned processes."""
    if jobs <= 1 or len(to_train) <= 1:
        for spec, fs, run_dir, key in to_train:
            yield spec.run_id, _train_and_save(spec, fs, run_dir, key, experiment,
                                               checkpoint, progress)
        return
    import concurrent.futures
    import multiprocessing
    from tff_ser.results import RunResult
    jobs = min(jobs, len(to_train))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
        initializer=_job_init, initargs=(threads,))
    try:
        futures = {pool.submit(_job, spec, fs, run_dir, key, experiment, checkpoint): run_dir
                   for spec, fs, run_dir, key in to_train}
        for future in concurrent.futures.as_completed(futures):
            run_id = future.result()  # a run that failed raises here, with its traceback
            yield run_id, RunResult.load(futures[future])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def select_runs(specs: Sequence[RunSpec], only: Optional[Sequence[str]]) -> set:
    """Run ids of ``specs`` matched by any of the shell-style patterns ``only`` (all if None).

    Raises
    ------
    ValueError
        If a pattern matches no run (a typo would otherwise train nothing).
    """
    import fnmatch
    ids = [s.run_id for s in specs]
    if only is None:
        return set(ids)
    if isinstance(only, str):
        only = [only]
    chosen = set()
    for pattern in only:
        hits = fnmatch.filter(ids, pattern)
        if not hits:
            raise ValueError(f"--only {pattern!r} matches no run of this experiment; its runs "
                             f"are: {', '.join(ids)}")
        chosen.update(hits)
    return chosen


def write_partial(path: pathlib.Path, *, config, specs: Sequence[RunSpec], done: List[str],
                  missing: List[str], command: str) -> None:
    """``PARTIAL``: which runs are saved and which are left (no results table yet)."""
    lines = [f"{config.name}: {len(done)} of {len(specs)} runs saved; not finished.",
             f"command: {command}", "",
             "saved: " + (", ".join(done) or "none"),
             "missing: " + ", ".join(missing), "",
             f"Run `tff-ser experiment {config.name}` (without --only) to train what is missing "
             "and write results.csv, the figures and summary.md."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_table(rows: List[dict], path: pathlib.Path) -> None:
    """Write ``results.csv`` (replaced in one step, so readers never see half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).to_csv(tmp, index=False)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------

def _history_curve(result, metric: str = "val_accuracy"):
    rows = [h for h in result.history if metric in h]
    return [h["round"] for h in rows], [h[metric] for h in rows]


def draw_figures(config, specs: Sequence[RunSpec], results: dict, table: pd.DataFrame,
                 out: pathlib.Path) -> Dict[str, pathlib.Path]:
    """Draw and save the experiment's PNG figures; returns name -> path."""
    from tff_ser import plots
    figures: Dict[str, pathlib.Path] = {}

    def save(name, fig):
        figures[name] = plots.save_figure(fig, out / f"{name}.png")

    corpus_note = _corpus_short(table)
    by_id = {s.run_id: s for s in specs}
    class_names = None
    for r in results.values():
        class_names = r.final_metrics.get("validation", {}).get("class_names") or class_names
    cells = {}
    for run_id, r in results.items():
        cm = r.final_metrics.get("validation", {}).get("confusion_matrix")
        if cm is not None:
            spec = by_id[run_id]
            col = SETUP_LABELS.get(spec.setup, spec.setup)
            if isinstance(config, ClientCountSweep):
                col = f"k = {spec.clients}"
            # summed over seeds: the held-out clips of every seed's run, pooled
            cm = np.asarray(cm)
            cells[(spec.model, col)] = cells.get((spec.model, col), 0) + cm
    if cells:
        save("confusion_matrices", plots.plot_confusion_grid(
            cells, class_names=class_names,
            title=f"{config.name}: confusion matrices on held-out speakers ({corpus_note}"
                  + (f"; summed over {len(config.seeds)} seeds" if len(config.seeds) > 1 else "")
                  + ")"))

    if isinstance(config, AlgorithmComparison):
        save("accuracy_vs_epsilon", plots.plot_metric_vs_cost(
            table, cost="epsilon", xlabel="epsilon at delta = 1e-5 (log scale; no DP at the right)",
            title=f"Accuracy against privacy ({corpus_note})"))
        save("accuracy_vs_bytes", plots.plot_metric_vs_cost(
            table, cost="bytes_up", scale=1e-6,
            xlabel="MB sent by the clients over the run (log scale)",
            title=f"Accuracy against communication ({corpus_note})"))
    if isinstance(config, ClientCountSweep):
        save("f1_vs_clients", plots.plot_f1_vs_clients(
            table, title=f"Effect of the number of IID clients on macro F1 "
                         f"({_plural(config.rounds, 'round')}, {corpus_note})"))
    else:
        save("metrics", plots.plot_metric_bars(
            table.assign(setup=table["setup"].map(lambda s: SETUP_LABELS.get(s, s))),
            title=f"{config.name}: held-out scores ({corpus_note})"))

    curves: Dict[tuple, list] = {}
    for run_id, r in results.items():
        spec = by_id[run_id]
        rounds, values = _history_curve(r)
        if len(rounds) > 0:
            label = SETUP_LABELS.get(spec.setup, spec.setup)
            if isinstance(config, ClientCountSweep):
                label = f"k = {spec.clients}"
            curves.setdefault((spec.model, label), []).append(dict(zip(rounds, values)))
    panels = {}
    for (model, label), seeds in curves.items():
        # the mean over seeds, at the rounds every seed scored
        common = sorted(set.intersection(*(set(c) for c in seeds)))
        panels.setdefault(model, {})[label] = (
            common, [float(np.mean([c[r] for c in seeds])) for r in common])
    if panels:
        save("learning_curves", plots.plot_learning_curves(
            panels, ylabel="Held-out accuracy (fraction of clips)",
            title=f"{config.name}: accuracy per round (federated) / epoch (centralized)"
                  + ("; mean over seeds" if len(config.seeds) > 1 else "")))
    return figures


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _corpus_short(table: pd.DataFrame) -> str:
    corpora = sorted(set(table["corpus"].dropna()))
    names = ["generated corpus" if c == "generated" else c for c in corpora]
    return ", ".join(names) or "unknown corpus"


# ---------------------------------------------------------------------------
# summary.md
# ---------------------------------------------------------------------------

def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f",
                   formats: Optional[Dict[str, str]] = None) -> str:
    """A pipe table of ``frame`` (no extra dependency); missing values are blank.

    ``formats`` maps column names to format specs overriding ``floatfmt``.
    """
    formats = formats or {}

    def cell(v, column):
        if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return format(float(v), formats.get(column, floatfmt))
        return str(v)
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v, c) for v, c in zip(row, frame.columns)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule] + body)


def seed_summary(table: pd.DataFrame, metrics: Sequence[str] = SEED_METRICS) -> pd.DataFrame:
    """One row per condition (a run's setting without its seed) of ``results.csv``.

    Columns: ``condition``, ``model``, ``setup``, ``mode``, ``clients``,
    ``seeds`` (how many), ``seed_list``, and for each metric its mean
    (``<metric>``), sample sd (``<metric>_sd``) and 95 % t-interval
    (``<metric>_low`` / ``<metric>_high``; NaN with one seed, see
    :func:`tff_ser.stats.mean_interval`).  A table without a ``condition``
    column (one row per run) is read as one seed per row.
    """
    from tff_ser.stats import mean_interval
    if "condition" not in table.columns:
        table = table.assign(condition=table["run_id"] if "run_id" in table.columns
                             else [str(i) for i in range(len(table))])
    rows = []
    for condition, group in table.groupby("condition", sort=False):
        first = group.iloc[0]
        row = {"condition": condition}
        for column in ("model", "setup", "mode", "clients"):
            row[column] = first.get(column)
        row["seeds"] = len(group)
        row["seed_list"] = " ".join(str(int(v)) for v in group["seed"]) \
            if "seed" in group else ""
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce") if metric in group \
                else pd.Series([np.nan] * len(group))
            if values.isna().all():
                row.update({metric: np.nan, f"{metric}_sd": np.nan, f"{metric}_low": np.nan,
                            f"{metric}_high": np.nan})
                continue
            iv = mean_interval(values)  # a NaN beside numbers is refused, not dropped
            row.update({metric: iv.mean, f"{metric}_sd": iv.sd, f"{metric}_low": iv.low,
                        f"{metric}_high": iv.high})
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_sd(row, metric: str) -> str:
    mean, sd = row[metric], row[f"{metric}_sd"]
    if pd.isna(mean):
        return ""
    return f"{mean:.3f}" if pd.isna(sd) else f"{mean:.3f} ± {sd:.3f}"


def _interval(row, metric: str) -> str:
    if pd.isna(row[metric]):
        return ""
    if pd.isna(row[f"{metric}_low"]):
        return "n = 1"
    return f"[{row[f'{metric}_low']:.3f}, {row[f'{metric}_high']:.3f}]"


def results_view(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader compares, named as in paper 001's tables, one row per setting.

    Scores are ``mean ± sd`` over the seeds (just the value with one seed);
    ``F1 95 % CI`` is the t-interval of the macro-F1 mean; ``seeds`` says how
    many runs each row averages.
    """
    summary = seed_summary(table)
    rows = []
    for _, r in summary.iterrows():
        rows.append({
            "model": r["model"], "setup": SETUP_LABELS.get(r["setup"], r["setup"]),
            # centralized runs train on the pooled clips; say so instead of NaN
            "clients": "pooled" if pd.isna(r["clients"]) else int(r["clients"]),
            "seeds": int(r["seeds"]),
            "accuracy": _mean_sd(r, "accuracy"), "precision": _mean_sd(r, "precision_macro"),
            "recall": _mean_sd(r, "recall_macro"), "F1 (macro)": _mean_sd(r, "f1_macro"),
            "F1 95 % CI": _interval(r, "f1_macro"), "UAR": _mean_sd(r, "uar"),
            "client-mean acc": _mean_sd(r, "client_mean_accuracy"),
            "train time (s)": r["train_seconds"]})
    return pd.DataFrame(rows, columns=["model", "setup", "clients", "seeds", "accuracy",
                                       "precision", "recall", "F1 (macro)", "F1 95 % CI",
                                       "UAR", "client-mean acc", "train time (s)"])


def seed_comparisons(table: pd.DataFrame, pairs: Sequence[tuple],
                     metric: str = "f1_macro") -> List[str]:
    """One reading per ``(condition a, condition b)``: difference, intervals, paired test."""
    from tff_ser.stats import compare
    lines = []
    for a, b in pairs:
        ra, rb = table[table["condition"] == a], table[table["condition"] == b]
        if ra.empty or rb.empty:
            continue
        comparison = compare(dict(zip(ra["seed"], ra[metric])), dict(zip(rb["seed"], rb[metric])))
        name = "F1" if metric == "f1_macro" else metric
        lines.append("- " + comparison.reading(a, b, name))
    return lines


def _comparison_pairs(config, table: pd.DataFrame) -> List[tuple]:
    """The differences each experiment's reading rests on."""
    conditions = list(dict.fromkeys(table["condition"]))
    if isinstance(config, Paper004Sweep) and len(config.models) == 2:
        first, second = config.models
        return [(c, first + c[len(second):]) for c in conditions
                if c.startswith(second + "-") and first + c[len(second):] in conditions]
    if isinstance(config, AlgorithmComparison):
        return [(c, f"{m}-fedavg") for m in config.models for c in conditions
                if c.startswith(f"{m}-") and c != f"{m}-fedavg" and f"{m}-fedavg" in conditions]
    if isinstance(config, ClientCountSweep):
        pairs = []
        for model in config.models:
            ks = sorted(config.client_counts)
            pairs += [(f"{model}-k{k}", f"{model}-k{ks[0]}") for k in ks[1:]]
        return pairs
    pairs = []
    for model in config.models:
        setups = [c for c in conditions if c.startswith(f"{model}-")]
        if f"{model}-centralized" in setups:
            pairs += [(c, f"{model}-centralized") for c in setups
                      if c != f"{model}-centralized"]
        if f"{model}-iid" in setups and f"{model}-single_emotion" in setups:
            pairs.append((f"{model}-iid", f"{model}-single_emotion"))
    return pairs


def paper001_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Paper 001 Tables 1-3 beside our Exp 1 rows: accuracy, F1 and training time.

    Only models and setups present in both are listed.
    """
    summary = seed_summary(table)
    rows = []
    for model, setups in PAPER_001_TABLES.items():
        for setup, ref in setups.items():
            ours = summary[(summary["model"] == model) & (summary["setup"] == setup)]
            if ours.empty:
                continue
            r = ours.iloc[0]
            rows.append({"model": model, "setup": SETUP_LABELS[setup], "seeds": int(r["seeds"]),
                         "paper acc": ref["accuracy"], "ours acc": _mean_sd(r, "accuracy"),
                         "paper F1": ref["f1"], "ours F1": _mean_sd(r, "f1_macro"),
                         "ours F1 95 % CI": _interval(r, "f1_macro"),
                         "paper time (s)": ref["train_seconds"],
                         "ours time (s)": r["train_seconds"]})
    return pd.DataFrame(rows, columns=["model", "setup", "seeds", "paper acc", "ours acc",
                                       "paper F1", "ours F1", "ours F1 95 % CI",
                                       "paper time (s)", "ours time (s)"])


def _engines(rows: pd.DataFrame) -> str:
    engines = [e for e in dict.fromkeys(rows["engine"]) if isinstance(e, str)] \
        if "engine" in rows else []
    return "/".join(engines) or "tff"  # runs saved before the column: their config said tff


def per_speaker_comparison(exp1: pd.DataFrame, exp3: pd.DataFrame) -> pd.DataFrame:
    """Paper 001's future work beside Exp 1: centralized, 4 IID clients, one client per speaker.

    Both experiments score the same 18 held-out speakers with the same seeds
    and knobs (20 rounds / epochs, BS 20, Adam 1e-3), so the rows compare
    directly.  One row per model and setup: mean ± sd over seeds of accuracy,
    UAR and macro F1, the F1 interval, training time and the engine(s) that
    computed the federated rounds.
    """
    rows = []
    summaries = {id(exp1): seed_summary(exp1), id(exp3): seed_summary(exp3)}
    for model in dict.fromkeys(exp3["model"]):
        for table, setup in ((exp1, "centralized"), (exp1, "iid"), (exp3, "by_speaker")):
            summary = summaries[id(table)]
            ours = summary[(summary["model"] == model) & (summary["setup"] == setup)]
            if ours.empty:
                continue
            r = ours.iloc[0]
            raw = table[(table["model"] == model) & (table["setup"] == setup)]
            rows.append({"model": model, "setup": SETUP_LABELS[setup],
                         "clients": "pooled" if setup == "centralized" else int(r["clients"]),
                         "seeds": int(r["seeds"]), "accuracy": _mean_sd(r, "accuracy"),
                         "UAR": _mean_sd(r, "uar"), "F1 (macro)": _mean_sd(r, "f1_macro"),
                         "F1 95 % CI": _interval(r, "f1_macro"),
                         "train time (s)": r["train_seconds"],
                         "engine": "-" if setup == "centralized" else _engines(raw)})
    return pd.DataFrame(rows, columns=["model", "setup", "clients", "seeds", "accuracy", "UAR",
                                       "F1 (macro)", "F1 95 % CI", "train time (s)", "engine"])


def f1_by_clients(table: pd.DataFrame, metric: str = "f1_macro") -> pd.DataFrame:
    """Exp 2 as a table: one row per k; per model the mean of ``metric`` over seeds
    (``<model> F1``), its 95 % t-interval (``<model> CI``) and the number of seeds."""
    frame = table.assign(clients=table["clients"].astype(int))
    if "condition" not in frame:
        frame = frame.assign(condition=[f"{m}-k{k}" for m, k in
                                        zip(frame["model"], frame["clients"])])
    summary = seed_summary(frame, metrics=(metric,))
    name = "F1" if metric == "f1_macro" else metric
    out = pd.DataFrame({"k": sorted(summary["clients"].astype(int).unique())})
    for model in dict.fromkeys(frame["model"]):
        rows = summary[summary["model"] == model].set_index(
            summary[summary["model"] == model]["clients"].astype(int))
        out[f"{model} {name}"] = [rows[metric].get(k, np.nan) for k in out["k"]]
        out[f"{model} CI"] = [(_interval(rows.loc[k], metric) if k in rows.index else "")
                              for k in out["k"]]
        out[f"{model} seeds"] = [int(rows["seeds"].get(k, 0)) for k in out["k"]]
    return out


def algorithm_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """The algorithm comparison as a table: one row per recipe, mean ± sd over seeds,
    the F1 95 % interval, epsilon (DP) and the run's MB up / down."""
    summary = seed_summary(table, metrics=("accuracy", "f1_macro", "uar", "train_seconds",
                                           "epsilon", "bytes_up", "bytes_down"))
    rows = []
    for _, r in summary.iterrows():
        rows.append({"model": r["model"], "recipe": r["setup"], "seeds": int(r["seeds"]),
                     "accuracy": _mean_sd(r, "accuracy"), "F1 (macro)": _mean_sd(r, "f1_macro"),
                     "F1 95 % CI": _interval(r, "f1_macro"), "UAR": _mean_sd(r, "uar"),
                     "epsilon": "" if pd.isna(r["epsilon"]) else f"{r['epsilon']:.1f}",
                     "MB up": "" if pd.isna(r["bytes_up"]) else f"{r['bytes_up'] / 1e6:.1f}",
                     "MB down": "" if pd.isna(r["bytes_down"]) else f"{r['bytes_down'] / 1e6:.1f}",
                     "train time (s)": r["train_seconds"]})
    return pd.DataFrame(rows)


def paper000_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Paper 000 Table I's optimal-accuracy point beside our per-speaker runs (mean ± sd)."""
    rows = [{"run": "paper 000 (CREMA-D, 73 clients)", "seeds": "",
             "client-mean acc": f"{PAPER_000_BEST['client_mean_accuracy']:.3f}",
             "client-mean acc 95 % CI": "",
             "train time (s)": PAPER_000_BEST["train_seconds"]}]
    for _, r in seed_summary(table).iterrows():
        rows.append({"run": f"ours: {r['model']} {SETUP_LABELS.get(r['setup'], r['setup'])}",
                     "seeds": int(r["seeds"]),
                     "client-mean acc": _mean_sd(r, "client_mean_accuracy"),
                     "client-mean acc 95 % CI": _interval(r, "client_mean_accuracy"),
                     "train time (s)": r["train_seconds"]})
    return pd.DataFrame(rows)


def _differences_section(config, table: pd.DataFrame) -> List[str]:
    """What the seeds say: each comparison the reading rests on, with its test."""
    lines = seed_comparisons(table, _comparison_pairs(config, table))
    if not lines:
        return []
    return ["## Differences over seeds (macro F1)", "",
            "A difference is claimed only when the 95 % t-intervals of the two means separate "
            "or a paired t-test over the seeds both settings ran with gives p < 0.05 (same "
            "seed = same initial weights, partition and client sampling).", ""] + lines + [""]


def paper004_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Paper 004's setting grid: UAR (mean ± sd over seeds, 95 % CI) per model and K/E/B."""
    rows = []
    for _, r in seed_summary(table).iterrows():
        rows.append({"model": r["model"], "setting": r["setup"], "seeds": int(r["seeds"]),
                     "UAR": _mean_sd(r, "uar"), "UAR 95 % CI": _interval(r, "uar"),
                     "accuracy": _mean_sd(r, "accuracy"), "train time (s)": r["train_seconds"]})
    return pd.DataFrame(rows)


def _paper_section(config, table: pd.DataFrame) -> List[str]:
    if isinstance(config, Paper004Sweep):
        return ["## Paper 004 Fig 2", "",
                f"Paper 004 reports {PAPER_004_BEST['uar']:.1%} UAR for its LSTM after "
                f"{PAPER_004_BEST['rounds']} rounds on {PAPER_004_BEST['corpus']} (one speaker "
                "validates, one tests; the other settings only as curves).  Ours: the "
                "generated corpus, 18 held-out speakers.", "",
                markdown_table(paper004_comparison(table), formats=TIME_FORMATS)]
    if isinstance(config, BaselineVsFederated):
        return ["## Paper 001 Tables 1-3 beside ours", "",
                "The paper's numbers come from its own corpus, split and hardware; they show "
                "the direction of each comparison, not values to match run for run.", "",
                markdown_table(paper001_comparison(table), formats=TIME_FORMATS)]
    if isinstance(config, AlgorithmComparison):
        return ["## Algorithms, compression and privacy", "",
                "Beyond the papers: the same per-speaker task under each recipe. epsilon is "
                "speaker-level, at delta = 1e-5, from dp_accounting's RDP accountant over "
                "the run's sampling (CD samples a fixed number of clients without "
                "replacement); MB up / down are totals over the run (tff_ser.communication).",
                "", markdown_table(algorithm_comparison(table), formats=TIME_FORMATS)]
    if isinstance(config, ClientCountSweep):
        return ["## Paper 001 Fig 7", "",
                "The paper reports F1 rising with k and then falling for the dense model at "
                "k = 6-7 (a figure only, no numbers to set beside ours).", "",
                "Macro F1 on the held-out speakers, by k (ours):", "",
                markdown_table(f1_by_clients(table))]
    return ["## Paper 000 Table I (optimal-accuracy point)", "",
            f"Paper 000's point: NGE {PAPER_000_BEST['rounds']}, NLE "
            f"{PAPER_000_BEST['local_epochs']}, LR {PAPER_000_BEST['client_lr']}, BS "
            f"{PAPER_000_BEST['batch_size']}, CD {PAPER_000_BEST['client_fraction']}, on "
            "CREMA-D with a laptop CPU.", "",
            markdown_table(paper000_comparison(table), formats=TIME_FORMATS)]


def _seed_note(config) -> str:
    counts = {m: len(config.seeds_for(m)) for m in config.models}
    if len(set(counts.values())) == 1:
        return f"seeds {', '.join(map(str, config.seeds_for(config.models[0])))}"
    return "; ".join(f"{m}: seeds {', '.join(map(str, config.seeds_for(m)))}" for m in counts)


def machines_line(results: Dict[str, "RunResult"]) -> str:
    """Which machine trained which runs (``result.extra["machine"]``), for a summary.

    The same seed reproduces a run's metrics on the same machine and software,
    not across CPUs (README, "Reproducibility"), so a table's rows say where
    they were trained.
    """
    from tff_ser.runtime import describe_machine
    groups: Dict[str, List[str]] = {}
    for run_id, result in results.items():
        info = result.extra.get("machine")
        label = describe_machine(info) if isinstance(info, dict) else \
            "not recorded (trained before runs recorded their machine, 2026-12-03)"
        groups.setdefault(label, []).append(run_id)
    if len(groups) == 1:
        return next(iter(groups)) + " (every run)"
    return "; ".join(f"{label}: " + ", ".join(f"`{r}`" for r in runs)
                     for label, runs in groups.items())


def write_summary(path: pathlib.Path, *, config, table: pd.DataFrame,
                  figures: Dict[str, pathlib.Path], corpus: str, command: str,
                  wall_seconds: float, specs: Sequence[RunSpec],
                  reused: Sequence[str] = (), machines: Optional[str] = None) -> None:
    """Write ``summary.md`` in one step (it marks the folder as finished).

    ``machines`` (:func:`machines_line`) says which machine trained which runs.
    """
    import tff_ser
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    variant = "quick variant (small corpus, few rounds: a smoke run, not the paper's setting)" \
        if config.quick else "full size (the paper's settings)"
    first = table.iloc[0] if not table.empty else {}
    # fl.seed is replaced by each run's own seed (``seeds``), so it is not a setting here
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("name", "paper", "quick", "seed")}
    lines = [
        f"# {config.name}: {config.paper}", "",
        f"- **Corpus**: {corpus}",
        f"- **Variant**: {variant}",
        f"- **Command**: `{command}`",
        f"- **tff_ser** {tff_ser.__version__}, run {now}, wall time {wall_seconds:.0f} s "
        f"({wall_seconds / 60:.1f} min)",
        f"- **Held-out speakers**: {first.get('val_speakers')} ({first.get('val_clips')} clips, "
        f"one validation client each); training speakers: {first.get('train_speakers')} "
        f"({first.get('train_clips')} clips)",
        f"- **Settings**: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
    ]
    run_walls = pd.to_numeric(table.get("wall_seconds"), errors="coerce") \
        if not table.empty else pd.Series(dtype=float)
    if run_walls.notna().any():
        slowest = table.loc[run_walls.idxmax()]
        lines.append(f"- **Runs' own wall times**, summed: {run_walls.sum():.0f} s "
                     f"({run_walls.sum() / 3600:.2f} h) on {os.cpu_count()} CPU core(s); "
                     f"longest `{slowest['run_id']}` {run_walls.max():.0f} s")
    if machines:
        lines.append(f"- **Trained on**: {machines}; the same seed gives the same metrics on "
                     "the same machine and software, another CPU gives another draw "
                     "(README, \"Reproducibility\")")
    if reused:
        lines.append(f"- **Read back, not retrained** (saved by an earlier run with the same "
                     f"settings and corpus; their times are from that run): "
                     + ", ".join(f"`{r}`" for r in reused))
    lines += [
        "",
        "## Results on the held-out speakers", "",
        f"One row per setting; scores are mean ± sd over its seeds ({_seed_note(config)}), "
        "`F1 95 % CI` the t-interval of the mean (none with one seed).  "
        "accuracy, macro precision / recall / F1 and UAR over the pooled held-out clips; "
        "client-mean acc = mean of per-speaker accuracies (paper 000's objective); train time "
        "= seconds in training steps (federated: the rounds' `process.next`, centralized: "
        "`fit`), evaluation excluded.", "",
        markdown_table(results_view(table), formats=TIME_FORMATS), "",
    ]
    lines += _differences_section(config, table)
    lines += _paper_section(config, table) + [""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({p.name})" for name, p in figures.items()] + [""]
    lines += ["## Files", "",
              f"- `{TABLE_FILE}`: every number above, one row per run and seed",
              f"- `{RUNS_DIR}/<run_id>/result.json`, `history.csv`: each run's config, "
              "per-round history and final metrics (confusion matrix, per-class scores)",
              "- runs: " + ", ".join(f"`{s.run_id}`" for s in specs), ""]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)
