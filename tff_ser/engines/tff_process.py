"""The reference engine: TFF 0.87's ``build_weighted_fed_avg`` process.

Paper 001 trains with TFF's Federated Averaging and "Adam optimizers with
different learning rates for the client and server"; this engine runs exactly
that:

* the process is ``tff.learning.algorithms.build_weighted_fed_avg`` with
  ``tff.learning.optimizers.build_adam`` (or ``build_sgdm`` for paper 004)
  for the clients and a separate one for the server;
* the rounds' clients and batches come from :mod:`tff_ser.fedconfig`;
* the state is saved every round with ``tff.program.FileProgramStateManager``;
* evaluation on held-out clients can also be federated (``build_fed_eval``).

Compiled processes are cached per (model, shapes, optimizer kinds); learning
rates are written into the process state, so a sweep over learning rates
reuses one traced computation.

The computations run on tff_ser's own C++ worker (:mod:`tff_ser.runtime`).
If that worker dies mid-round (the kernel's OOM killer, a signal, a crash),
the round raises :class:`tff_ser.runtime.WorkerDied` naming the cause; the
run is never silently retried on a fresh worker.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Dict, Optional

import numpy as np

from tff_ser.fedconfig import FederatedConfig, initial_model_weights, round_clip_rows
from tff_ser.task import Task


def _batches(task: Task, rows: np.ndarray, batch_size: int):
    """A client's ``tf.data`` dataset: its clips in training order, in batches of BS."""
    import tensorflow as tf
    rows = np.asarray(rows)
    return tf.data.Dataset.from_tensor_slices((task.x[rows], task.y[rows])).batch(batch_size)


def _client_dataset(task: Task, indices: np.ndarray, order: np.ndarray, batch_size: int):
    """Clips ``indices[order]`` of ``task`` as a ``tf.data`` dataset in batches of BS."""
    return _batches(task, np.asarray(indices)[order], batch_size)


def _element_spec(task: Task):
    import tensorflow as tf
    return (tf.TensorSpec((None,) + task.input_shape, tf.float32),
            tf.TensorSpec((None,), tf.int32))



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



class TffEngine:
    """Rounds on TFF's ``build_weighted_fed_avg`` process: the reference engine."""

    name = "tff"

    @staticmethod
    def unsupported_reason(task: Task, config: FederatedConfig) -> Optional[str]:
        return None  # the reference trains every model and configuration tff_ser offers

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
        self.state = self._with_learning_rates(loaded)
        return int(version)

    def start(self) -> None:
        trainable, non_trainable = initial_model_weights(
            self.task.model, self.task.input_shape, self.task.num_classes, self.config.seed)
        self.state = self._with_learning_rates(
            with_model_weights(self.state, trainable, non_trainable))

    def _with_learning_rates(self, state):
        return set_learning_rates(self.process, state, self.config.client_lr,
                                  self.config.server_lr)

    def round(self, round_num: int) -> dict:
        config = self.config
        sampled = round_clip_rows(self.task.train_clients, config, round_num)
        datasets = [_batches(self.task, rows, config.batch_size) for _, rows in sampled]
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



def _weights_of(process, state):
    w = state.global_model_weights
    return ([np.asarray(v) for v in w.trainable], [np.asarray(v) for v in w.non_trainable])


def _federated_eval(tff, eval_process, process, state, task: Task) -> dict:
    eval_state = with_model_weights(initial_state(eval_process), *_weights_of(process, state))
    datasets = [_batches(task, task.val_clients[c], 256) for c in sorted(task.val_clients)]
    out = eval_process.next(eval_state, datasets)
    m = out.metrics["client_work"]["eval"]["current_round_metrics"]
    return {"accuracy": float(m["sparse_categorical_accuracy"]), "loss": float(m["loss"]),
            "num_examples": int(m.get("num_examples", 0))}


