"""Run a declared experiment end to end and write its results folder.

:func:`run_experiment` takes a config (an :class:`~tff_ser.experiments.configs.ExperimentConfig`,
usually a baseline's) and writes ``<out>/`` (the report: :mod:`tff_ser.experiments.report`):

* ``runs/<run_id>/`` -- each run's :class:`~tff_ser.results.RunResult`
  (``result.json``, ``history.csv``);
* ``results.csv`` -- one row per run: model, setup, accuracy, macro
  precision / recall / F1, UAR, client-mean accuracy, training time;
* PNG figures (confusion matrices, F1 against k, learning curves, bars);
* ``summary.md`` -- which corpus (a generated one says so), the exact
  command, package version, date, wall time, the table and the figures.

``summary.md`` is written last and removed when a run starts, so a folder
holding one is a finished experiment; a failed run leaves ``FAILED`` (the
traceback) instead and re-raises; an interrupted one (Ctrl-C, SIGTERM) leaves
``PARTIAL``, which says so.  ``only`` trains a subset of the runs (to
split a long experiment over processes or sessions); until every run is
saved, the folder holds ``PARTIAL`` (done and missing runs) instead of the
experiment-level files.  A finished run whose settings and corpus
are unchanged is read back instead of retrained, so an interrupted
full-size experiment picks up where it stopped.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import sys
import time
import traceback
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.corpus.summary import (GENERATED_NOTICE, corpus_fingerprint,  # noqa: F401
                                    describe_corpus)
from tff_ser.task import limit_speakers

if TYPE_CHECKING:
    from tff_ser.results import RunResult
from tff_ser.experiments.configs import CENTRALIZED, RunSpec
from tff_ser.experiments.report import (FAILED_FILE, PARTIAL_FILE, RUNS_DIR,  # noqa: F401
                                        SUMMARY_FILE, TABLE_COLUMNS, TABLE_FILE, draw_figures,
                                        machines_line, problems_note, table_row, write_partial,
                                        write_summary, write_table)

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
    from tff_ser.corpus.problems import corpus_problems, format_problems
    for fs in features.values():
        fs.corpus_problems = corpus_problems(load, fs, load.emotions)
        text = format_problems(fs.corpus_problems)
        if text:
            print(f"{fs.kind} features: {text}", file=sys.stderr, flush=True)
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


def _reusable(run_dir: pathlib.Path, key: dict):
    from tff_ser.results import RunResult
    if not (run_dir / "result.json").is_file():
        return None
    try:
        saved = RunResult.load(run_dir)
    except (ValueError, OSError):
        return None
    return saved if saved.extra.get("run_key") == key else None


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
    task = spec.recipe().task(features, seed=spec.seed)
    personal_test = None
    if spec.personal is not None:  # before the noise: personal-test labels stay clean
        task, personal_test = spec.personal.prepare(task, seed=spec.seed)
    if spec.label_noise:
        from tff_ser.task import choose_clients, with_label_noise
        task = with_label_noise(task, spec.label_noise, seed=spec.seed,
                                clients=choose_clients(task, spec.noisy_clients, seed=spec.seed))
    if spec.teacher:
        task = _distillation_task(task, spec, run_dir)
    if spec.mode == CENTRALIZED:
        from tff_ser.centralized import train_centralized
        result = train_centralized(task, spec.centralized_config(), progress=progress)
    else:
        from tff_ser.federated import train_federated
        checkpoint_dir = str(run_dir / "checkpoint") if (checkpoint and run_dir) else None
        result = train_federated(task, spec.federated_config(), checkpoint_dir=checkpoint_dir,
                                 progress=progress, federated_eval=spec.federated_eval,
                                 engine=spec.engine)
        if spec.personal is not None:
            result.final_metrics["personalized"] = spec.personal.evaluate(
                task, personal_test, result, seed=spec.seed)
        if checkpoint_dir:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if spec.keep_weights and run_dir is not None:
        save_weights(run_dir / WEIGHTS_FILE, spec.model, result.weights)
    # The final weights (104 MB for the dense model) are not part of the record.
    result.extra.pop("weights", None)
    return result


#: A run's final weights, kept for the runs that distil from it (``RunSpec.keep_weights``).
WEIGHTS_FILE = "weights.npz"


def save_weights(path: pathlib.Path, model: str, weights) -> None:
    """Write ``(trainable, non_trainable)`` of preset ``model`` to ``path`` atomically."""
    trainable, non_trainable = weights
    arrays = {f"t{i}": w for i, w in enumerate(trainable)}
    arrays.update({f"n{i}": w for i, w in enumerate(non_trainable)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, model=np.array(model), **arrays)
    os.replace(tmp, path)


def teacher_model_name(path: pathlib.Path) -> str:
    """The preset model whose weights ``path`` (a ``weights.npz``) holds."""
    with np.load(path) as saved:
        return str(saved["model"])


def load_kept_model(run_dir, *, input_shape=None, num_classes: int = 4):
    """The trained Keras model of a run that kept its weights (``RunSpec.keep_weights``).

    Raises FileNotFoundError naming the file when the run kept none.
    """
    from tff_ser.models import build_model
    path = pathlib.Path(run_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: only runs with keep_weights=True (a "
                                "teacher) keep their weights; rerun the experiment to make it")
    with np.load(path) as saved:
        name = str(saved["model"])
        trainable = [saved[f"t{i}"] for i in range(sum(k.startswith("t") for k in saved.files))]
        non_trainable = [saved[f"n{i}"]
                         for i in range(sum(k.startswith("n") for k in saved.files))]
    model = build_model(name, input_shape=input_shape, num_classes=num_classes, seed=0)
    for var, value in zip(model.trainable_weights + model.non_trainable_weights,
                          trainable + non_trainable):
        var.assign(value)
    return model


def teacher_run_id(spec: RunSpec) -> str:
    """The run a distilling ``spec`` learns from: its teacher's condition at the same seed."""
    return f"{spec.teacher}-s{spec.seed}"


