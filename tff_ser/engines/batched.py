"""FedAvg with every sampled client in one TensorFlow graph per round.

TFF 0.87's ``build_weighted_fed_avg`` spends a fixed ~27 ms per client per
round in its executor, so a round of paper 000's 73 CREMA-D clients costs
about two seconds on a CPU even though the MLP's arithmetic takes a few tens
of milliseconds.  :class:`BatchedFedAvg` computes the same round as one
``tf.function``: the sampled clients' weights are stacked on a leading
client axis and all clients take their local steps together as batched
matrix products.

What "the same round" means, read from TFF 0.87's sources
(``learning/templates/model_delta_client_work.py``,
``learning/optimizers/adam.py``, ``aggregators/mean.py``,
``learning/templates/apply_optimizer_finalizer.py``):

* clients are sampled with :func:`tff_ser.fedconfig.sample_clients` and walk
  their clips in :func:`tff_ser.fedconfig.client_order` (one shuffle per
  local epoch, concatenated, cut into batches of BS, the last one partial);
* every client starts the round from the server weights with a fresh client
  optimizer (Adam's step count, first and second moments at zero);
* a batch's loss is Keras' ``SparseCategoricalCrossentropy``, which in a
  graph reads the softmax layer's logits, averaged over the batch's real
  clips;
* a client with fewer batches than the longest client simply stops: no
  weight change and no Adam step for the batches it does not have;
* the client update is ``initial - trained`` weights, weighted by the number
  of clips the client trained on (all local epochs); an update holding a
  non-finite value is zeroed with weight 0;
* the server applies its optimizer to the weighted mean update as if it
  were a gradient; its Adam state persists across rounds, and a non-finite
  mean update is rejected (nothing changes).

How it is fast: each sampled client's copy of the model, and of its Adam
moments, is a slice of a (clients, ...) ``tf.Variable`` updated in place by
TensorFlow's fused ``ResourceApplyAdam`` kernel (fresh 20 MB tensors per
step would cost more than the arithmetic); the batched matrix products run
on TensorFlow's own (oneDNN) kernels, which beat XLA's batched dots on CPU;
the aggregation, one pass over every client's weights, is fused by XLA.
Every round is one call of one traced function; learning rates are tensors,
so only a new client count, step count or batch size traces again.

Dropout is the one place where the engine cannot match TFF bit for bit:
tff_ser's ``ReproducibleDropout`` seeds each mask from the bits of the sum
of the layer's input, which two implementations never agree on to the last
bit.  Here each mask comes from ``tf.random.stateless_uniform`` with a seed
made from (config seed, round, local step, layer), the client axis giving
each sampled client its own rows (clients in sorted order), so a run is
reproducible and statistically the same as Keras' dropout (keep with
probability ``1 - rate``, survivors scaled by ``1 / (1 - rate)``).

``tests/test_engine_equivalence.py`` checks the weights against the TFF
process after every round (dropout off) to 1e-5.
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tff_ser.engines import optimizers
from tff_ser.fedconfig import FederatedConfig, client_order, sample_clients
from tff_ser.layers import ReproducibleDropout
from tff_ser.task import Task

#: TFF 0.87 ``build_adam`` defaults, which :mod:`tff_ser.federated` uses on both sides.
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7

#: Client / server optimizers the engine implements, as in ``FederatedConfig``.
SUPPORTED_OPTIMIZERS = ("adam", "sgd")

_HIDDEN_ACTIVATIONS: Dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "linear": tf.identity,
    "relu": tf.nn.relu,
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "elu": tf.nn.elu,
}


# --------------------------------------------------------------------------
# the model, as a list of layers the engine knows how to batch
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """A Keras Dense layer: ``activation(x @ kernel + bias)``."""

    name: str
    activation: str
    use_bias: bool


@dataclasses.dataclass(frozen=True)
class DropoutLayer:
    """A Keras ``Dropout`` or tff_ser ``ReproducibleDropout`` layer (training only)."""

    name: str
    rate: float


Layer = Union[DenseLayer, DropoutLayer]


def sequential_layers(model: keras.Model) -> Tuple[Layer, ...]:
    """The layers of a Sequential Dense/Dropout model with a softmax output.

    Parameters
    ----------
    model : keras.Sequential
        Built model, e.g. ``build_model("mlp")``.

    Returns
    -------
    tuple of DenseLayer and DropoutLayer
        In order; the last is a Dense layer with a softmax activation.

    Raises
    ------
    NotImplementedError
        For any other layer (Conv1D, LSTM, Flatten, ...), regularizers,
        constraints or non-trainable weights: such models must be trained
        with the TFF process (:func:`tff_ser.federated.train_federated`).
    """
    if not isinstance(model, keras.Sequential):
        raise NotImplementedError(
            f"BatchedFedAvg runs keras.Sequential models only; {model.name!r} is a "
            f"{type(model).__name__}. Train it with tff_ser.federated.train_federated.")
    layers: List[Layer] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            for attr in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                         "kernel_constraint", "bias_constraint"):
                if getattr(layer, attr, None) is not None:
                    raise NotImplementedError(
                        f"layer {layer.name!r} has a {attr}, which BatchedFedAvg does not "
                        "implement; train this model with tff_ser.federated.train_federated.")
            layers.append(DenseLayer(layer.name, layer.activation.__name__, bool(layer.use_bias)))
        elif type(layer) in (keras.layers.Dropout, ReproducibleDropout):
            if getattr(layer, "noise_shape", None) is not None:
                raise NotImplementedError(
                    f"layer {layer.name!r} has a noise_shape, which BatchedFedAvg does not "
                    "implement; train this model with tff_ser.federated.train_federated.")
            layers.append(DropoutLayer(layer.name, float(layer.rate)))
        else:
            raise NotImplementedError(
                f"BatchedFedAvg runs Dense and Dropout layers only; layer {layer.name!r} is a "
                f"{type(layer).__name__}. Train model {model.name!r} with "
                "tff_ser.federated.train_federated (the TFF process).")
    if model.non_trainable_weights:
        raise NotImplementedError(
            f"model {model.name!r} has non-trainable weights, which BatchedFedAvg does not "
            "aggregate; train it with tff_ser.federated.train_federated.")
    if not layers or not isinstance(layers[-1], DenseLayer) or layers[-1].activation != "softmax":
        raise NotImplementedError(
            f"BatchedFedAvg needs a Dense softmax output layer last (the loss is Keras' "
            f"SparseCategoricalCrossentropy on its logits); model {model.name!r} ends with "
            f"{layers[-1] if layers else 'no layer'}.")
    for layer in layers[:-1]:
        if isinstance(layer, DenseLayer) and layer.activation not in _HIDDEN_ACTIVATIONS:
            raise NotImplementedError(
                f"hidden layer {layer.name!r} uses activation {layer.activation!r}; "
                f"BatchedFedAvg implements {sorted(_HIDDEN_ACTIVATIONS)}.")
    return tuple(layers)


# --------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------

@dataclasses.dataclass
class EngineState:
    """Everything a run needs to continue after ``round_num``.

    Plain NumPy arrays and ints, so it pickles, and :meth:`save` /
    :meth:`load` keep it in one ``.npz`` file.  Learning rates are not part
    of the state: they come from the config of each :meth:`BatchedFedAvg.run_rounds`
    call, as with ``set_learning_rates`` on a TFF state.

    Parameters
    ----------
    round_num : int
        Last completed round (0 before training).
    trainable, non_trainable : list of ndarray
        Server model weights in Keras' ``trainable_weights`` order (the order
        of TFF's ``ModelWeights``).
    server_step : int
        Server optimizer steps taken (Adam's ``t``).
    server_accumulator, server_preconditioner : list of ndarray
        Server Adam's first and second moment per trainable weight; empty
        for the SGD server.
    """

    round_num: int
    trainable: List[np.ndarray]
    non_trainable: List[np.ndarray]
    server_step: int
    server_accumulator: List[np.ndarray]
    server_preconditioner: List[np.ndarray]
    #: The aggregator's adaptive norms (``tff_ser.engines.aggregators``); empty for the plain mean.
    aggregator_state: List[np.ndarray] = dataclasses.field(default_factory=list)

    @property
    def model_weights(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """``(trainable, non_trainable)``, what :func:`tff_ser.federated.evaluate_weights` takes."""
        return self.trainable, self.non_trainable

    def save(self, path: str) -> None:
        """Write the state to ``path`` (an ``.npz`` file), atomically."""
        arrays = {"round_num": np.int64(self.round_num), "server_step": np.int64(self.server_step)}
        for group in ("trainable", "non_trainable", "server_accumulator", "server_preconditioner",
                      "aggregator_state"):
            for i, value in enumerate(getattr(self, group)):
                arrays[f"{group}/{i}"] = np.asarray(value)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "EngineState":
        """Read a state written by :meth:`save`."""
        with np.load(path) as data:
            def group(name):
                keys = sorted((k for k in data.files if k.startswith(name + "/")),
                              key=lambda k: int(k.split("/")[1]))
                return [data[k] for k in keys]
            return cls(round_num=int(data["round_num"]), trainable=group("trainable"),
                       non_trainable=group("non_trainable"), server_step=int(data["server_step"]),
                       server_accumulator=group("server_accumulator"),
                       server_preconditioner=group("server_preconditioner"),
                       aggregator_state=group("aggregator_state"))


# --------------------------------------------------------------------------
# one round's clients, clip order and batches, as index arrays
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RoundPlan:
    """What every sampled client trains on in one round.

    ``clip_index[s, k, b]`` is the row of ``task.x`` that client ``s`` sees
    at position ``b`` of its local step ``k``; ``clip_mask`` is 1 for real
    clips and 0 for padding (partial last batches, clients with fewer steps).
    """

    clients: Tuple[str, ...]
    clip_index: np.ndarray   # (clients, max_steps, batch_size) int32
    clip_mask: np.ndarray    # (clients, max_steps, batch_size) float32
    num_examples: np.ndarray  # (clients,) float32: clips seen over all local epochs
    last_step: np.ndarray    # (clients,) int32: index of each client's last local step
    num_steps: int           # local steps of the busiest sampled client


def max_local_steps(client_sizes: Sequence[int], local_epochs: int, batch_size: int) -> int:
    """Local steps of the largest client: ``ceil(NLE * clips / BS)``."""
    return max(math.ceil(local_epochs * int(n) / batch_size) for n in client_sizes)


def plan_round(task: Task, config: FederatedConfig, round_num: int, *,
               max_steps: Optional[int] = None) -> RoundPlan:
    """The batches of round ``round_num``, exactly as :mod:`tff_ser.federated` builds them.

    Parameters
    ----------
    task : Task
    config : FederatedConfig
        Uses ``client_fraction``, ``local_epochs``, ``batch_size`` and ``seed``.
    round_num : int
        1-based round.
    max_steps : int, optional
        Pad the step axis to this length (default: the largest training
        client's step count), so every round of a run has the same shapes
        and the round function is compiled once.
    """
    client_ids = sorted(task.train_clients)
    position = {cid: i for i, cid in enumerate(client_ids)}
    bs = config.batch_size
    if max_steps is None:
        max_steps = max_local_steps([len(task.train_clients[c]) for c in client_ids],
                                    config.local_epochs, bs)
    sampled = sample_clients(client_ids, config.client_fraction, round_num, config.seed)
    clip_index = np.zeros((len(sampled), max_steps * bs), dtype=np.int32)
    clip_mask = np.zeros((len(sampled), max_steps * bs), dtype=np.float32)
    num_examples = np.zeros(len(sampled), dtype=np.float32)
    for s, cid in enumerate(sampled):
        clips = np.asarray(task.train_clients[cid])
        order = client_order(len(clips), config.local_epochs, config.seed, round_num, position[cid])
        if len(order) > max_steps * bs:
            raise ValueError(f"client {cid!r} needs {math.ceil(len(order) / bs)} local steps but "
                             f"max_steps={max_steps}; leave max_steps unset")
        clip_index[s, :len(order)] = clips[order]
        clip_mask[s, :len(order)] = 1.0
        num_examples[s] = len(order)
    shape = (len(sampled), max_steps, bs)
    steps = np.ceil(num_examples / bs).astype(np.int32)
    return RoundPlan(clients=tuple(sampled), clip_index=clip_index.reshape(shape),
                     clip_mask=clip_mask.reshape(shape), num_examples=num_examples,
                     last_step=steps - 1, num_steps=int(steps.max()))


def dropout_seed(seed: int, round_num: int) -> np.ndarray:
    """Base seed of a round's dropout masks (steps and layers are folded in on the graph)."""
    state = np.random.SeedSequence([int(seed), int(round_num), 0xD50]).generate_state(2)
    return state.astype(np.int64)


# --------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------

class BatchedFedAvg:
    """Weighted FedAvg (client optimizer + server optimizer) for Dense/Dropout models.

    Computes what ``tff.learning.algorithms.build_weighted_fed_avg`` with
    ``build_adam`` (or ``build_sgdm``) on both sides computes for the same
    clients and clip order, as :mod:`tff_ser.federated` builds them; see the
    module docstring for the exact semantics.  Not thread-safe: one engine
    serves one run at a time (it owns the clients' working copies).

    Parameters
    ----------
    model_name : str
        A model of :data:`tff_ser.models.MODELS` made of Dense and Dropout
        layers (paper 000's ``"mlp"``); anything else raises
        NotImplementedError naming the layer.
    input_shape : tuple of int
        Shape of one example, ``(136,)`` for clip statistics.
    num_classes : int
        Softmax outputs.
    jit_compile : bool
        Fuse the aggregation and server step with XLA (default).  The local
        steps always run on TensorFlow's own kernels: its batched matrix
        products and in-place Adam beat XLA's on CPU.
    **model_hyperparameters
        Passed to :func:`tff_ser.models.build_model` (e.g. ``dropout_rate``,
        ``hidden_units``).

    Examples
    --------
    >>> engine = BatchedFedAvg.for_task(task)                      # doctest: +SKIP
    >>> state, rows = engine.run_rounds(task, config, start_round=1,
    ...                                 end_round=config.rounds)    # doctest: +SKIP
    >>> evaluate_weights(task, state.model_weights)                # doctest: +SKIP
    """

    def __init__(self, model_name, input_shape: Sequence[int], num_classes: int, *,
                 jit_compile: bool = True, **model_hyperparameters):
        from tff_ser.models import as_model
        if model_hyperparameters and not isinstance(model_name, str):
            raise ValueError("model hyperparameters go with a preset name; a KerasModel "
                             "carries its own (KerasModel(..., hyperparameters={...}))")
        self.model_name = model_name
        self.model_def = as_model(model_name)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.jit_compile = bool(jit_compile)
        self.model_hyperparameters = dict(model_hyperparameters)
        model = self._build(seed=0)
        self.layers = sequential_layers(model)
        self.weight_shapes = [tuple(w.shape) for w in model.trainable_weights]
        self._functions: Dict[tuple, Callable] = {}
        self._slots: Optional[_ClientSlots] = None
        self._compiled: set = set()
        self._resident: Optional[Tuple[np.ndarray, tf.Tensor, tf.Tensor]] = None
        #: Seconds spent tracing and compiling round functions (excluded from round times).
        self.compile_seconds = 0.0

    def _build(self, seed):
        if self.model_hyperparameters:
            from tff_ser.models import build_model
            return build_model(self.model_name, input_shape=self.input_shape,
                               num_classes=self.num_classes, seed=seed,
                               **self.model_hyperparameters)
        return self.model_def.build(self.input_shape, self.num_classes, seed=seed)

    @classmethod
    def for_task(cls, task: Task, **kwargs) -> "BatchedFedAvg":
        """Engine for ``task.model`` at the task's input shape and classes."""
        return cls(task.model, task.input_shape, task.num_classes, **kwargs)

    # ---------------------------------------------------------------- state

    def initial_state(self, config: FederatedConfig) -> EngineState:
        """Round-0 state: the seeded initial model (as
        :func:`tff_ser.federated.initial_model_weights` builds it) and a fresh
        server optimizer."""
        model = self._build(seed=config.seed)
        trainable = [w.numpy() for w in model.trainable_weights]
        moments = [np.zeros_like(w) for w in trainable] if config.server_optimizer == "adam" else []
        return EngineState(round_num=0, trainable=trainable, non_trainable=[], server_step=0,
                           server_accumulator=moments,
                           server_preconditioner=[np.zeros_like(w) for w in moments])

    # ---------------------------------------------------------------- rounds

    def run_rounds(self, task: Task, config: FederatedConfig, *, start_round: int = 1,
                   end_round: Optional[int] = None,
                   state: Optional[EngineState] = None) -> Tuple[EngineState, List[dict]]:
        """Train rounds ``start_round`` .. ``end_round`` (inclusive).

        Parameters
        ----------
        task : Task
        config : FederatedConfig
            NLE, BS, CD, learning rates, optimizers and seed; ``rounds`` is the
            default ``end_round``.  ``eval_every`` is not used here.
        start_round : int
            First round to train, 1-based.  Round r samples and shuffles as
            round r of an uninterrupted run, so a run continued from a saved
            state ends where an uninterrupted one ends.
        end_round : int, optional
            Last round to train (default ``config.rounds``).
        state : EngineState, optional
            State after round ``start_round - 1``; required unless
            ``start_round == 1`` (then the seeded initial model is used).

        Returns
        -------
        (EngineState, list of dict)
            The state after ``end_round`` and one row per round with the
            keys of :func:`tff_ser.federated.train_federated`'s history:
            ``round``, ``clients``, ``seconds`` (the whole round: batching
            plan, local training, aggregation, server step; compilation
            excluded), ``train_loss``, ``train_accuracy`` and
            ``train_examples`` (TFF's training metrics: mean over every clip
            seen in the round, each scored with the weights that trained on it).
        """
        end_round = config.rounds if end_round is None else end_round
        self._check_run(task, config, start_round, end_round, state)
        if state is None:
            state = self.initial_state(config)
        x, y = self._resident_data(task)
        max_steps = max_local_steps([len(v) for v in task.train_clients.values()],
                                    config.local_epochs, config.batch_size)
        weights = tuple(tf.constant(w) for w in state.trainable)
        moments = (tuple(tf.constant(m) for m in state.server_accumulator),
                   tuple(tf.constant(v) for v in state.server_preconditioner))
        step = tf.constant(state.server_step, tf.int32)
        rates = (tf.constant(config.client_lr, tf.float32),
                 tf.constant(config.server_lr, tf.float32))
        rows = []
        for round_num in range(start_round, end_round + 1):
            t0 = time.perf_counter()
            plan = plan_round(task, config, round_num, max_steps=max_steps)
            fn = self._round_function(config.client_optimizer, config.server_optimizer,
                                      len(plan.clients))
            batches = (tf.constant(plan.clip_index), tf.constant(plan.clip_mask),
                       tf.constant(plan.num_examples), tf.constant(plan.last_step))
            seed = tf.constant(dropout_seed(config.seed, round_num))
            key = (config.client_optimizer, config.server_optimizer) + plan.clip_index.shape
            if key not in self._compiled:
                # Trace and compile on a zero-step round, so round times hold no compilation.
                tc = time.perf_counter()
                fn(x, y, weights, moments, step, *batches, tf.constant(0, tf.int32), seed, *rates)
                self._compiled.add(key)
                self.compile_seconds += time.perf_counter() - tc
                t0 += time.perf_counter() - tc
            weights, moments, step, metrics = fn(x, y, weights, moments, step, *batches,
                                                 tf.constant(plan.num_steps, tf.int32), seed,
                                                 *rates)
            loss_sum, correct, examples = (float(v) for v in metrics.numpy())
            rows.append({"round": round_num, "clients": len(plan.clients),
                         "seconds": time.perf_counter() - t0,
                         "train_loss": loss_sum / examples if examples else float("nan"),
                         "train_accuracy": correct / examples if examples else float("nan"),
                         "train_examples": int(round(examples))})
        final = EngineState(
            round_num=end_round, trainable=[w.numpy() for w in weights],
            non_trainable=[np.asarray(w) for w in state.non_trainable],
            server_step=int(step.numpy()),
            server_accumulator=[m.numpy() for m in moments[0]],
            server_preconditioner=[v.numpy() for v in moments[1]])
        return final, rows

    def _check_run(self, task: Task, config: FederatedConfig, start_round: int, end_round: int,
                   state: Optional[EngineState]) -> None:
        if task.model_def is not self.model_def or task.input_shape != self.input_shape \
                or task.num_classes != self.num_classes:
            raise ValueError(
                f"this engine trains {self.model_name!r} on inputs {self.input_shape} with "
                f"{self.num_classes} classes, but the task holds {task.model_name!r}, "
                f"{task.input_shape}, {task.num_classes} classes; build the engine with "
                "BatchedFedAvg.for_task(task)")
        for side in ("client_optimizer", "server_optimizer"):
            if getattr(config, side) not in SUPPORTED_OPTIMIZERS:
                raise ValueError(f"{side} must be one of {SUPPORTED_OPTIMIZERS}, "
                                 f"got {getattr(config, side)!r}")
        if start_round < 1 or end_round < start_round:
            raise ValueError(f"rounds run from start_round >= 1 to end_round >= start_round; "
                             f"got start_round={start_round}, end_round={end_round}")
        if state is None:
            if start_round != 1:
                raise ValueError(f"start_round={start_round} needs the state after round "
                                 f"{start_round - 1}; pass state=")
            return
        if state.round_num != start_round - 1:
            raise ValueError(f"the state is after round {state.round_num}, so the next round is "
                             f"{state.round_num + 1}, not start_round={start_round}")
        if [tuple(np.shape(w)) for w in state.trainable] != self.weight_shapes:
            raise ValueError(f"the state's weights have shapes "
                             f"{[np.shape(w) for w in state.trainable]}, the model's are "
                             f"{self.weight_shapes}")
        wants_moments = config.server_optimizer == "adam"
        if wants_moments != bool(state.server_accumulator):
            raise ValueError(f"the state {'lacks' if wants_moments else 'holds'} server Adam "
                             f"moments but server_optimizer={config.server_optimizer!r}")

    def _resident_data(self, task: Task) -> Tuple[tf.Tensor, tf.Tensor]:
        # Every clip goes to the graph once; rounds send only index arrays.
        if self._resident is None or self._resident[0] is not task.x:
            self._resident = (task.x, tf.constant(task.x), tf.constant(task.y))
        return self._resident[1], self._resident[2]

    def _round_function(self, client_optimizer: str, server_optimizer: str,
                        num_clients: int) -> Callable:
        key = (client_optimizer, server_optimizer, num_clients)
        if key not in self._functions:
            if self._slots is None or self._slots.num_clients != num_clients:
                # One client count at a time: a run's CD fixes it, and the
                # working copies of 73 clients take ~80 MB.
                self._slots = _ClientSlots(self.weight_shapes, num_clients)
                self._functions = {}
                self._compiled = set()
            slots = self._slots
            aggregate = _AGGREGATE_XLA if self.jit_compile else _aggregate_and_apply

            def round_fn(x, y, weights, moments, step, clip_index, clip_mask, num_examples,
                         last_step, num_steps, seed, client_lr, server_lr):
                return _fedavg_round(self.layers, client_optimizer, server_optimizer, slots,
                                     aggregate, x, y, weights, moments, step, clip_index,
                                     clip_mask, num_examples, last_step, num_steps, seed,
                                     client_lr, server_lr)
            self._functions[key] = tf.function(round_fn)
        return self._functions[key]


# --------------------------------------------------------------------------
# the round, as TensorFlow
# --------------------------------------------------------------------------

class _ClientSlots:
    """Every sampled client's working copy of the model and its client optimizer.

    Variables, so the optimizer updates them in place: a fresh 20 MB tensor
    per weight per step (73 clients) costs more than the arithmetic.
    """

    def __init__(self, weight_shapes: Sequence[Tuple[int, ...]], num_clients: int):
        self.num_clients = num_clients

        def slot(shape, trainable=False):
            return tf.Variable(tf.zeros((num_clients,) + tuple(shape)), trainable=trainable)

        self.weights = [slot(s, trainable=True) for s in weight_shapes]
        self.accumulators = [slot(s) for s in weight_shapes]
        self.preconditioners = [slot(s) for s in weight_shapes]


def _per_client(v: tf.Tensor, rank: int) -> tf.Tensor:
    """(clients,) -> (clients, 1, ..., 1) broadcastable against a rank-``rank`` tensor."""
    return tf.reshape(v, [-1] + [1] * (rank - 1))


def _logits(layers: Sequence[Layer], weights: Sequence[tf.Tensor], inputs: tf.Tensor,
            seed: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """Logits of the softmax layer for (clients, batch, features) inputs, training mode."""
    h = inputs
    w = 0
    for position, layer in enumerate(layers):
        if isinstance(layer, DenseLayer):
            h = tf.linalg.matmul(h, weights[w])
            w += 1
            if layer.use_bias:
                h = h + weights[w][:, tf.newaxis, :]
                w += 1
            if position != len(layers) - 1:
                h = _HIDDEN_ACTIVATIONS[layer.activation](h)
        elif layer.rate > 0.0:
            layer_seed = tf.stack([seed[0], seed[1] + tf.cast(step, tf.int64) * len(layers)
                                   + position])
            keep = tf.random.stateless_uniform(tf.shape(h), layer_seed) >= layer.rate
            h = h * tf.cast(keep, h.dtype) * (1.0 / (1.0 - layer.rate))
    return h


def _adam_constants():
    return (tf.constant(ADAM_BETA_1, tf.float32), tf.constant(ADAM_BETA_2, tf.float32),
            tf.constant(ADAM_EPSILON, tf.float32))


def _all_finite(tensors: Sequence[tf.Tensor], axis_from: int) -> tf.Tensor:
    flags = [tf.reduce_all(tf.math.is_finite(t), axis=list(range(axis_from, t.shape.rank)))
             for t in tensors]
    return tf.reduce_all(tf.stack(flags), axis=0)


def _aggregate_and_apply(server_optimizer, weights, moments, step, trained, num_examples,
                         server_lr):
    """TFF's weighted mean of client updates, then the server optimizer step.

    Returns ``(weights, moments, step, client_weight, counted)``; ``counted``
    is 1 for clients whose update was finite (TFF keeps only their metrics).
    """
    # Client updates as TFF computes them: initial - trained, zeroed (weight 0) if non-finite.
    deltas = [w[tf.newaxis] - t for w, t in zip(weights, trained)]
    finite = _all_finite(deltas, axis_from=1)
    client_weight = tf.where(finite, num_examples, 0.0)
    deltas = [tf.where(_per_client(finite, d.shape.rank), d, tf.zeros_like(d)) for d in deltas]
    total_weight = tf.reduce_sum(client_weight)
    mean_update = [tf.reduce_sum(d * _per_client(client_weight, d.shape.rank), axis=0)
                   / total_weight for d in deltas]
    # The server optimizer treats the mean update as a gradient; TFF's finalizer
    # rejects (skips) a non-finite one.
    accept = tf.reduce_all(_all_finite(mean_update, axis_from=0))
    new_step = step + 1
    if server_optimizer == "adam":
        # TFF 0.87's build_adam, term for term (tff_ser.engines.optimizers)
        new_weights, accumulator, preconditioner = optimizers.apply(
            optimizers.optimizer_spec("adam"), server_lr, new_step, weights, moments[0],
            moments[1], mean_update)
        new_moments = (accumulator, preconditioner)
    else:
        new_weights = [w - server_lr * g for w, g in zip(weights, mean_update)]
        new_moments = moments

    def keep(new, old):
        return tuple(tf.where(accept, n, o) for n, o in zip(new, old))

    return (keep(new_weights, weights),
            (keep(new_moments[0], moments[0]), keep(new_moments[1], moments[1])),
            tf.where(accept, new_step, step), client_weight, tf.cast(finite, tf.float32))


# The aggregation reads every client's weights once; XLA makes that one fused pass.
_AGGREGATE_XLA = tf.function(_aggregate_and_apply, jit_compile=True)


def _after(dependencies, tensors):
    with tf.control_dependencies(dependencies):
        return [tf.identity(t) for t in tensors]


def _fedavg_round(layers, client_optimizer, server_optimizer, slots, aggregate, x, y, weights,
                  moments, step, clip_index, clip_mask, num_examples, last_step, num_steps,
                  seed, client_lr, server_lr):
    beta_1, beta_2, epsilon = _adam_constants()
    for var, w in zip(slots.weights, weights):
        var.assign(tf.broadcast_to(w[tf.newaxis], var.shape))
    if client_optimizer == "adam":
        # TFF builds a fresh client optimizer every round.
        for var in slots.accumulators + slots.preconditioners:
            var.assign(tf.zeros(var.shape))
    loss_sum = tf.zeros([slots.num_clients])
    correct = tf.zeros([slots.num_clients])
    for k in tf.range(num_steps):
        index, mask = clip_index[:, k], clip_mask[:, k]
        inputs, labels = tf.gather(x, index), tf.gather(y, index)
        count = tf.reduce_sum(mask, axis=1)
        with tf.GradientTape() as tape:
            logits = _logits(layers, slots.weights, inputs, seed, k)
            per_clip = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits) * mask
            # Keras' SUM_OVER_BATCH_SIZE over each client's real clips only.
            objective = tf.reduce_sum(tf.reduce_sum(per_clip, axis=1) / tf.maximum(count, 1.0))
        grads = tape.gradient(objective, slots.weights)
        hits = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                       tf.float32)
        loss_sum += tf.reduce_sum(per_clip, axis=1)
        correct += tf.reduce_sum(hits * mask, axis=1)
        # Local steps are a prefix of the step axis, so every client still
        # training takes its (k+1)-th Adam step here: one scalar step size
        # serves all.  A client past its last step has a zero gradient; with
        # its first moment zeroed too (below), Adam leaves its weights exactly
        # as they are (w - lr * 0 / (sqrt(v) + eps) == w), and SGD does anyway.
        # Updates wait for every gradient: updating in place while a backward
        # product still reads the weights would copy them first.
        grads = _after(grads, grads)
        if client_optimizer == "adam":
            t = tf.cast(k + 1, tf.float32)
            beta_1_power, beta_2_power = tf.math.pow(beta_1, t), tf.math.pow(beta_2, t)
            for w, a, p, g in zip(slots.weights, slots.accumulators, slots.preconditioners,
                                  grads):
                tf.raw_ops.ResourceApplyAdam(
                    var=w.handle, m=a.handle, v=p.handle, beta1_power=beta_1_power,
                    beta2_power=beta_2_power, lr=client_lr, beta1=beta_1, beta2=beta_2,
                    epsilon=epsilon, grad=g)
            # A dense masked pass, only at steps where some client stops: a
            # sparse row update would leave the variable copying at every update.
            stops = tf.logical_and(tf.equal(last_step, k), k + 1 < num_steps)
            if tf.reduce_any(stops):
                carry_on = 1.0 - tf.cast(stops, tf.float32)
                for a in slots.accumulators:
                    a.assign(a * _per_client(carry_on, a.shape.rank))
        else:
            for w, g in zip(slots.weights, grads):
                tf.raw_ops.ResourceApplyGradientDescent(var=w.handle, alpha=client_lr, delta=g)
    new_weights, new_moments, new_step, client_weight, counted = aggregate(
        server_optimizer, list(weights), (list(moments[0]), list(moments[1])), step,
        [w.read_value() for w in slots.weights], num_examples, server_lr)
    # TFF resets the training metrics of a client whose update was non-finite.
    metrics = tf.stack([tf.reduce_sum(loss_sum * counted), tf.reduce_sum(correct * counted),
                        tf.reduce_sum(client_weight)])
    return new_weights, new_moments, new_step, metrics


class BatchedEngine:
    """:class:`BatchedFedAvg` behind the round-engine protocol (:mod:`tff_ser.engines.base`)."""

    name = "batched"

    @staticmethod
    def unsupported_reason(task: Task, config: FederatedConfig) -> Optional[str]:
        from tff_ser.engines.base import fast_engine_reason
        reason = fast_engine_reason("batched", task, config, SUPPORTED_OPTIMIZERS)
        if reason:
            return reason
        try:
            sequential_layers(task.model_def.build(task.input_shape, task.num_classes))
        except (NotImplementedError, ValueError) as exc:
            return str(exc)
        return None

    def __init__(self, task: Task, config: FederatedConfig):
        self.task, self.config = task, config
        self.engine = BatchedFedAvg.for_task(task)
        self.state: Optional[EngineState] = None
        self.path: Optional[str] = None

    @property
    def compile_seconds(self) -> float:
        return self.engine.compile_seconds

    def resume(self, checkpoint_dir: str) -> int:
        self.path = os.path.join(checkpoint_dir, "engine_state.npz")
        if not os.path.exists(self.path):
            return 0
        self.state = EngineState.load(self.path)
        return int(self.state.round_num)

    def start(self) -> None:
        self.state = self.engine.initial_state(self.config)

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
