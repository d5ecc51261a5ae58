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



def build_optimizer(tff, kind, learning_rate: float, kwargs: Optional[dict] = None):
    """A ``tff.learning.optimizers`` optimizer for a name of :data:`tff_ser.fedconfig.OPTIMIZERS`.

    An optimizer object is returned as it is (its learning rate is then set
    in the process state, as for the named ones).
    """
    if not isinstance(kind, str):
        return kind
    opt = tff.learning.optimizers
    kwargs = dict(kwargs or {})
    if kind == "adam":
        return opt.build_adam(learning_rate=learning_rate, **kwargs)
    if kind == "sgd":
        return opt.build_sgdm(learning_rate=learning_rate)
    if kind == "sgdm":
        return opt.build_sgdm(learning_rate=learning_rate, momentum=kwargs.get("momentum", 0.9))
    if kind == "yogi":
        return opt.build_yogi(learning_rate=learning_rate, **kwargs)
    if kind == "adagrad":
        return opt.build_adagrad(learning_rate=learning_rate, **kwargs)
    if kind == "rmsprop":
        return opt.build_rmsprop(learning_rate=learning_rate, **kwargs)
    raise ValueError(f"unknown optimizer {kind!r}")


def build_aggregator(tff, config: FederatedConfig, num_train_clients: int):
    """The ``model_aggregator`` factory for ``config`` (``None``: TFF's default mean)."""
    from tff_ser.fedconfig import sampled_per_round
    agg = config.aggregator
    if agg in (None, "mean"):
        return None
    if agg == "dp":
        m = sampled_per_round(num_train_clients, config.client_fraction)
        if config.dp_clip is None:
            return tff.learning.dp_aggregator(config.noise_multiplier, float(m))
        return tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed(
            config.noise_multiplier, float(m), float(config.dp_clip))
    if agg == "compression":
        return tff.learning.compression_aggregator(weighted=config.weighted)
    if agg == "robust":
        return tff.learning.robust_aggregator(weighted=config.weighted)
    wanted = (tff.aggregators.WeightedAggregationFactory if config.weighted
              else tff.aggregators.UnweightedAggregationFactory)
    if not isinstance(agg, wanted):
        other = "weighted=False" if config.weighted else "weighted=True"
        raise ValueError(
            f"aggregator {type(agg).__name__} is not a {wanted.__name__}, which "
            f"weighted={config.weighted} needs; set {other} or pass a "
            f"{'weighted' if config.weighted else 'unweighted'} factory")
    return agg


def make_model_fn(model, input_shape: tuple, num_classes: int):
    """``model_fn`` for TFF: a fresh, uncompiled Keras model wrapped each call.

    ``model``: a preset name, a :class:`tff_ser.models.KerasModel` or a
    builder; its loss and metrics go into ``from_keras_model``.
    """
    import tensorflow as tf
    from tff_ser.models import as_model
    from tff_ser.runtime import get_tff
    model_def = as_model(model)
    tff = get_tff()
    spec = (tf.TensorSpec((None,) + tuple(input_shape), tf.float32),
            tf.TensorSpec((None,), tf.int32))

    def model_fn():
        keras_model = model_def.build(tuple(input_shape), num_classes)
        return tff.learning.models.from_keras_model(
            keras_model,
            loss=model_def.make_loss(),
            input_spec=spec,
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy(), *model_def.make_metrics()])

    return model_fn


_PROCESS_CACHE: Dict[tuple, tuple] = {}
_CACHE_LOCK = threading.Lock()


def process_key(config: FederatedConfig, num_train_clients: int) -> tuple:
    """What a compiled process depends on in ``config`` (not the learning rates, rounds or seed).

    Optimizer and aggregator objects enter by identity, so a different
    object never reuses a process built for another.
    """
    from tff_ser.fedconfig import sampled_per_round
    dp = ((config.noise_multiplier, config.dp_clip,
           sampled_per_round(num_train_clients, config.client_fraction))
          if config.is_dp else None)
    from tff_ser.algorithms import get_algorithm
    algorithm = get_algorithm(config.algorithm)
    # FedProx in TFF 0.87 keeps no client learning rate in its state: it is
    # part of the computation, so it is part of the key.
    client_lr = config.client_lr if algorithm.client_lr_in_computation else None
    return (config.client_optimizer, config.client_optimizer_kwargs, client_lr,
            config.server_optimizer,
            config.server_optimizer_kwargs, config.algorithm, algorithm.build,
            config.algorithm_kwargs, algorithm.key(config), config.proximal_strength,
            config.weighted, config.aggregator, dp)