def _distillation_task(task, spec: RunSpec, run_dir: Optional[pathlib.Path]):
    """``task`` with ``spec.model`` distilling from the saved teacher run (paper 002)."""
    from tff_ser.distillation import distillation_task, teacher_outputs
    from tff_ser.models import MODELS
    if run_dir is None:
        raise ValueError(f"run {spec.run_id!r} distils from run {teacher_run_id(spec)!r} and "
                         "needs the experiment's runs folder to find its weights")
    path = run_dir.parent / teacher_run_id(spec) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"run {spec.run_id!r} distils from run {teacher_run_id(spec)!r}, whose weights "
            f"{path} are not saved; train the teacher first (run the experiment without "
            f"--only, or with --only {teacher_run_id(spec)!r})")
    teacher = load_kept_model(path.parent, input_shape=task.input_shape,
                              num_classes=task.num_classes)
    model = teacher_model_name(path)
    if MODELS[model].feature_kind != MODELS[spec.model].feature_kind:
        raise ValueError(f"teacher {model!r} reads {MODELS[model].feature_kind!r} features but "
                         f"student {spec.model!r} reads {MODELS[spec.model].feature_kind!r}; "
                         "a teacher scores the student's own inputs")
    return distillation_task(task, spec.model, teacher_outputs(teacher, task.x, spec.kd,
                                                               name=teacher_run_id(spec)),
                             spec.kd)


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
    config : ExperimentConfig
        A registered experiment's config (a baseline's), or one of your own.
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
        metrics do not depend on it (``tests/integration/test_experiments.py``); small
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

    jobs = _check_jobs(jobs)
    out = pathlib.Path(out_dir)
    specs = config.runs()
    from tff_ser.rundir import check_writable
    # before any training: a read-only or full results folder fails now, not after hours
    check_writable(out, what="results folder", need_bytes=2_000_000 * len(specs))
    selected = select_runs(specs, only)
    # An older report must not look like this run's while it runs or after it fails.
    for stale in (TABLE_FILE, SUMMARY_FILE, FAILED_FILE, PARTIAL_FILE):
        (out / stale).unlink(missing_ok=True)
    command = command or f"run_experiment({type(config).__name__}(...), {str(out)!r})"
    checkpoint = (not config.quick) if checkpoint is None else checkpoint
    started = time.perf_counter()
    results: Dict[str, RunResult] = {}
    try:
        _check_models(config)
        corpus, fingerprint, features = _load_features(config, data_dir, progress)
        from tff_ser.models import MODELS
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
        waves = _teachers_first(to_train, specs, out, features, fingerprint)
        trained = {item[0].run_id for wave in waves for item in wave}
        reused = [run_id for run_id in reused if run_id not in trained]  # a teacher retrained
        bar = tqdm(total=sum(map(len, waves)), desc=config.name, unit="run",
                   disable=not progress)
        for wave in waves:
            for run_id, result in _train_runs(wave, config.name, checkpoint=checkpoint,
                                              progress=progress, jobs=jobs):
                results[run_id] = result
                bar.set_postfix_str(run_id)
                bar.update(1)
        bar.close()
        done = [spec for spec in specs if spec.run_id in results]
        speaker_sex = {c.speaker: c.sex for fs in features.values() for c in fs.clips}
        rows = [table_row(spec, results[spec.run_id], speaker_sex) for spec in done]
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
        corpus = corpus + problems_note(features.values())
        figures = draw_figures(config, specs, results, table, out)
        wall = time.perf_counter() - started
        write_summary(out / SUMMARY_FILE, config=config, table=table, figures=figures,
                      corpus=corpus, command=command, wall_seconds=wall, specs=specs,
                      reused=reused, machines=machines_line(results))
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: not a failure; what is saved stays
        done = [spec.run_id for spec in specs if spec.run_id in results]
        write_partial(out / PARTIAL_FILE, config=config, specs=specs, done=done,
                      missing=[spec.run_id for spec in specs if spec.run_id not in results],
                      command=command,
                      interrupted=f"interrupted after {time.perf_counter() - started:.0f} s")
        raise
    except BaseException as exc:
        (out / FAILED_FILE).write_text(
            f"{config.name} failed after {time.perf_counter() - started:.0f} s\n"
            f"command: {command}\n\n{traceback.format_exc()}", encoding="utf-8")
        raise exc
    return ExperimentOutcome(config=config, out_dir=out, table=table, results=results,
                             figures=figures, corpus=corpus, wall_seconds=wall, reused=reused)


