"""Federated training on TFF: FedAvg with separate client and server optimizers.

Paper 001 (Chau & Garces) trains with TFF's Federated Averaging and "Adam
optimizers with different learning rates for the client and server"; paper
000 (Mishchenko et al.) tunes rounds (NGE), local epochs (NLE), learning rate
(LR), batch size (BS) and the fraction of clients per round (CD).  This module
runs exactly that on TFF 0.87:

* the process is ``tff.learning.algorithms.build_weighted_fed_avg`` with
  ``tff.learning.optimizers.build_adam`` (or ``build_sgdm`` for paper 004)
  for the clients and a separate one for the server;
* each round samples ``client_fraction`` of the training clients with an RNG
  seeded by (seed, round), so a resumed run samples the same clients;
* the state is saved every round with ``tff.program.FileProgramStateManager``
  and a run restarted with the same arguments resumes from its last round;
* evaluation on held-out clients is both federated (``build_fed_eval``) and
  centralized on the pooled held-out clips (metrics from
  :func:`tff_ser.metrics.classification_metrics`).

Compiled processes are cached per (model, shapes, optimizer kinds); learning
rates are written into the process state, so a sweep over learning rates
reuses one traced computation.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import threading
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from tff_ser.task import Task

#: Optimizers the processes can be built with (client and server independently).
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class FederatedConfig:
    """Knobs of one federated run, named as in the papers.

    Parameters
    ----------
    rounds : int
        NGE, number of global epochs (communication rounds).
    local_epochs : int
        NLE, passes over its own clips each sampled client makes per round.
    batch_size : int
        BS, client mini-batch size.
    client_fraction : float
        CD, fraction of the training clients sampled each round (at least one).
    client_lr : float
        Learning rate of the client optimizer (paper 000's LR, "set by the
        server for the clients").
    server_lr : float
        Learning rate of the server optimizer applied to the averaged update.
    client_optimizer, server_optimizer : {"adam", "sgd"}
        Paper 001 uses Adam on both sides; paper 004 plain SGD on the clients
        (eta = 0.01) with FedAvg's server step (SGD, lr 1.0).
    seed : int
        Seeds initial weights, client sampling and client shuffling.
    eval_every : int
        Evaluate on the validation clients every this many rounds (0: only at
        the end).  Evaluation time is not part of the training time.
    """

    rounds: int = 20
    local_epochs: int = 1
    batch_size: int = 20
    client_fraction: float = 1.0
    client_lr: float = 0.001
    server_lr: float = 0.01
    client_optimizer: str = "adam"
    server_optimizer: str = "adam"
    seed: int = 0
    eval_every: int = 0

    def __post_init__(self):
        if self.rounds < 1:
            raise ValueError(f"rounds (NGE) must be >= 1, got {self.rounds}")
        if self.local_epochs < 1:
            raise ValueError(f"local_epochs (NLE) must be >= 1, got {self.local_epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size (BS) must be >= 1, got {self.batch_size}")
        if not 0.0 < self.client_fraction <= 1.0:
            raise ValueError(f"client_fraction (CD) must be in (0, 1], got {self.client_fraction}")
        for side in ("client_optimizer", "server_optimizer"):
            if getattr(self, side) not in OPTIMIZERS:
                raise ValueError(f"{side} must be one of {OPTIMIZERS}, got {getattr(self, side)!r}")
        for side in ("client_lr", "server_lr"):
            if not getattr(self, side) > 0:
                raise ValueError(f"{side} must be > 0, got {getattr(self, side)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------
# client sampling and client datasets
# --------------------------------------------------------------------------

def sample_clients(client_ids: Sequence[str], client_fraction: float, round_num: int,
                   seed: int) -> List[str]:
    """The clients that train in ``round_num`` (CD of them, at least one).

    Depends only on (seed, round), never on earlier rounds, so a run resumed
    at round r samples exactly what an uninterrupted run samples there.
    """
    ids = sorted(client_ids)
    m = max(1, int(round(client_fraction * len(ids))))
    if m >= len(ids):
        return ids
    rng = np.random.default_rng([seed, round_num])
    return sorted(rng.choice(ids, size=m, replace=False).tolist())


def client_order(n: int, local_epochs: int, seed: int, round_num: int, client_index: int) -> np.ndarray:
    """Clip order a client trains in during one round: one fresh shuffle per local epoch."""
    rng = np.random.default_rng([seed, round_num, client_index, 7])
    return np.concatenate([rng.permutation(n) for _ in range(local_epochs)])


def _client_dataset(task: Task, indices: np.ndarray, order: np.ndarray, batch_size: int):
    import tensorflow as tf
    idx = np.asarray(indices)[order]
    return tf.data.Dataset.from_tensor_slices((task.x[idx], task.y[idx])).batch(batch_size)


def _element_spec(task: Task):
    import tensorflow as tf
    return (tf.TensorSpec((None,) + task.input_shape, tf.float32),
            tf.TensorSpec((None,), tf.int32))


# --------------------------------------------------------------------------
# process construction (cached)
# --------------------------------------------------------------------------

def _build_optimizer(tff, kind: str, learning_rate: float):
    if kind == "adam":
        return tff.learning.optimizers.build_adam(learning_rate=learning_rate)
    return tff.learning.optimizers.build_sgdm(learning_rate=learning_rate)


def make_model_fn(model_name: str, input_shape: tuple, num_classes: int):
    """``model_fn`` for TFF: a fresh, uncompiled Keras model wrapped each call."""
    import tensorflow as tf
    from tff_ser.models import build_model
    from tff_ser.runtime import get_tff
    tff = get_tff()
    spec = (tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
            tf.TensorSpec((None,), tf.int32))

    def model_fn():
        keras_model = build_model(model_name, input_shape=tuple(input_shape),
                                  num_classes=num_classes)
        return tff.learning.models.from_keras_model(
            keras_model,
            loss=tf.keras.losses.SparseCategoricalCrossentropy(),
            input_spec=spec,
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy()])

    return model_fn


_PROCESS_CACHE: Dict[tuple, tuple] = {}
_CACHE_LOCK = threading.Lock()


def build_processes(model_name: str, input_shape: tuple, num_classes: int, *,
                    client_optimizer: str = "adam", server_optimizer: str = "adam"):
    """The FedAvg training process and the federated evaluation process.

    Cached: processes depend on the model and shapes and on the optimizer
    kinds, not on learning rates (those are set per run with
    :func:`set_learning_rates`).  Returns ``(train_process, eval_process)``.
    """
    key = (model_name, tuple(input_shape), num_classes, client_optimizer, server_optimizer)
    with _CACHE_LOCK:
        if key in _PROCESS_CACHE:
            return _PROCESS_CACHE[key]
    from tff_ser.runtime import get_tff
    tff = get_tff()
    model_fn = make_model_fn(model_name, input_shape, num_classes)
    train = tff.learning.algorithms.build_weighted_fed_avg(
        model_fn,
        client_optimizer_fn=_build_optimizer(tff, client_optimizer, 0.001),
        server_optimizer_fn=_build_optimizer(tff, server_optimizer, 0.001))
    evaluate = tff.learning.algorithms.build_fed_eval(model_fn)
    with _CACHE_LOCK:
        _PROCESS_CACHE[key] = (train, evaluate)
    return train, evaluate


_INITIAL_STATES: Dict[int, object] = {}


def initial_state(process):
    """``process.initialize()``, computed once per process.

    States are immutable structures of arrays (every update makes a new
    one), so the fresh state can be shared; each run then writes its own
    seeded weights and learning rates into it.
    """
    key = id(process)
    if key not in _INITIAL_STATES:
        _INITIAL_STATES[key] = process.initialize()
    return _INITIAL_STATES[key]


# The state of a TFF 0.87 learning process is a plain Python structure
# (the NamedTuple LearningAlgorithmState) once it leaves the runtime.  TFF's own
# set_hparams / set_model_weights / get_model_weights are TFF computations: each
# call ships the whole state (weights and both Adam moments) to the C++ worker
# and back, which for paper 001's 26 M-parameter Dense model costs tens of
# seconds.  Reading and replacing the fields directly gives the same state.

def set_learning_rates(process, state, client_lr: float, server_lr: float):
    """State with the client and server learning rates replaced (no retracing)."""
    client_work, finalizer = state.client_work, state.finalizer
    if "learning_rate" not in client_work or "learning_rate" not in finalizer:
        hparams = process.get_hparams(state)  # unknown layout: TFF's own way
        hparams["client_work"]["learning_rate"] = np.float32(client_lr)
        hparams["finalizer"]["learning_rate"] = np.float32(server_lr)
        return process.set_hparams(state, hparams)
    client_work = type(client_work)(client_work)
    finalizer = type(finalizer)(finalizer)
    client_work["learning_rate"] = np.float32(client_lr)
    finalizer["learning_rate"] = np.float32(server_lr)
    return state._replace(client_work=client_work, finalizer=finalizer)


def learning_rates(process, state) -> tuple:
    """(client_lr, server_lr) held in a process state."""
    return (float(state.client_work["learning_rate"]), float(state.finalizer["learning_rate"]))


def with_model_weights(state, trainable, non_trainable):
    """State with the global model weights replaced (what ``set_model_weights`` does)."""
    from tff_ser.runtime import get_tff
    tff = get_tff()
    weights = tff.learning.models.ModelWeights(
        [np.asarray(w, np.float32) for w in trainable],
        [np.asarray(w, np.float32) for w in non_trainable])
    return state._replace(global_model_weights=weights)


def initial_model_weights(model_name: str, input_shape: tuple, num_classes: int, seed: int):
    """Trainable and non-trainable weights of the seeded initial model."""
    from tff_ser.models import build_model
    m = build_model(model_name, input_shape=tuple(input_shape), num_classes=num_classes, seed=seed)
    return ([w.numpy() for w in m.trainable_weights],
            [w.numpy() for w in m.non_trainable_weights])


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------

_EVAL_MODELS: Dict[tuple, object] = {}


def _eval_model(model_name: str, input_shape: tuple, num_classes: int):
    # One Keras model per architecture, reused: rebuilding a model (and its
    # predict function) for every evaluation retraces TF graphs each time.
    key = (model_name, tuple(input_shape), num_classes)
    if key not in _EVAL_MODELS:
        from tff_ser.models import build_model
        _EVAL_MODELS[key] = build_model(model_name, input_shape=tuple(input_shape),
                                        num_classes=num_classes)
    return _EVAL_MODELS[key]


def evaluate_weights(task: Task, weights, *, batch_size: int = 256) -> dict:
    """Centralized evaluation of model weights on the validation clients.

    Returns pooled metrics over all validation clips (``pooled``), the
    mean of per-client accuracies (paper 000's objective, ``client_mean_accuracy``)
    and the per-client accuracies.
    """
    model = _eval_model(task.model, task.input_shape, task.num_classes)
    trainable, non_trainable = weights
    for var, value in zip(model.trainable_weights, trainable):
        var.assign(value)
    for var, value in zip(model.non_trainable_weights, non_trainable):
        var.assign(value)
    return evaluate_keras(task, model, batch_size=batch_size)


def predict_classes(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Argmax class of ``model`` on ``x``, in inference mode, batch by batch."""
    out = [np.argmax(model(x[i:i + batch_size], training=False).numpy(), axis=-1)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def evaluate_keras(task: Task, model, *, batch_size: int = 256) -> dict:
    """Evaluate a Keras model on the task's validation clients (see :func:`evaluate_weights`)."""
    from tff_ser.metrics import classification_metrics
    idx = task.val_indices
    if len(idx) == 0:
        return {}
    pred = predict_classes(model, task.x[idx], batch_size=batch_size)
    pooled = classification_metrics(task.y[idx], pred, num_classes=task.num_classes,
                                    class_names=list(task.class_names))
    pos = {int(i): k for k, i in enumerate(idx)}
    per_client = {}
    for cid, cidx in sorted(task.val_clients.items()):
        rows = [pos[int(i)] for i in cidx]
        per_client[cid] = float(np.mean(pred[rows] == task.y[cidx]))
    return {"pooled": pooled,
            "client_mean_accuracy": float(np.mean(list(per_client.values()))),
            "per_client_accuracy": per_client}


def _flatten_train_metrics(metrics) -> dict:
    train = metrics["client_work"]["train"]
    out = {"train_loss": float(train["loss"]),
           "train_accuracy": float(train["sparse_categorical_accuracy"])}
    if "num_examples" in train:
        out["train_examples"] = int(train["num_examples"])
    return out


# --------------------------------------------------------------------------
# async helpers (notebooks already run an event loop)
# --------------------------------------------------------------------------

def _run_coro(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box = {}

    def runner():
        box["value"] = asyncio.run(coro)

    t = threading.Thread(target=runner)
    t.start()
    t.join()
    return box["value"]


# --------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------

ENGINES = ("tff", "batched")


class _TffRounds:
    """Rounds on TFF's ``build_weighted_fed_avg`` process (the reference)."""

    name = "tff"

    def __init__(self, task: Task, config: FederatedConfig):
        from tff_ser.runtime import get_tff
        self.tff = get_tff()
        self.task, self.config = task, config
        self.process, self.eval_process = build_processes(
            task.model, task.input_shape, task.num_classes,
            client_optimizer=config.client_optimizer, server_optimizer=config.server_optimizer)
        self.client_ids = sorted(task.train_clients)
        self.state = initial_state(self.process)
        self.manager = None

    def resume(self, checkpoint_dir: str) -> int:
        """Load the last saved round from ``checkpoint_dir``; returns it (0: none)."""
        self.manager = self.tff.program.FileProgramStateManager(
            os.path.join(checkpoint_dir, "state"), keep_total=2, keep_first=False)
        loaded, version = _run_coro(self.manager.load_latest(self.state))
        if loaded is None:
            return 0
        self.state = loaded
        return int(version)

    def start(self) -> None:
        trainable, non_trainable = initial_model_weights(
            self.task.model, self.task.input_shape, self.task.num_classes, self.config.seed)
        self.state = with_model_weights(self.state, trainable, non_trainable)

    def set_learning_rates(self) -> None:
        self.state = set_learning_rates(self.process, self.state, self.config.client_lr,
                                        self.config.server_lr)

    def round(self, round_num: int) -> dict:
        task, config = self.task, self.config
        sampled = sample_clients(self.client_ids, config.client_fraction, round_num, config.seed)
        datasets = []
        for cid in sampled:
            idx = task.train_clients[cid]
            order = client_order(len(idx), config.local_epochs, config.seed, round_num,
                                 self.client_ids.index(cid))
            datasets.append(_client_dataset(task, idx, order, config.batch_size))
        t0 = time.perf_counter()
        output = self.process.next(self.state, datasets)
        seconds = time.perf_counter() - t0
        self.state = output.state
        return {"round": round_num, "clients": len(sampled), "seconds": seconds,
                **_flatten_train_metrics(output.metrics)}

    def save(self, round_num: int) -> None:
        _run_coro(self.manager.save(self.state, round_num))

    def weights(self):
        return _weights_of(self.process, self.state)

    def federated_eval(self) -> dict:
        return _federated_eval(self.tff, self.eval_process, self.process, self.state, self.task)


class _BatchedRounds:
    """Rounds on :class:`tff_ser.engines.batched.BatchedFedAvg`: the same math
    (tests/test_engine_equivalence.py), all clients in one graph."""

    name = "batched"

    def __init__(self, task: Task, config: FederatedConfig):
        from tff_ser.engines import BatchedFedAvg
        self.task, self.config = task, config
        self.engine = BatchedFedAvg.for_task(task)
        self.state = None
        self.path = None

    def resume(self, checkpoint_dir: str) -> int:
        from tff_ser.engines import EngineState
        self.path = os.path.join(checkpoint_dir, "engine_state.npz")
        if not os.path.exists(self.path):
            return 0
        self.state = EngineState.load(self.path)
        return int(self.state.round_num)

    def start(self) -> None:
        self.state = self.engine.initial_state(self.config)

    def set_learning_rates(self) -> None:
        pass  # read from the config every round

    def round(self, round_num: int) -> dict:
        self.state, (row,) = self.engine.run_rounds(self.task, self.config, start_round=round_num,
                                                    end_round=round_num, state=self.state)
        return row

    def save(self, round_num: int) -> None:
        self.state.save(self.path)

    def weights(self):
        return self.state.model_weights

    def federated_eval(self) -> dict:
        return {}


def train_federated(task: Task, config: FederatedConfig, *,
                    checkpoint_dir: Optional[str] = None,
                    csv_path: Optional[str] = None,
                    tensorboard_dir: Optional[str] = None,
                    progress: bool = True,
                    federated_eval: bool = True,
                    engine: str = "tff"):
    """Train ``task.model`` with FedAvg on ``task.train_clients``.

    Parameters
    ----------
    task : Task
    config : FederatedConfig
    checkpoint_dir : str, optional
        Where the state is saved after every round (TFF's
        ``FileProgramStateManager``).  A run restarted with the same arguments
        resumes from the last saved round and ends with the same final metrics
        as an uninterrupted run.  The directory also records the config; a
        different config in the same directory is refused.
    csv_path : str, optional
        Per-round metrics, rewritten after every round.
    tensorboard_dir : str, optional
        Per-round scalars written with ``tf.summary``.
    progress : bool
        Show a progress bar over rounds.
    federated_eval : bool
        Also run TFF's ``build_fed_eval`` on the validation clients at the end
        (TFF engine only).
    engine : {"tff", "batched"}
        ``"tff"`` (default, the reference): TFF's FedAvg process.
        ``"batched"``: all sampled clients in one TensorFlow graph, the same
        math (proven to 1e-5 against the TFF process by a test) for Dense/
        Dropout models such as paper 000's MLP; 15-40x faster per round.

    Returns
    -------
    tff_ser.results.RunResult
        ``times["train_seconds"]`` is the sum of the per-round times, the
        computation time (CT) of paper 000: on both engines one round's time
        covers building the round's client batches, local training,
        aggregation and the server step; it excludes building/compiling the
        processes, evaluation and checkpointing. ``times["wall_seconds"]`` is
        the wall time of every process that worked on the run: a resumed run
        adds the wall time its earlier processes had spent up to their last
        saved round (work lost to the interruption after that is not counted);
        ``times["wall_seconds_this_process"]`` is this call's alone.
    """
    import tensorflow as tf
    from tqdm.auto import tqdm
    from tff_ser.results import RunResult

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    t_start = time.perf_counter()
    rounds = (_TffRounds if engine == "tff" else _BatchedRounds)(task, config)
    build_seconds = time.perf_counter() - t_start

    run_config = {"mode": "federated", "engine": engine, "model": task.model,
                  **config.to_dict(), "num_train_clients": len(task.train_clients),
                  "num_val_clients": len(task.val_clients), "task": task.info}
    history: List[dict] = []
    done = 0
    earlier_wall = 0.0
    if checkpoint_dir:
        os.makedirs(checkpoint_dir, exist_ok=True)
        _check_run_config(checkpoint_dir, run_config)
        done = rounds.resume(checkpoint_dir)
        # History is saved before the state: a kill between the two leaves it
        # one round ahead, and it is cut back to the saved round here.
        history = _load_history(checkpoint_dir)[:done]
        earlier_wall = _load_earlier_wall(checkpoint_dir) if done else 0.0
    if done == 0:
        rounds.start()
    rounds.set_learning_rates()

    writer = tf.summary.create_file_writer(tensorboard_dir) if tensorboard_dir else None
    bar = tqdm(range(done + 1, config.rounds + 1), desc=f"FL {task.model}", unit="round",
               disable=not progress, initial=done, total=config.rounds)
    for round_num in bar:
        row = rounds.round(round_num)
        if config.eval_every and (round_num % config.eval_every == 0) and task.val_clients:
            ev = evaluate_weights(task, rounds.weights())
            row["val_accuracy"] = ev["pooled"]["accuracy"]
            row["val_client_mean_accuracy"] = ev["client_mean_accuracy"]
            row["val_f1_macro"] = ev["pooled"]["f1_macro"]
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.3f}")
        if writer is not None:
            with writer.as_default():
                for k, v in row.items():
                    if k != "round":
                        tf.summary.scalar(k, v, step=round_num)
        if csv_path:
            _write_csv(csv_path, history)
        if checkpoint_dir:
            _save_history(checkpoint_dir, history)
            _save_wall(checkpoint_dir, round_num, earlier_wall + time.perf_counter() - t_start)
            rounds.save(round_num)
    if writer is not None:
        writer.flush()

    weights = rounds.weights()
    final = {}
    if task.val_clients:
        ev = evaluate_weights(task, weights)
        final["validation"] = ev["pooled"]
        final["validation_client_mean_accuracy"] = ev["client_mean_accuracy"]
        final["validation_per_client_accuracy"] = ev["per_client_accuracy"]
        if federated_eval and engine == "tff":
            final["federated_eval"] = rounds.federated_eval()
    if history:
        final["train_loss"] = history[-1]["train_loss"]
        final["train_accuracy"] = history[-1]["train_accuracy"]
    per_round = [h["seconds"] for h in history]
    this_process = time.perf_counter() - t_start
    times = {"train_seconds": float(np.sum(per_round)),
             "per_round_seconds": per_round,
             "mean_round_seconds": float(np.mean(per_round)) if per_round else 0.0,
             "build_seconds": build_seconds,
             "wall_seconds": earlier_wall + this_process,
             "wall_seconds_this_process": this_process,
             "resumed_from_round": done}
    if engine == "batched":
        times["compile_seconds"] = rounds.engine.compile_seconds
    result = RunResult(config=run_config, history=history, final_metrics=final, times=times)
    # Final weights ride along in memory only (a 26 M-parameter model has no
    # place in result.json).
    result.weights = weights
    return result


def _weights_of(process, state):
    w = state.global_model_weights
    return ([np.asarray(v) for v in w.trainable], [np.asarray(v) for v in w.non_trainable])


def _federated_eval(tff, eval_process, process, state, task: Task) -> dict:
    eval_state = with_model_weights(initial_state(eval_process), *_weights_of(process, state))
    datasets = [_client_dataset(task, task.val_clients[c], np.arange(len(task.val_clients[c])), 256)
                for c in sorted(task.val_clients)]
    out = eval_process.next(eval_state, datasets)
    m = out.metrics["client_work"]["eval"]["current_round_metrics"]
    return {"accuracy": float(m["sparse_categorical_accuracy"]), "loss": float(m["loss"]),
            "num_examples": int(m.get("num_examples", 0))}


# --------------------------------------------------------------------------
# checkpoint side files
# --------------------------------------------------------------------------

def _atomic_write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=_json_default)
    os.replace(tmp, path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def _check_run_config(checkpoint_dir: str, run_config: dict) -> None:
    path = os.path.join(checkpoint_dir, "run_config.json")
    canonical = json.loads(json.dumps(run_config, default=_json_default))
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != canonical:
            diff = sorted(k for k in set(saved) | set(canonical) if saved.get(k) != canonical.get(k))
            raise ValueError(
                f"{checkpoint_dir} holds a run with a different configuration (differs in "
                f"{diff}); use another checkpoint_dir or delete it to start over")
    else:
        _atomic_write_json(path, canonical)


def _save_history(checkpoint_dir: str, history: List[dict]) -> None:
    _atomic_write_json(os.path.join(checkpoint_dir, "history.json"), history)


def _load_history(checkpoint_dir: str) -> List[dict]:
    path = os.path.join(checkpoint_dir, "history.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _save_wall(checkpoint_dir: str, round_num: int, wall_seconds: float) -> None:
    _atomic_write_json(os.path.join(checkpoint_dir, "wall.json"),
                       {"round": round_num, "wall_seconds": wall_seconds})


def _load_earlier_wall(checkpoint_dir: str) -> float:
    """Wall time the run's earlier processes spent up to their last save.

    Saved after the history and before the state, so it may count one round
    more than was kept: that round's time was spent all the same.
    Checkpoints written before this file existed give 0.
    """
    path = os.path.join(checkpoint_dir, "wall.json")
    if not os.path.exists(path):
        return 0.0
    with open(path) as f:
        return float(json.load(f)["wall_seconds"])


def _write_csv(path: str, history: List[dict]) -> None:
    # Rewritten whole each round so a resumed run never holds duplicate rounds.
    import pandas as pd
    tmp = f"{path}.tmp{os.getpid()}"
    pd.DataFrame(history).to_csv(tmp, index=False)
    os.replace(tmp, path)
