"""One grid point of paper 000: train, then score accuracy (Acc) and computation time (CT).

Objectives
----------
* **Acc** -- mean over the validation clients (the 18 held-out speakers) of
  each client's accuracy, :func:`tff_ser.evaluation.evaluate_weights`'s
  ``client_mean_accuracy`` (paper 000: "the average accuracy of these 18
  clients").
* **CT** -- the sum of the per-round training times of the NGE rounds:
  sampling, batching and every client's local steps, aggregation and the
  server step.  Tracing/compilation, evaluation and checkpointing are
  excluded.  The TFF path's ``times["train_seconds"]`` (the sum of
  ``process.next`` times) is the same definition, so CT means the same on
  both engines -- but not the same *number*: the batched engine's round is
  5x to 45x faster depending on (NLE, BS, CD), x13 over the whole grid
  (``results/benchmarks/round_ratio.md``, ``benchmarks/bench_round.py``).

Trajectories
------------
Client sampling, clip order and dropout masks depend only on (seed, round),
never on NGE, so the NGE = 50 run is exactly the first 50 rounds of the
NGE = 200 run with the same (NLE, LR, BS, CD, seed).  A *trajectory* keeps
one such run on disk under ``<trajectory root>/<key>/``:

* ``meta.json`` -- what the run is (point, seed, server optimizer, task
  fingerprint); a different run in the same folder is refused;
* ``run/`` -- the checkpoint folder of :func:`tff_ser.federated.train_federated`,
  which trains every round: its ``engine_state.npz`` (the
  :class:`~tff_ser.engines.EngineState` after the last saved round; deleted
  once the trajectory reaches the grid's largest NGE), ``history.json`` and
  ``run_config.json``; a larger NGE extends the same run;
* ``progress.json`` -- per-round rows (``seconds`` etc.) up to the saved
  round, the validation metrics at every NGE milestone passed, and the
  segments of rounds saved (who computed which rounds);
* ``computations.jsonl`` -- one line per chunk of rounds actually computed,
  appended as each chunk is done, just before its state is saved, so tests and
  reports can count recomputation;
* ``lock`` -- ``fcntl.flock`` target: one process extends a trajectory at a
  time, and a second one asking for the same or a smaller NGE waits and then
  reads the answer instead of computing it again.

A grid point with NGE = n extends its trajectory to round n if needed,
evaluating at every milestone it passes, and reads Acc at n and CT = the sum
of the first n round times.  The state is saved every ``checkpoint_every``
rounds and at the point's NGE, so a killed worker loses at most that many
rounds.  ``progress.json`` is written before the state (by
:class:`TrajectoryRecorder`, a ``train_federated`` callback); on load,
anything past the state's round is dropped, so the two always agree.  A
kill between the state's save at a point's NGE and that milestone's write
leaves the state unevaluated there; the next point extending the trajectory
evaluates it first, from the saved state, before training past it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import socket
import time
from typing import Iterator, List, Mapping, Optional, Sequence

import numpy as np

from tff_ser.hpo.space import VARIABLES, trajectory_key

#: Engines a grid point can be evaluated on.
ENGINES = ("batched", "tf", "tff")

#: Server optimizer learning rate used throughout the grid (see
#: :data:`SERVER_LR_NOTE`); the grid's LR is the client learning rate.
DEFAULT_SERVER_LR = 0.01

SERVER_LR_NOTE = (
    "LR is the client learning rate (paper 000: 'the central server sets the learning rate' "
    "for the clients); the server applies Adam to the averaged update with a fixed server "
    "learning rate.")

#: Save the trajectory state at least this often (rounds).
DEFAULT_CHECKPOINT_EVERY = 10

META_FILE, PROGRESS_FILE = "meta.json", "progress.json"
COMPUTATIONS_FILE, LOCK_FILE = "computations.jsonl", "lock"
#: ``train_federated``'s checkpoint folder of a trajectory, and its state file there.
RUN_DIR = "run"
STATE_FILE = os.path.join(RUN_DIR, "engine_state.npz")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything besides the grid point that a run depends on.

    Parameters
    ----------
    seed : int
        Training seed (initial weights, client sampling, clip order, dropout).
    server_lr : float
        Server optimizer learning rate (Adam, fixed over the grid).
    client_optimizer, server_optimizer : {"adam", "sgd"}
        Paper 001's setup: Adam on both sides.
    engine : {"batched", "tf", "tff"}
        ``"batched"`` (Dense/Dropout models such as paper 000's MLP, default)
        or ``"tf"`` (any model): trajectories, extended point by point;
        ``"tff"``: :func:`tff_ser.federated.train_federated` on TFF's process,
        one full run per point, as a reference.
    """

    seed: int = 0
    server_lr: float = DEFAULT_SERVER_LR
    client_optimizer: str = "adam"
    server_optimizer: str = "adam"
    engine: str = "batched"

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}; got {self.engine!r}")
        if not self.server_lr > 0:
            raise ValueError(f"server_lr must be > 0; got {self.server_lr}")

    def federated_config(self, point: Mapping):
        """The :class:`~tff_ser.federated.FederatedConfig` of ``point``."""
        from tff_ser.federated import FederatedConfig
        missing = [v for v in VARIABLES if v not in point]
        if missing:
            raise ValueError(f"grid point {dict(point)} lacks {missing}")
        return FederatedConfig(rounds=int(point["rounds"]),
                               local_epochs=int(point["local_epochs"]),
                               batch_size=int(point["batch_size"]),
                               client_fraction=float(point["client_fraction"]),
                               client_lr=float(point["client_lr"]), server_lr=self.server_lr,
                               client_optimizer=self.client_optimizer,
                               server_optimizer=self.server_optimizer, seed=self.seed)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class PointResult:
    """Objectives of one grid point and how they were obtained.

    Attributes
    ----------
    accuracy : float
        Acc, mean validation-client accuracy after NGE rounds.
    computation_time : float
        CT in seconds, sum of the NGE per-round training times.
    metrics : dict
        Pooled validation metrics (``accuracy``, ``f1_macro``, ``balanced_accuracy``)
        and the training loss/accuracy of round NGE.
    rounds_computed : int
        Rounds this call trained (0 when the trajectory already held them).
    trajectory : str or None
        Trajectory key (batched engine only).
    """

    accuracy: float
    computation_time: float
    metrics: dict
    rounds_computed: int
    trajectory: Optional[str] = None


