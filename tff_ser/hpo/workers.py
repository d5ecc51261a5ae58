"""Workers: one process popping queued points and training them, and local worker processes."""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import warnings
from typing import Callable, List, Mapping, Optional

import pandas as pd

from tff_ser.hpo.objective import (DEFAULT_CHECKPOINT_EVERY, RunSettings, evaluate_point, same_task, settings_digest, task_fingerprint)
from tff_ser.hpo.space import VARIABLES, GridSpace, get_grid, point_key
from tff_ser.runtime import dies_with_parent
from tff_ser.hpo.readout import grid_table
from tff_ser.hpo.recovery import _Heartbeat, machine_identity, recover_stale_trials
from tff_ser.hpo.storage import (DEFAULT_DIRS, DEFAULT_GRACE_PERIOD, DEFAULT_HEARTBEAT_INTERVAL,
                                  POINT_ATTR, STUDY_NAMES, TRAJECTORY_DIR, WORKER_ATTR,
                                  _distributions, _native_heartbeat, _optuna, _trial_point,
                                  completed_points, create_grid_study, default_storage,
                                  is_rdb_url, load_study, open_storage, study_settings)


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
    """The grid's task as the study was made: (task, fingerprint, corpus line).

    The task recipe (model, partition, clients) is the grid's
    (:class:`~tff_ser.hpo.space.GridSpace`); a study saved without one is
    paper 000's (the MLP, one client per speaker).

    ``data_dir`` overrides the study's corpus directory (another machine may
    keep the corpus elsewhere); the data must still match the study's
    fingerprint.
    """
    from tff_ser.task import TaskRecipe, load_features
    from tff_ser.corpus.summary import describe_corpus
    data_dir = data_dir if data_dir is not None else settings.get("data_dir")
    split_seed = int(settings.get("split_seed", 0))
    recipe = (GridSpace.from_dict(settings["space"]).recipe(split_seed) if "space" in settings
              else TaskRecipe("mlp", split_seed=split_seed))
    load, features = load_features(recipe.model, data_dir=data_dir,
                                   size=settings.get("size", "full"), corpus_seed=0,
                                   progress=progress)
    task = recipe.task(features, seed=0)  # one task for every point (GridSpace.recipe)
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
    from tff_ser.rundir import sweep_temp_files
    sweep_temp_files(trajectory_root)  # only files whose writer is gone: workers share the folder
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
    """The ``tff-ser hpo worker`` command line that joins a study.

    An RDB URL (which may hold a password) is not put on the command line,
    where ``ps`` shows it to every user: the worker reads it from
    :data:`STORAGE_ENV` (see :func:`worker_env`).
    """
    cmd = [sys.executable, "-m", "tff_ser.cli", "hpo", "worker"]
    if not is_rdb_url(storage):
        cmd += ["--storage", storage]
    cmd += ["--study", study_name, "--dir", directory]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    if threads:
        cmd += ["--threads", str(threads)]
    if not progress:
        cmd += ["--no-progress"]
    return cmd


#: Environment variable that hands a storage URL to worker processes.
STORAGE_ENV = "TFF_SER_HPO_STORAGE"


def worker_env(storage: str) -> dict:
    """The environment of a worker started with :func:`worker_command`."""
    env = dict(os.environ)
    if is_rdb_url(storage):
        env[STORAGE_ENV] = storage
    return env


def prepare_grid_study(*, quick: bool = False, storage: Optional[str] = None,
                       directory: Optional[str] = None, data_dir: Optional[str] = None,
                       settings: Optional[RunSettings] = None, study_name: Optional[str] = None,
                       progress: bool = True, space: Optional[GridSpace] = None):
    """Load the task, create/open the study and enqueue its points.

    ``space`` is any :class:`~tff_ser.hpo.space.GridSpace` (default paper
    000's grid, or the quick one); its folder defaults to
    ``results/hpo_<name>`` and its study to ``<name>_grid``.
    Returns ``(study, storage, directory, enqueued, corpus)``.
    """
    space = space or get_grid(quick)
    directory = directory or DEFAULT_DIRS.get(space.name, f"results/hpo_{space.name}")
    storage = storage or default_storage(directory)
    study_name = study_name or STUDY_NAMES.get(space.name, f"{space.name}_grid")
    settings = settings or RunSettings()
    task, fingerprint, corpus = load_study_task(
        {"size": space.size, "data_dir": data_dir, "run": settings.to_dict(),
         "space": space.to_dict()},
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
             progress: bool = True, poll_seconds: float = 2.0,
             space: Optional[GridSpace] = None) -> GridRun:
    """Create/enqueue the grid study and finish it with ``workers`` local worker processes.

    Parameters
    ----------
    quick : bool
        The 8-point CI grid on the 12-speaker corpus instead of paper 000's 576 points.
    space : GridSpace, optional
        Any grid and task recipe instead (model, partition, levels).
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
        settings=settings, study_name=study_name, progress=progress, space=space)
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
                # PDEATHSIG: a worker dies with this process, even when it is SIGKILLed
                # (else both workers ran on under ppid 1 until the grid was done).
                procs.append(subprocess.Popen(dies_with_parent(cmd), stdout=out,
                                              stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL,
                                              env=worker_env(storage)))
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
