"""The grid as an Optuna study that any number of workers, on any machines, finish once.

Storage
-------
A study lives in an Optuna storage: by default a journal file
``<dir>/study.journal`` (:class:`optuna.storages.JournalStorage` over
:class:`optuna.storages.journal.JournalFileBackend`, safe for several
processes on one machine or on a shared file system), or any RDB URL
(``postgresql://user:pass@host/db`` -- needs ``pip install psycopg2-binary``
-- or ``sqlite:///file.db``), which is how workers on several machines share
one study.

Every point exactly once (Optuna's public API only)
---------------------------------------------------
:func:`create_grid_study` makes a two-objective study (Acc maximised, CT
minimised) and **enqueues every grid point once** (``study.enqueue_trial``,
the point also kept as the user attribute ``tff_ser:point``): a point
already present as a waiting, running or finished trial is skipped, so
creating the study again is a no-op.  Workers (:func:`run_worker`) run
``study.optimize(objective, n_trials=1)`` while trials wait: ``optimize``
pops an enqueued trial (Optuna's own atomic WAITING -> RUNNING transition),
runs the RDB heartbeat and tells the result.  No sampler is ever asked for a
point: a trial that was not popped from the queue (two workers raced for
the last waiting one) and a popped trial whose point is already finished, or
running under a lower-numbered trial, are closed as PRUNED without
training (``not_queued`` / ``duplicate_of``).  The queue order
(:meth:`GridSpace.points`) keeps concurrent workers on different
trajectories.

Killed workers
--------------
A running trial records who runs it (host, boot time, pid) and a heartbeat:

* RDB storages support Optuna's heartbeat (``heartbeat_interval`` /
  ``grace_period`` of :class:`~optuna.storages.RDBStorage`);
  :func:`optuna.storages.fail_stale_trials` fails stale trials and the
  storage's callback re-enqueues their points;
* :class:`~optuna.storages.JournalStorage` has no heartbeat in Optuna 5
  (it is not a ``BaseHeartbeat``), so workers write a ``tff_ser:heartbeat``
  user attribute every ``heartbeat_interval`` seconds instead and treat a
  trial silent for ``grace_period`` as stale;
* on either storage, a trial whose worker ran on this machine and whose
  process is gone is stale at once (no waiting out the grace period).

A stale trial is failed with ``study.tell(number, state=FAIL)`` (exactly one
worker wins that transition: the others' tell raises) and its point is
enqueued again (``retry_of``).  The retry resumes the point's
trajectory from its last checkpoint (:mod:`tff_ser.hpo.objective`), so a
kill costs at most ``checkpoint_every`` rounds; finished points are never
recomputed.  A point whose every trial failed (e.g. an error) is queued again
by the next :func:`create_grid_study` (``tff-ser hpo run``).

Samplers
--------
:func:`compare_samplers` runs TPE, NSGA-II and random search on the same
categorical space.  The objective is deterministic per point, so those
studies are scored by **looking up the grid's recorded values**, not by
training again.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import warnings
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from tff_ser.hpo.objective import (DEFAULT_CHECKPOINT_EVERY, RunSettings, SERVER_LR_NOTE,
                                   evaluate_point, same_task, settings_digest, task_fingerprint,
                                   trajectory_busy)
from tff_ser.hpo.space import VARIABLES, GridSpace, get_grid, point_key, trajectory_key

#: Study names of the two grids.
STUDY_NAMES = {"paper000": "paper000_grid", "quick": "paper000_grid_quick"}
#: Default results folders of the two grids.
DEFAULT_DIRS = {"paper000": "results/hpo_grid", "quick": "results/_scratch/hpo_grid-quick"}
JOURNAL_FILE = "study.journal"
TRAJECTORY_DIR = "trajectories"

#: Study user attribute holding the settings every worker must share.
SETTINGS_ATTR = "tff_ser:settings"
#: Trial system attributes written by workers.
WORKER_ATTR, HEARTBEAT_ATTR = "tff_ser:worker", "tff_ser:heartbeat"
#: User attribute holding a finished point's accuracy per validation speaker.
PER_SPEAKER_ATTR = "validation_per_client_accuracy"

DEFAULT_HEARTBEAT_INTERVAL = 30
DEFAULT_GRACE_PERIOD = 120


def _optuna():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------

def default_storage(directory: str) -> str:
    """The journal file of a study folder."""
    return os.path.join(directory, JOURNAL_FILE)


def is_rdb_url(storage: str) -> bool:
    return "://" in storage


def open_storage(storage: str, *, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
                 grace_period: int = DEFAULT_GRACE_PERIOD):
    """An Optuna storage from a journal file path or an RDB URL.

    Parameters
    ----------
    storage : str
        ``path/to/study.journal`` or ``postgresql://...`` / ``sqlite:///...``.
    heartbeat_interval, grace_period : int
        Seconds; RDB storages get Optuna's own heartbeat with a callback
        that re-enqueues a stale trial's point.
    """
    optuna = _optuna()
    if heartbeat_interval < 1 or grace_period <= heartbeat_interval:
        raise ValueError(f"need heartbeat_interval >= 1 and grace_period > heartbeat_interval; "
                         f"got {heartbeat_interval} and {grace_period}")
    if is_rdb_url(storage):
        heartbeat = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
        try:
            with warnings.catch_warnings():
                # Optuna marks its heartbeat experimental; it is what RDB studies need.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                try:
                    return optuna.storages.RDBStorage(
                        storage, **heartbeat, heartbeat_stale_trial_callback=_retry_failed_trial)
                except TypeError:  # Optuna < 4.9 names the callback differently
                    return optuna.storages.RDBStorage(
                        storage, **heartbeat, failed_trial_callback=_retry_failed_trial)
        except ModuleNotFoundError as exc:
            raise RuntimeError(
                f"the storage URL {storage.split('://')[0]}://... needs a database driver that "
                f"is not installed ({exc.name}); for PostgreSQL run "
                "`pip install psycopg2-binary` in this environment") from exc
    from optuna.storages.journal import JournalFileBackend
    parent = os.path.dirname(os.path.abspath(storage))
    os.makedirs(parent, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def _native_heartbeat(storage) -> bool:
    get = getattr(storage, "get_heartbeat_interval", None)
    return bool(get is not None and get() is not None)


# --------------------------------------------------------------------------
# creating the study
# --------------------------------------------------------------------------

def _distributions(space: GridSpace) -> dict:
    optuna = _optuna()
    return {v: optuna.distributions.CategoricalDistribution(list(space.levels[v]))
            for v in VARIABLES}


#: User attribute of an enqueued trial holding its grid point.
POINT_ATTR = "tff_ser:point"


def _trial_point(trial) -> Optional[dict]:
    """The grid point of a trial (the point it was queued with, or its params)."""
    params = trial.user_attrs.get(POINT_ATTR) or trial.params \
        or trial.system_attrs.get("fixed_params")  # studies made before tff_ser:point
    if not params or any(v not in params for v in VARIABLES):
        return None
    return {v: params[v] for v in VARIABLES}


def load_study(storage, study_name: str, space: Optional[GridSpace] = None):
    """Open an existing grid study (its space is read from the study if not given)."""
    optuna = _optuna()
    if isinstance(storage, str):
        if not is_rdb_url(storage) and not os.path.exists(storage):
            raise ValueError(f"no study journal at {storage}; create the study with "
                             "`tff-ser hpo run` first, or pass --dir/--storage of an existing one")
        storage = open_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError as exc:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ValueError(f"no study named {study_name!r} in this storage (it holds {names}); "
                         "create it with `tff-ser hpo run` first") from exc
    settings = study.user_attrs.get(SETTINGS_ATTR)
    if settings is None:
        raise ValueError(f"study {study_name!r} was not made by tff_ser.hpo (no {SETTINGS_ATTR})")
    return study


def existing_study(storage, study_name: str):
    """The grid study if the storage holds it, else None (never creates anything).

    ``storage`` is a journal path / RDB URL or an opened storage.  Pollers
    should open the storage once (``open_storage``) and pass it here: each
    opening of an RDB URL is a new connection pool, and a loop that opens one
    per call runs a PostgreSQL server out of connections.
    """
    optuna = _optuna()
    if isinstance(storage, str):
        if not is_rdb_url(storage) and not os.path.exists(storage):
            return None
        storage = open_storage(storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    return load_study(storage, study_name) if study_name in names else None


def study_settings(study) -> dict:
    """The settings a grid study was created with (space, corpus, run settings, data)."""
    return study.user_attrs[SETTINGS_ATTR]


def create_grid_study(storage, study_name: str, *, space: GridSpace, settings: RunSettings,
                      corpus: str, fingerprint: Mapping, data_dir: Optional[str] = None,
                      split_seed: int = 0, train_client_sizes: Sequence[int] = ()):
    """Create (or open) the grid study and enqueue every point not yet present.

    Returns ``(study, number of points enqueued now)``.  Opening a study made
    with other settings (space, seed, server learning rate, engine, data) is
    refused.  ``train_client_sizes`` (clips per training client) is kept
    for the report's estimate of the TFF process's time.
    """
    optuna = _optuna()
    storage = open_storage(storage) if isinstance(storage, str) else storage
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True,
        directions=["maximize", "minimize"])
    wanted = {"space": space.to_dict(), "run": settings.to_dict(), "split_seed": split_seed,
              "task": dict(fingerprint), "size": space.size}
    saved = study.user_attrs.get(SETTINGS_ATTR)
    if saved is None:
        study.set_user_attr(SETTINGS_ATTR, {
            **wanted, "corpus": corpus, "data_dir": data_dir,
            "train_client_sizes": [int(n) for n in train_client_sizes],
            "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds")})
        study.set_user_attr("objectives", ["accuracy (max)", "computation_time s (min)"])
    else:
        differs = [k for k in ("space", "run", "split_seed", "size") if saved.get(k) != wanted[k]]
        if differs or not same_task(saved["task"], wanted["task"]):
            raise ValueError(
                f"study {study_name!r} already exists with other settings (differs in "
                f"{differs or ['task data']}); use another --dir/--storage or --study name")
    return study, enqueue_grid(study, space)


def enqueue_grid(study, space: GridSpace) -> int:
    """Enqueue every point of ``space`` that has no waiting, running or finished trial."""
    optuna = _optuna()
    live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING,
            optuna.trial.TrialState.COMPLETE)
    present = set()
    for trial in study.get_trials(deepcopy=False, states=live):
        point = _trial_point(trial)
        if point is not None:
            present.add(point_key(point))
    added = 0
    for point in space.points():
        if point_key(point) not in present:
            study.enqueue_trial(point, user_attrs={POINT_ATTR: point})
            added += 1
    return added


# --------------------------------------------------------------------------
# stale trials
# --------------------------------------------------------------------------

def machine_identity() -> str:
    """Host name plus boot time: tells apart containers that share a host name."""
    import psutil
    return f"{socket.gethostname()}@{int(psutil.boot_time())}"


def _process_alive(pid: int, started: float) -> bool:
    import psutil
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def _last_sign_of_life(trial) -> float:
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(float(beat or 0.0), start)


def _retry_failed_trial(study, trial, reason: str = "no heartbeat") -> None:
    """Queue a failed (stale) trial's point again, unless it is already live or done.

    The new trial records ``retry_of`` (the failed trial's number) and
    ``retry_reason``.
    """
    optuna = _optuna()
    point = _trial_point(trial)
    if point is None:
        return
    live = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING,
            optuna.trial.TrialState.COMPLETE)
    for other in study.get_trials(deepcopy=False, states=live):
        if other.number != trial.number and _trial_point(other) is not None \
                and point_key(_trial_point(other)) == point_key(point):
            return
    study.enqueue_trial(point, user_attrs={POINT_ATTR: point, "retry_of": trial.number,
                                           "retry_reason": reason})


def recover_stale_trials(study, *, grace_period: int = DEFAULT_GRACE_PERIOD,
                         native_heartbeat: bool = False) -> List[int]:
    """Fail running trials whose worker is gone and re-enqueue their points.

    Returns the numbers of the trials failed here.  Safe to call from every
    worker at once: only one wins each RUNNING -> FAIL transition (the
    others' ``study.tell`` raises), and only the winner re-enqueues.
    ``native_heartbeat``: the storage runs Optuna's RDB heartbeat, whose
    :func:`optuna.storages.fail_stale_trials` handles silent trials (its
    callback re-enqueues them).
    """
    optuna = _optuna()
    failed: List[int] = []
    if native_heartbeat:
        before = {t.number for t in study.get_trials(deepcopy=False,
                                                     states=(optuna.trial.TrialState.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # the storage's callback re-enqueues
        failed += [t.number for t in study.get_trials(deepcopy=False,
                                                      states=(optuna.trial.TrialState.FAIL,))
                   if t.number not in before]
    here, now = machine_identity(), time.time()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        who = trial.user_attrs.get(WORKER_ATTR) or {}
        dead_here = who.get("machine") == here and not _process_alive(who["pid"], who["started"])
        # Optuna's RDB heartbeat ignores a trial that never beat (its worker
        # died right after popping it); the start time stands in for a beat.
        silent = (not who or not native_heartbeat) \
            and now - _last_sign_of_life(trial) > grace_period
        if not (dead_here or silent):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna warns when telling a trial it did not ask
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        except (RuntimeError, ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker failed (or the worker finished) it first
        _retry_failed_trial(study, trial, reason="worker process gone" if dead_here else
                            f"no heartbeat for {grace_period} s")
        failed.append(trial.number)
    return failed


class _Heartbeat:
    """Background thread that keeps a running trial's ``tff_ser:heartbeat`` fresh.

    Only for storages without Optuna's heartbeat (journal files); on RDB
    storages ``study.optimize`` runs Optuna's own.
    """

    def __init__(self, trial, interval: float):
        self.trial, self.interval = trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _beat(self) -> None:
        self.trial.set_user_attr(HEARTBEAT_ATTR, time.time())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._beat()
            except Exception:  # the trial finished (or was failed) meanwhile: stop beating
                return

    def __enter__(self):
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------

@dataclasses.dataclass
class WorkerSummary:
    """What one :func:`run_worker` call did."""

    completed: List[int] = dataclasses.field(default_factory=list)
    duplicates: List[int] = dataclasses.field(default_factory=list)
    recovered: List[int] = dataclasses.field(default_factory=list)
    rounds_computed: int = 0


def configure_threads(threads: Optional[int]) -> None:
    """Limit TensorFlow's thread pools (call before TensorFlow runs anything).

    Several workers on one machine should split its cores, so that CT is
    measured on the cores a worker actually has.
    """
    from tff_ser.runtime import set_threads
    set_threads(threads)


def load_study_task(settings: Mapping, *, data_dir: Optional[str] = None, progress: bool = False):
    """Paper 000's task as the study was made: (task, fingerprint, corpus line).

    ``data_dir`` overrides the study's corpus directory (another machine may
    keep the corpus elsewhere); the data must still match the study's
    fingerprint.
    """
    from tff_ser.experiments.common import load_features, task_from_features
    from tff_ser.experiments.runner import describe_corpus
    data_dir = data_dir if data_dir is not None else settings.get("data_dir")
    load, features = load_features("mlp", data_dir=data_dir, size=settings.get("size", "full"),
                                   corpus_seed=0, progress=progress)
    # The partition (one client per speaker) and the held-out speakers do not
    # depend on the training seed.
    task = task_from_features(features, "mlp", partition="by_speaker", seed=0,
                              split_seed=int(settings.get("split_seed", 0)))
    return task, task_fingerprint(task), describe_corpus(load, load.clips)


def _duplicate_of(study, number: int, point: Mapping) -> Optional[int]:
    """Number of a finished trial, or a lower-numbered running one, of the same point."""
    optuna = _optuna()
    key = point_key(point)
    for other in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.RUNNING)):
        if other.number == number or _trial_point(other) is None:
            continue
        if point_key(_trial_point(other)) != key:
            continue
        if other.state == optuna.trial.TrialState.COMPLETE or other.number < number:
            return other.number
    return None


def _queued_point(study, number: int) -> Optional[dict]:
    """The point a trial was enqueued with; None for a trial made by ``ask`` itself."""
    for trial in study.get_trials(deepcopy=False):
        if trial.number == number:
            return trial.user_attrs.get(POINT_ATTR) and _trial_point(trial)
    return None


def completed_points(study) -> int:
    """Number of distinct grid points with a finished (COMPLETE) trial."""
    optuna = _optuna()
    return len({point_key(_trial_point(t)) for t in
                study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if _trial_point(t) is not None})


def run_worker(storage: str, study_name: str, *, directory: str,
               data_dir: Optional[str] = None, threads: Optional[int] = None,
               progress: bool = True, heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
               grace_period: int = DEFAULT_GRACE_PERIOD, poll_seconds: float = 2.0,
               checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
               max_trials: Optional[int] = None, wait_for_running: bool = True,
               log: Callable[[str], None] = print) -> WorkerSummary:
    """Evaluate queued grid points until none is left.

    Parameters
    ----------
    storage : str
        Journal file or RDB URL of the study.
    study_name : str
    directory : str
        Study folder: trajectories go to ``<directory>/trajectories/``.  Give
        workers on several machines the same (shared) folder to share
        trajectories; separate folders only cost recomputation.
    data_dir : str, optional
        Corpus directory if not the one recorded in the study.
    threads : int, optional
        TensorFlow threads for this worker (see :func:`configure_threads`).
    progress : bool
        Progress bar over the study's finished points.
    heartbeat_interval, grace_period : int
        Seconds between heartbeats, and silence after which a running trial
        is declared stale (see the module docstring).
    poll_seconds : float
        With nothing queued but trials running elsewhere, check this often
        whether one of them went stale (its retry is then picked up here).
    checkpoint_every : int
        Trajectory checkpoint interval in rounds.
    max_trials : int, optional
        Stop after this many evaluated trials.
    wait_for_running : bool
        Keep polling while other workers' trials run (default), so that no
        retried point is left behind; False: stop as soon as the queue is empty.
    log : callable
        Where one-line messages go.

    Returns
    -------
    WorkerSummary
    """
    optuna = _optuna()
    configure_threads(threads)
    storage_obj = open_storage(storage, heartbeat_interval=heartbeat_interval,
                               grace_period=grace_period)
    study = load_study(storage_obj, study_name)
    settings = study_settings(study)
    space = GridSpace.from_dict(settings["space"])
    run = RunSettings(**settings["run"])
    task, fingerprint, corpus = load_study_task(settings, data_dir=data_dir)
    if not same_task(fingerprint, settings["task"]):
        raise ValueError(
            f"this worker's data ({corpus}) differs from the data study {study_name!r} was "
            f"made with ({settings.get('corpus')}); point --data-dir at the same corpus "
            "(generated with the same seed and size)")
    trajectory_root = os.path.join(directory, TRAJECTORY_DIR, settings_digest(run, fingerprint))
    distributions = _distributions(space)
    summary = WorkerSummary()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(space), initial=completed_points(study), desc=f"{study_name}",
                   unit="point")
    native = _native_heartbeat(storage_obj)
    try:
        while max_trials is None or len(summary.completed) < max_trials:
            summary.recovered += recover_stale_trials(study, grace_period=grace_period,
                                                      native_heartbeat=native)
            waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
            if not waiting:
                running = study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.RUNNING,))
                if not running or not wait_for_running:
                    break
                time.sleep(poll_seconds)
                continue
            outcome = _run_trial(study, task, space, run, distributions,
                                 trajectory_root=trajectory_root, fingerprint=fingerprint,
                                 heartbeat=None if native else heartbeat_interval,
                                 checkpoint_every=checkpoint_every, log=log)
            if outcome["kind"] == "duplicate":
                summary.duplicates.append(outcome["number"])
            elif outcome["kind"] == "complete":
                summary.completed.append(outcome["number"])
                summary.rounds_computed += outcome["rounds"]
            if bar is not None:
                bar.n = completed_points(study)
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return summary


def _run_trial(study, task, space, run, distributions, *, trajectory_root, fingerprint,
               heartbeat, checkpoint_every, log) -> dict:
    """Pop one queued trial with ``study.optimize(n_trials=1)`` and evaluate its point.

    Returns ``{"kind": "complete" | "duplicate" | "not_queued" | "stale",
    "number": trial number, "rounds": rounds computed}``.
    """
    optuna = _optuna()
    import contextlib
    import psutil
    outcome = {"kind": None, "number": None, "rounds": 0}

    def objective(trial):
        outcome["number"] = trial.number
        # Who runs it goes out first, so a worker killed from here on leaves a
        # trial that is stale at once on this machine.
        trial.set_user_attr(WORKER_ATTR, {"machine": machine_identity(), "pid": os.getpid(),
                                          "started": psutil.Process().create_time()})
        queued = _queued_point(study, trial.number)
        if queued is None:  # raced for the last waiting trial: ask() made a fresh one
            trial.set_user_attr("not_queued", True)
            outcome["kind"] = "not_queued"
            raise optuna.TrialPruned("not a queued grid point")
        beat = _Heartbeat(trial, heartbeat) if heartbeat else contextlib.nullcontext()
        with beat:
            point = {v: trial.suggest_categorical(v, distributions[v].choices)
                     for v in VARIABLES}
            original = _duplicate_of(study, trial.number, point)
            if original is not None:
                trial.set_user_attr("duplicate_of", original)
                outcome["kind"] = "duplicate"
                raise optuna.TrialPruned(f"point already run by trial {original}")
            t0 = time.perf_counter()
            try:
                result = evaluate_point(task, point, run, trajectory_root=trajectory_root,
                                        milestones=space.milestones,
                                        final_round=space.final_round,
                                        checkpoint_every=checkpoint_every,
                                        fingerprint=fingerprint)
            except BaseException as exc:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                raise
            wall = time.perf_counter() - t0
        for key, value in {"trajectory": result.trajectory,
                           "rounds_computed": result.rounds_computed,
                           "wall_seconds": wall, "engine": run.engine,
                           "host": socket.gethostname(),
                           **{f"validation_{k}": v for k, v in result.metrics.items()}}.items():
            trial.set_user_attr(key, value)
        outcome.update(kind="complete", rounds=result.rounds_computed)
        return result.accuracy, result.computation_time

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=1, gc_after_trial=False)
    except optuna.exceptions.UpdateFinishedTrialError:
        # Declared stale while it ran (e.g. a long pause); its retry reads the
        # same trajectory, so nothing is lost.
        log(f"trial {outcome['number']} was failed as stale while running; its retry will "
            "finish it")
        outcome["kind"] = "stale"
    return outcome


# --------------------------------------------------------------------------
# running the grid with local workers
# --------------------------------------------------------------------------

@dataclasses.dataclass
class GridRun:
    """Outcome of :func:`run_grid`."""

    study: object
    storage: str
    directory: str
    table: pd.DataFrame
    wall_seconds: float
    corpus: str
    enqueued: int
    worker_returncodes: List[int]


def worker_command(storage: str, study_name: str, directory: str, *,
                   data_dir: Optional[str] = None, threads: Optional[int] = None,
                   progress: bool = False) -> List[str]:
    """The ``tff-ser hpo worker`` command line that joins a study."""
    cmd = [sys.executable, "-m", "tff_ser.cli", "hpo", "worker", "--storage", storage,
           "--study", study_name, "--dir", directory]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if threads:
        cmd += ["--threads", str(threads)]
    if not progress:
        cmd += ["--no-progress"]
    return cmd


def prepare_grid_study(*, quick: bool = False, storage: Optional[str] = None,
                       directory: Optional[str] = None, data_dir: Optional[str] = None,
                       settings: Optional[RunSettings] = None, study_name: Optional[str] = None,
                       progress: bool = True):
    """Load the task, create/open the study and enqueue its points.

    Returns ``(study, storage, directory, enqueued, corpus)``.
    """
    space = get_grid(quick)
    directory = directory or DEFAULT_DIRS[space.name]
    storage = storage or default_storage(directory)
    study_name = study_name or STUDY_NAMES[space.name]
    settings = settings or RunSettings()
    task, fingerprint, corpus = load_study_task(
        {"size": space.size, "data_dir": data_dir, "run": settings.to_dict()},
        data_dir=data_dir, progress=progress)
    sizes = [len(task.train_clients[c]) for c in sorted(task.train_clients)]
    study, enqueued = create_grid_study(storage, study_name, space=space, settings=settings,
                                        corpus=corpus, fingerprint=fingerprint,
                                        data_dir=data_dir, train_client_sizes=sizes)
    return study, storage, directory, enqueued, corpus


def run_grid(*, quick: bool = False, storage: Optional[str] = None,
             directory: Optional[str] = None, workers: int = 1,
             data_dir: Optional[str] = None, settings: Optional[RunSettings] = None,
             study_name: Optional[str] = None, threads: Optional[int] = None,
             progress: bool = True, poll_seconds: float = 2.0) -> GridRun:
    """Create/enqueue the grid study and finish it with ``workers`` local worker processes.

    Parameters
    ----------
    quick : bool
        The 8-point CI grid on the 12-speaker corpus instead of paper 000's 576 points.
    storage : str, optional
        Journal file or RDB URL (default ``<directory>/study.journal``).
    directory : str, optional
        Study folder (default ``results/hpo_grid``; quick:
        ``results/_scratch/hpo_grid-quick``).
    workers : int
        Worker subprocesses (``tff-ser hpo worker``); 0 evaluates in this process.
    data_dir : str, optional
        Corpus directory (default: real CREMA-D at data/CREMA-D if present,
        else the generated corpus).
    settings : RunSettings, optional
        Seed, server learning rate, engine (default :class:`RunSettings`).
    study_name : str, optional
    threads : int, optional
        TensorFlow threads per worker (default: the machine's cores split
        evenly between the workers).
    progress : bool
        Progress bar over finished points.
    poll_seconds : float
        How often the progress bar polls the study.

    Returns
    -------
    GridRun
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0; got {workers}")
    t0 = time.perf_counter()
    study, storage, directory, enqueued, corpus = prepare_grid_study(
        quick=quick, storage=storage, directory=directory, data_dir=data_dir,
        settings=settings, study_name=study_name, progress=progress)
    name = study.study_name
    space = GridSpace.from_dict(study_settings(study)["space"])
    if threads is None and workers > 0:
        threads = max(1, (os.cpu_count() or 1) // workers)
    codes: List[int] = []
    if workers == 0:
        run_worker(storage, name, directory=directory, data_dir=data_dir, threads=threads,
                   progress=progress)
    else:
        codes = _run_worker_processes(storage, name, directory, space, workers=workers,
                                      data_dir=data_dir, threads=threads, progress=progress,
                                      poll_seconds=poll_seconds)
    study = load_study(storage, name)
    return GridRun(study=study, storage=storage, directory=directory, table=grid_table(study),
                   wall_seconds=time.perf_counter() - t0, corpus=corpus, enqueued=enqueued,
                   worker_returncodes=codes)


def _run_worker_processes(storage, study_name, directory, space, *, workers, data_dir, threads,
                          progress, poll_seconds) -> List[int]:
    log_dir = os.path.join(directory, "logs")
    os.makedirs(log_dir, exist_ok=True)
    procs, logs = [], []
    cmd = worker_command(storage, study_name, directory, data_dir=data_dir, threads=threads)
    try:
        for i in range(workers):
            path = os.path.join(log_dir, f"worker-{i}.log")
            logs.append(path)
            with open(path, "ab") as out:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL))
        study = load_study(storage, study_name)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(space), initial=completed_points(study), desc=study_name,
                       unit="point")
        while any(p.poll() is None for p in procs):
            time.sleep(poll_seconds)
            if bar is not None:
                bar.n = completed_points(study)
                bar.refresh()
        if bar is not None:
            bar.n = completed_points(study)
            bar.close()
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        raise
    codes = [p.returncode for p in procs]
    for code, path in zip(codes, logs):
        if code != 0:
            with open(path, errors="replace") as f:
                tail = f.read()[-2000:]
            print(f"worker log {path} (exit code {code}), last lines:\n{tail}", file=sys.stderr)
    return codes


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
            "study": study_name, "storage": storage,
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