# --------------------------------------------------------------------------
# task fingerprint: trajectories and workers must all see the same data
# --------------------------------------------------------------------------

def task_fingerprint(task) -> dict:
    """What identifies a task's data, tolerant of last-bit feature noise.

    Labels and the client partition are hashed exactly; the features enter
    through their shape and two sums (rounded), so a corpus regenerated on
    another machine matches while a different corpus, split or feature set
    does not.
    """
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(task.y).tobytes())
    for name, part in (("train", task.train_clients), ("val", task.val_clients)):
        for cid in sorted(part):
            h.update(f"{name}:{cid}:".encode())
            h.update(np.ascontiguousarray(np.sort(np.asarray(part[cid], np.int64))).tobytes())
    x = np.asarray(task.x, np.float64)
    return {"model": task.model, "labels_and_clients_sha256": h.hexdigest(),
            "x_shape": list(task.x.shape), "x_sum": round(float(x.sum()), 2),
            "x_abs_sum": round(float(np.abs(x).sum()), 2)}


def same_task(a: Mapping, b: Mapping, *, rtol: float = 1e-6) -> bool:
    """Whether two :func:`task_fingerprint` results describe the same data."""
    exact = ("model", "labels_and_clients_sha256", "x_shape")
    if any(a.get(k) != b.get(k) for k in exact):
        return False
    scale = max(1.0, float(a.get("x_abs_sum", 0.0)))
    return all(abs(float(a[k]) - float(b[k])) <= rtol * scale + 0.01
               for k in ("x_sum", "x_abs_sum"))