def build_processes(model, input_shape: tuple, num_classes: int,
                    config: Optional[FederatedConfig] = None, *, num_train_clients: int = 1,
                    client_optimizer: str = "adam", server_optimizer: str = "adam"):
    """The training process and the federated evaluation process for ``config``.

    The registered algorithm ``config.algorithm`` (:mod:`tff_ser.algorithms`:
    TFF's ``build_{weighted,unweighted}_fed_avg``, ``..._fed_prox`` with
    ``proximal_strength``, or a user's), the client and server
    optimizers and the aggregator of ``config``
    (:class:`~tff_ser.fedconfig.FederatedConfig`; without one, FedAvg with
    ``client_optimizer`` / ``server_optimizer``).  ``num_train_clients`` fixes
    the DP aggregator's clients per round.

    Cached per (model object, shapes, :func:`process_key`): never by model
    name, so a different model cannot reuse a stale process.  Learning
    rates are set per run with :func:`set_learning_rates`.
    Returns ``(train_process, eval_process)``.
    """
    from tff_ser.models import as_model
    if config is None:
        config = FederatedConfig(client_optimizer=client_optimizer,
                                 server_optimizer=server_optimizer)
    model_def = as_model(model)
    key = (model_def, tuple(input_shape), num_classes, process_key(config, num_train_clients))
    with _CACHE_LOCK:
        if key in _PROCESS_CACHE:
            return _PROCESS_CACHE[key]
    from tff_ser.runtime import get_tff
    tff = get_tff()
    model_fn = make_model_fn(model_def, input_shape, num_classes)
    from tff_ser.algorithms import build_process, get_algorithm
    in_computation = get_algorithm(config.algorithm).client_lr_in_computation
    client_opt = build_optimizer(
        tff, config.client_optimizer, config.client_lr if in_computation else 0.001,
        config.optimizer_kwargs("client"))
    server_opt = build_optimizer(tff, config.server_optimizer, 0.001,
                                 config.optimizer_kwargs("server"))
    aggregator = build_aggregator(tff, config, num_train_clients)
    train = build_process(model_fn, config, client_optimizer_fn=client_opt,
                          server_optimizer_fn=server_opt, model_aggregator=aggregator)
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
    """State with the client and server learning rates replaced (no retracing).

    A process whose client work holds no learning rate (TFF 0.87's FedProx
    builds it into the computation; :func:`build_processes` keys such a
    process by its client rate) gets only the server rate.
    """
    client_work, finalizer = state.client_work, state.finalizer
    client_has = isinstance(client_work, dict) and "learning_rate" in client_work
    server_has = isinstance(finalizer, dict) and "learning_rate" in finalizer
    if not server_has:
        hparams = process.get_hparams(state)  # unknown layout: TFF's own way
        if "learning_rate" in hparams["client_work"]:
            hparams["client_work"]["learning_rate"] = np.float32(client_lr)
        hparams["finalizer"]["learning_rate"] = np.float32(server_lr)
        return process.set_hparams(state, hparams)
    if client_has:
        client_work = type(client_work)(client_work)
        client_work["learning_rate"] = np.float32(client_lr)
    finalizer = type(finalizer)(finalizer)
    finalizer["learning_rate"] = np.float32(server_lr)
    return state._replace(client_work=client_work, finalizer=finalizer)


def learning_rates(process, state) -> tuple:
    """(client_lr, server_lr) held in a process state (client ``None`` where the process bakes it in)."""
    cw = state.client_work
    client = float(cw["learning_rate"]) if isinstance(cw, dict) and "learning_rate" in cw else None
    return (client, float(state.finalizer["learning_rate"]))


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
    for name, value in train.items():  # a KerasModel's own metrics
        if name not in ("loss", "sparse_categorical_accuracy", "num_examples", "num_batches") \
                and np.ndim(value) == 0:
            out[f"train_{name}"] = float(value)
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
            task.model_def, task.input_shape, task.num_classes, config,
            num_train_clients=len(task.train_clients))
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
            self.task.model_def, self.task.input_shape, self.task.num_classes, self.config.seed)
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


