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

``tests/integration/test_engine_equivalence.py`` checks the weights against the TFF
process after every round (dropout off) to 1e-5.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tff_ser.fedconfig import FederatedConfig
from tff_ser.task import Task

from tff_ser.engines.batched_graph import (_AGGREGATE_XLA, SUPPORTED_OPTIMIZERS,
                                           _aggregate_and_apply,
                                           _ClientSlots, _fedavg_round, sequential_layers)
from tff_ser.engines.state import EngineState, dropout_seed, max_local_steps, plan_round

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

    @classmethod
    def shared(cls, task: Task) -> "BatchedFedAvg":
        """This process's engine for ``task``'s model and shapes, made once.

        Its traced round functions depend on the model, the shapes, the
        optimizers and the client count, not on the learning rates, seed or
        rounds; so every run of a process (the HPO grid's points, an
        experiment's seeds) compiles once.  The last :data:`SHARED_ENGINES`
        (model, shape) pairs are kept.
        """
        key = (task.model, tuple(task.input_shape), int(task.num_classes))
        try:
            hash(key)
        except TypeError:  # an unhashable model description: no sharing
            return cls.for_task(task)
        engine = _SHARED.pop(key, None) or cls.for_task(task)
        _SHARED[key] = engine  # most recent last
        while len(_SHARED) > SHARED_ENGINES:
            _SHARED.pop(next(iter(_SHARED)))
        return engine

    # ---------------------------------------------------------------- state

    def initial_state(self, config: FederatedConfig) -> EngineState:
        """Round-0 state: the seeded initial model (as
        :func:`tff_ser.fedconfig.initial_model_weights` builds it) and a fresh
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


SHARED_ENGINES = 2
_SHARED: Dict[tuple, BatchedFedAvg] = {}


class BatchedEngine:
    """:class:`BatchedFedAvg` behind the round-engine protocol (:mod:`tff_ser.engines.base`)."""

    name = "batched"

    @staticmethod
    def availability_reason() -> Optional[str]:
        """Why this process cannot run the engine (Keras on a backend other than TensorFlow)."""
        from tff_ser.engines.base import tensorflow_backend_reason
        return tensorflow_backend_reason("batched")

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
        self.engine = BatchedFedAvg.shared(task)
        self._compiled_before = self.engine.compile_seconds
        self.state: Optional[EngineState] = None
        self.path: Optional[str] = None

    @property
    def compile_seconds(self) -> float:
        """This run's tracing and compiling (0 when an earlier run of the process compiled)."""
        return self.engine.compile_seconds - self._compiled_before

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