def settings_digest(settings: RunSettings, fingerprint: Mapping) -> str:
    """Short hash naming the folder of a study's trajectories (settings + data)."""
    blob = json.dumps({"settings": settings.to_dict(),
                       "data": fingerprint["labels_and_clients_sha256"],
                       "x_shape": fingerprint["x_shape"]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------
# per-process engine
# --------------------------------------------------------------------------

def engine_for(task):
    """This process's :class:`~tff_ser.engines.BatchedFedAvg` for ``task`` (compiled once).

    Its compiled round functions are reused by every grid point the process
    evaluates (they depend on the client count and batch shapes, not on LR);
    ``train_federated(engine="batched")`` uses the same one.
    """
    from tff_ser.engines.batched import BatchedFedAvg
    return BatchedFedAvg.shared(task)


# --------------------------------------------------------------------------
# trajectory files
# --------------------------------------------------------------------------

def worker_identity() -> dict:
    """Host, process id and process start time of this process."""
    import psutil
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": round(psutil.Process().create_time(), 3)}


@contextlib.contextmanager
def file_lock(path: str, *, blocking: bool = True) -> Iterator[bool]:
    """``fcntl.flock`` on ``path``; yields whether the lock was taken.

    The kernel drops the lock when its holder dies, so a killed worker never
    leaves a trajectory locked.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def trajectory_busy(directory: str) -> bool:
    """Whether another process is extending the trajectory in ``directory`` right now."""
    if not os.path.exists(os.path.join(directory, LOCK_FILE)):
        return False
    with file_lock(os.path.join(directory, LOCK_FILE), blocking=False) as taken:
        return not taken


def _write_json(path: str, obj) -> None:
    from tff_ser.rundir import atomic_write_json
    atomic_write_json(path, obj)


def _read_json(path: str, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def _append_line(path: str, obj) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_computations(directory: str) -> List[dict]:
    """Every chunk of rounds ever computed for the trajectory in ``directory``."""
    path = os.path.join(directory, COMPUTATIONS_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_progress(directory: str) -> dict:
    """``progress.json`` of a trajectory: ``rows``, ``milestones``, ``segments``."""
    return _read_json(os.path.join(directory, PROGRESS_FILE),
                      {"rows": [], "milestones": {}, "segments": []})


def _consistent_progress(progress: dict, saved_round: int) -> dict:
    """Progress cut back to the saved state's round (a kill may leave it ahead)."""
    rows = [r for r in progress["rows"] if r["round"] <= saved_round]
    milestones = {k: v for k, v in progress["milestones"].items() if int(k) <= saved_round}
    segments = [s for s in progress["segments"] if s["end"] <= saved_round]
    return {"rows": rows, "milestones": milestones, "segments": segments}


def _check_meta(directory: str, meta: dict) -> None:
    path = os.path.join(directory, META_FILE)
    saved = _read_json(path, None)
    if saved is None:
        _write_json(path, meta)
        return
    mismatched = sorted(k for k in set(saved) | set(meta)
                        if k != "task" and saved.get(k) != meta.get(k))
    if mismatched or not same_task(saved["task"], meta["task"]):
        raise ValueError(
            f"trajectory folder {directory} holds a different run (differs in "
            f"{mismatched or ['task data']}); point the study at another --dir or delete the "
            "folder to start that trajectory over")


def _evaluate(task, weights) -> dict:
    from tff_ser.evaluation import evaluate_weights
    ev = evaluate_weights(task, weights)
    return _milestone(ev["pooled"], ev["client_mean_accuracy"], ev["per_client_accuracy"])


def _milestone(pooled: Mapping, client_mean_accuracy: float, per_client: Mapping) -> dict:
    return {"client_mean_accuracy": float(client_mean_accuracy),
            # each validation client's (speaker's) accuracy: Acc on any subset of
            # the held-out speakers (the selection / test split of tff_ser.hpo.confirm)
            "per_client_accuracy": {str(k): float(v) for k, v in per_client.items()},
            "accuracy": float(pooled["accuracy"]),
            "f1_macro": float(pooled["f1_macro"]),
            "balanced_accuracy": float(pooled.get("balanced_accuracy", float("nan")))}


def extend_trajectory(directory: str, task, config, rounds: int, *,
                      milestones: Sequence[int], final_round: int,
                      meta: Mapping, engine: str = "batched",
                      checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY) -> PointResult:
    """Make sure the trajectory in ``directory`` reaches ``rounds``; score that round.

    The rounds are trained by :func:`tff_ser.federated.train_federated`, the
    one training loop of the package, with its checkpoint folder under
    ``directory/run`` (extended to a larger NGE by the next point) and a
    :class:`TrajectoryRecorder` callback that evaluates the milestones on the
    way and keeps ``progress.json`` and ``computations.jsonl``.

    Parameters
    ----------
    directory : str
        The trajectory's folder (created if missing).
    task : Task
    config : FederatedConfig
        The point's config; ``rounds`` is ignored in favour of the argument.
    rounds : int
        NGE of the grid point asking.
    milestones : sequence of int
        Rounds at which the trajectory is evaluated (the grid's NGE values);
        ``rounds`` is added if missing.
    final_round : int
        The grid's largest NGE: once there, the state is deleted (no point
        needs more rounds; the rows and milestones stay).
    meta : mapping
        What the trajectory is (point, settings, task fingerprint under
        ``"task"``); a folder holding another trajectory is refused.
    engine : str
        ``train_federated``'s engine (default ``"batched"``).
    checkpoint_every : int
        Save the state at least every this many rounds.

    Returns
    -------
    PointResult
    """
    if rounds < 1 or rounds > final_round:
        raise ValueError(f"rounds (NGE) must be in [1, {final_round}]; got {rounds}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1; got {checkpoint_every}")
    marks = sorted(set(int(m) for m in milestones) | {int(rounds)})
    os.makedirs(directory, exist_ok=True)
    with file_lock(os.path.join(directory, LOCK_FILE)):
        _check_meta(directory, dict(meta))
        progress = read_progress(directory)
        computed = 0
        if str(rounds) not in progress["milestones"]:
            # A kill between the state's save at an earlier point's NGE and that
            # milestone's write leaves the state there unevaluated; the rounds
            # past it would pass it by (and the last NGE deletes the state), so
            # it is evaluated first, from the saved state, training no round.
            saved = max((s["end"] for s in progress["segments"]), default=0)
            steps = [saved] if saved in marks and saved < rounds \
                and str(saved) not in progress["milestones"] else []
            for target in steps + [rounds]:
                progress, n = _train_to(directory, task, config, target, marks=marks,
                                        final_round=final_round, engine=engine,
                                        checkpoint_every=checkpoint_every)
                computed += n
        rows = progress["rows"][:rounds]
        if len(rows) != rounds or [r["round"] for r in rows] != list(range(1, rounds + 1)):
            raise RuntimeError(f"trajectory {directory} lacks rows for rounds 1..{rounds}; "
                               "delete the folder to recompute it")
        evaluation = progress["milestones"][str(rounds)]
    last = rows[-1]
    metrics = {**{k: v for k, v in evaluation.items() if k != "client_mean_accuracy"},
               "train_loss": last.get("train_loss"), "train_accuracy": last.get("train_accuracy")}
    return PointResult(accuracy=float(evaluation["client_mean_accuracy"]),
                       computation_time=float(sum(r["seconds"] for r in rows)),
                       metrics=metrics, rounds_computed=computed,
                       trajectory=os.path.basename(os.path.normpath(directory)))


class TrajectoryRecorder:
    """``train_federated`` callback that keeps a trajectory's ``progress.json``.

    Every round's row is kept; a milestone round before the last is evaluated
    (:func:`_evaluate`; the last round's evaluation is ``train_federated``'s
    own final one); at every round ``train_federated`` saves its state
    (every ``checkpoint_every`` rounds and the last) the rows, milestones and
    the segment computed are written -- before the state, so a kill between
    the two leaves progress ahead, which the next load cuts back -- and the
    chunk is appended to ``computations.jsonl``.
    """

    def __init__(self, directory: str, task, progress: dict, *, marks: Sequence[int],
                 last: int, checkpoint_every: int):
        self.directory, self.task = directory, task
        self.marks, self.last, self.checkpoint_every = set(marks), last, checkpoint_every
        self.progress = _consistent_progress(progress, 0)  # until restore() says otherwise
        self._given = progress
        self.who = worker_identity()
        self.chunk_start = 1
        self.computed = 0

    def restore(self, history: List[dict]) -> None:
        """Called by ``train_federated`` on resume with the saved rounds' rows."""
        self.progress = _consistent_progress(self._given, len(history))
        self.chunk_start = len(history) + 1

    def __call__(self, round_num: int, row: dict, weights) -> None:
        self.progress["rows"].append(row)
        self.computed += 1
        if round_num in self.marks and round_num != self.last:
            self.progress["milestones"][str(round_num)] = _evaluate(self.task, weights)
        if round_num == self.last or round_num % self.checkpoint_every == 0:
            _append_line(os.path.join(self.directory, COMPUTATIONS_FILE),
                         {"start": self.chunk_start, "end": round_num, **self.who,
                          "time": time.time()})
            self.progress["segments"].append({"start": self.chunk_start, "end": round_num,
                                              **self.who})
            self.chunk_start = round_num + 1
            _write_json(os.path.join(self.directory, PROGRESS_FILE), self.progress)


def _train_to(directory, task, config, rounds, *, marks, final_round, engine,
              checkpoint_every):
    """Train the trajectory from its saved round to ``rounds``; its progress and rounds trained."""
    from tff_ser.federated import train_federated
    run_dir = os.path.join(directory, RUN_DIR)
    given = read_progress(directory)
    if str(final_round) in given["milestones"] and not _state_files(run_dir):
        # finished (the state is deleted after the last NGE's milestone is
        # written): training from round 1 again would overwrite its rows
        raise RuntimeError(f"trajectory {directory} is finished but holds no evaluation at "
                           f"round {rounds}; delete the folder to recompute it")
    recorder = TrajectoryRecorder(directory, task, given, marks=marks,
                                  last=rounds, checkpoint_every=checkpoint_every)
    try:
        # allow_nonfinite: a diverging grid point is scored (its Acc is low), not failed
        result = train_federated(task, dataclasses.replace(config, rounds=rounds, eval_every=0),
                                 checkpoint_dir=run_dir, checkpoint_every=checkpoint_every,
                                 progress=False, federated_eval=False, engine=engine,
                                 callbacks=[recorder], allow_nonfinite=True)
    except ValueError as exc:
        if "past rounds=" not in str(exc):
            raise
        raise RuntimeError(f"trajectory {directory} is saved past round {rounds} but holds no "
                           f"evaluation at round {rounds}; delete the folder to recompute it") \
            from exc
    # The last round's milestone is train_federated's final evaluation.  Written
    # after the state: a kill between the two leaves the state at ``rounds``
    # without it, and the next call trains no round and evaluates again.
    final = result.final_metrics
    recorder.progress["milestones"][str(rounds)] = _milestone(
        final["validation"], final["validation_client_mean_accuracy"],
        final["validation_per_client_accuracy"])
    _write_json(os.path.join(directory, PROGRESS_FILE), recorder.progress)
    if rounds >= final_round:  # no point needs more rounds: drop the state, keep the rows
        for path in _state_files(run_dir):
            os.remove(path)
    return recorder.progress, recorder.computed


def _state_files(run_dir: str) -> List[str]:
    """The engine's saved state in a trajectory's ``run/`` folder (none once finished)."""
    if not os.path.isdir(run_dir):
        return []
    return [os.path.join(run_dir, n) for n in sorted(os.listdir(run_dir)) if n.endswith(".npz")]


# --------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------

def evaluate_point(task, point: Mapping, settings: RunSettings, *,
                   trajectory_root: Optional[str] = None, milestones: Sequence[int] = (),
                   final_round: Optional[int] = None,
                   checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                   fingerprint: Optional[Mapping] = None) -> PointResult:
    """Acc and CT of one grid point.

    Parameters
    ----------
    task : Task
        The grid's task (``GridSpace.recipe().task(features)``; paper 000: the MLP, one client per speaker).
    point : mapping
        Values of :data:`~tff_ser.hpo.space.VARIABLES`.
    settings : RunSettings
        Seed, server learning rate, optimizers and engine.
    trajectory_root : str, optional
        Batched engine: folder holding the trajectories (required there).
    milestones : sequence of int
        Batched engine: the grid's NGE values (evaluated on the way).
    final_round : int, optional
        Batched engine: the grid's largest NGE (default: the point's NGE).
    checkpoint_every : int
        Batched engine: save the trajectory at least every this many rounds.
    fingerprint : mapping, optional
        :func:`task_fingerprint` of ``task``, if already computed.

    Returns
    -------
    PointResult
    """
    config = settings.federated_config(point)
    if settings.engine == "tff":
        return _evaluate_with_tff(task, config)
    if trajectory_root is None:
        raise ValueError(f"the {settings.engine} engine keeps trajectories on disk; pass "
                         "trajectory_root")
    fingerprint = fingerprint or task_fingerprint(task)
    key = trajectory_key(point)
    meta = {"trajectory": key, **{k: point[k] for k in point if k != "rounds"},
            **settings.to_dict(), "task": dict(fingerprint)}
    return extend_trajectory(os.path.join(trajectory_root, key), task, config, config.rounds,
                             milestones=milestones or (config.rounds,),
                             final_round=final_round or config.rounds, meta=meta,
                             engine=settings.engine, checkpoint_every=checkpoint_every)


def _evaluate_with_tff(task, config) -> PointResult:
    """The reference path: one TFF run of NGE rounds from scratch."""
    from tff_ser.federated import train_federated
    result = train_federated(task, config, progress=False, federated_eval=False, engine="tff")
    final = result.final_metrics
    pooled = final.get("validation", {})
    metrics = {"accuracy": pooled.get("accuracy"), "f1_macro": pooled.get("f1_macro"),
               "balanced_accuracy": pooled.get("balanced_accuracy"),
               "per_client_accuracy": {str(k): float(v) for k, v in
                                       final["validation_per_client_accuracy"].items()},
               "train_loss": final.get("train_loss"),
               "train_accuracy": final.get("train_accuracy")}
    return PointResult(accuracy=float(final["validation_client_mean_accuracy"]),
                       computation_time=float(result.times["train_seconds"]),
                       metrics=metrics, rounds_computed=config.rounds, trajectory=None)