def _teachers_first(to_train: List[tuple], specs, out: pathlib.Path, features,
                    fingerprint) -> List[List[tuple]]:
    """``to_train`` in two waves: the teachers the distilling runs need, then the rest.

    A distilling run whose teacher's ``weights.npz`` is not on disk (a fresh
    clone has the teacher's result but not its weights, which are not
    committed) gets its teacher retrained first: same settings and seed, so
    the same weights (``tests/integration/test_distillation.py``).
    """
    from tff_ser.models import MODELS
    by_id = {spec.run_id: spec for spec in specs}
    queued = {item[0].run_id for item in to_train}
    teachers: Dict[str, tuple] = {}
    for spec, *_ in to_train:
        if not spec.teacher:
            continue
        tid = teacher_run_id(spec)
        teacher = by_id.get(tid)
        if teacher is None:
            raise ValueError(f"run {spec.run_id!r} distils from {tid!r}, which is not a run of "
                             "this experiment")
        run_dir = out / RUNS_DIR / tid
        if tid in queued or not (run_dir / WEIGHTS_FILE).is_file():
            fs = features[MODELS[teacher.model].feature_kind]
            teachers[tid] = (teacher, fs, run_dir, _run_key(teacher, fingerprint, fs))
    first = [teachers[t] for t in teachers]
    rest = [item for item in to_train if item[0].run_id not in teachers]
    return [wave for wave in (first, rest) if wave]


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
    if features.corpus_problems is not None:
        result.extra["corpus_problems"] = features.corpus_problems
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
    from tff_ser.features.pipeline import warm_librosa_cache
    warm_librosa_cache()  # workers that extract features must not compile librosa's numba at once
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


