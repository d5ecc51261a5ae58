"""FedAvg in plain TensorFlow for any Keras model: clients one after another, one model, no worker.

TFF 0.87's process ships every client's copy of the model through its C++
executor: for paper 001's 26 M-parameter dense model that costs ~6 s per
client per round of fixed cost, and with one client per speaker (73
clients) the worker grew past 23 GB and was OOM-killed on a 24 GB machine.
It also never uses a GPU.  This engine computes the same rounds with
ordinary TensorFlow on one Keras model:

* the server weights, the server optimizer's state, the client optimizer's
  slots and the running sum of weighted client updates are ``tf.Variable``\\ s
  made once, so nothing is allocated or copied through Python per client;
* one traced function trains one client: it resets the model to the server
  weights and the client optimizer's slots (TFF builds a fresh client
  optimizer every round), runs the client's full batches in a
  ``tf.while_loop`` and its partial last batch, if any, after it (FedProx:
  TFF's proximal term added to each gradient), and adds ``weight * (initial
  - trained)`` into the update sum -- or nothing, with weight 0, if the
  update holds a non-finite value (``zero_all_if_any_non_finite``); with a
  named aggregator the update goes through its zeroing, clipping, DP clip
  or quantization first (:mod:`tff_ser.engines.aggregators`);
* a second traced function divides by the summed weights (TFF's weighted
  ``MeanFactory``; DP: adds the noise and divides by the clients per
  round), updates the aggregator's adaptive norms, rejects a non-finite mean
  (TFF's finalizer) and applies the server optimizer with TFF 0.87's
  formulas (:mod:`tff_ser.engines.optimizers`).

The clients of a round, and the clips each one trains on in which order, are
:func:`tff_ser.fedconfig.round_clip_rows`: the batches TFF's process is
given.  A batch's loss is the model's own loss (default Keras
``SparseCategoricalCrossentropy``, plus ``model.losses``) on the real clips
of the batch, as in ``tff.learning.models.from_keras_model``; client Adam
steps are TensorFlow's fused ``ResourceApplyAdam``, whose update is TFF's
(``learning/optimizers/adam.py``) term for term, and the other client
optimizers are :func:`tff_ser.engines.optimizers.apply`.

Why sequential, not vectorised over clients
-------------------------------------------
The batched engine stacks clients on a leading axis, which pays off for
paper 000's MLP (tiny matrices, per-call overhead dominates).  For conv1d,
dense and LSTM the arithmetic of one client's batch already fills the cores
(a TFF round at 4 clients costs what a Keras epoch costs), so stacking only
multiplies memory -- 73 copies of the dense model and its Adam slots are
~23 GB, what killed TFF's worker -- for no gain in throughput.  One model
walked client after client holds 7 copies of the weights whatever the
number of clients, and each client costs its local steps plus four passes
over the weights (reset, two Adam slots, accumulate), measured in
``benchmarks/bench_engines.py``.

Runs on a GPU whenever TensorFlow sees one (``tf.config.list_physical_devices("GPU")``).

Dropout: the package's models use :class:`tff_ser.layers.ReproducibleDropout`,
whose masks are a function of the layer's input, so the same seed gives the
same run here too; masks agree with TFF's only as far as the inputs agree to
the last bit, so with dropout on the engines are the same in distribution,
not in every bit (``tests/integration/test_plain_tf_engine.py``).
"""
from __future__ import annotations

import os
import time
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from tff_ser.engines import aggregators, optimizers
from tff_ser.engines.state import EngineState, check_server_slots
from tff_ser.fedconfig import FederatedConfig, initial_model_weights, round_clip_rows
from tff_ser.task import Task

#: Client / server optimizers this engine implements: every named one (TFF 0.87's math).
SUPPORTED_OPTIMIZERS = tuple(optimizers.TFF_DEFAULTS)


def _all_finite(tensors) -> tf.Tensor:
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors]))


class PlainTFFedAvg:
    """FedAvg / FedProx rounds of one model on one task, in plain TensorFlow.

    Parameters
    ----------
    task : Task
        Its features are copied once into a TensorFlow variable (on the GPU
        if there is one); batches are gathered from it inside the graph.
    config : FederatedConfig
        Client and server optimizers (any of :data:`SUPPORTED_OPTIMIZERS`
        with their arguments), FedAvg or FedProx (mu), weighted or uniform
        client weights fix the traced functions; learning rates are tensors,
        so a sweep reuses them.
    """

    def __init__(self, task: Task, config: FederatedConfig):
        self.task, self.config = task, config
        self.client_spec = optimizers.optimizer_spec(config.client_optimizer,
                                                     config.client_optimizer_kwargs)
        self.server_spec = optimizers.optimizer_spec(config.server_optimizer,
                                                     config.server_optimizer_kwargs)
        self.model = task.model_def.build(task.input_shape, task.num_classes)
        self.loss_fn = task.model_def.make_loss()
        # The model's extra metrics, over every clip of a round (TFF sums their
        # states over the clients before it finalizes them).
        self.metrics = task.model_def.make_metrics()
        # what a client trains and the server averages: the model's weights, plus a
        # subclass's own (distillation's embedding projection)
        self.train_variables = list(self.model.trainable_variables) + self._extra_trainable()
        trainable, non_trainable = self.train_variables, self.model.non_trainable_variables

        def like(v, name):
            return tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=name)

        self.server_trainable = [like(v, "server_w") for v in trainable]
        self.server_non_trainable = [like(v, "server_nt") for v in non_trainable]
        self.client_m = [like(v, "client_m") for v in trainable]
        self.client_v = [like(v, "client_v") for v in trainable]
        self.server_m = [like(v, "server_m") for v in trainable]
        self.server_v = [like(v, "server_v") for v in trainable]
        self.server_step = tf.Variable(0, dtype=tf.int32, trainable=False, name="server_step")
        self.update_sum = [like(v, "update_sum") for v in trainable]
        # weight sum, loss sum, correct clips, clips -- over the round's finite clients
        self.sums = tf.Variable(tf.zeros([4]), trainable=False, name="round_sums")
        # TFF's named aggregators (robust, compression, DP): their adaptive norms, and the
        # round's quantile records and client count
        self.agg = aggregators.aggregator_spec(config, len(task.train_clients))
        self.agg_state = tf.Variable(self.agg.initial_state(), trainable=False, name="agg_state")
        self.agg_below = tf.Variable(tf.zeros([3]), trainable=False, name="agg_below")
        self.agg_clients = tf.Variable(0.0, trainable=False, name="agg_clients")
        self.x = tf.Variable(task.x, trainable=False, name="features")
        self.y = tf.Variable(task.y, trainable=False, name="labels")
        self.compile_seconds = 0.0
        self._traced = False
        self._client_fn = tf.function(self._client_update, input_signature=[
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.float32), tf.TensorSpec([2], tf.int64)])
        self._server_fn = tf.function(self._server_update, input_signature=[
            tf.TensorSpec([], tf.float32), tf.TensorSpec([2], tf.int64)])

    # ------------------------------------------------------------ graph parts

    def _extra_trainable(self) -> list:
        """Variables trained and averaged beside the model's own (none here)."""
        return []

    def _client_start(self) -> None:
        """In the graph, after a client's model is reset to the server's: nothing here
        (personalization puts the client's own layers back, :mod:`tff_ser.engines.personal`)."""
        return None

    def _shared(self) -> List[bool]:
        """Which train variables a client's update sends to the server (all, here)."""
        return [True] * len(self.train_variables)

    def _batch_loss(self, rows, labels):
        """The model's predictions on clips ``rows`` and the loss a local step minimises."""
        model = self.model
        predictions = model(tf.gather(self.x, rows), training=True)
        return predictions, tf.add_n([self.loss_fn(labels, predictions)] + list(model.losses))

    def _proximal(self, grads, variables):
        """The gradients a local step applies: FedProx adds its proximal term."""
        if self.config.algorithm == "fedprox":
            # TFF 0.87's proximal term, as written there: mu * (initial - current).
            mu = tf.constant(self.config.proximal_strength, tf.float32)
            grads = [g + mu * (s - w) for g, s, w in zip(grads, self.server_trainable, variables)]
        return grads

    def _step(self, rows, t, client_lr):
        """One local step on the clips ``rows``; ``t`` is the client optimizer's step (1-based)."""
        spec = self.client_spec
        labels = tf.gather(self.y, rows)
        with tf.GradientTape() as tape:
            predictions, loss = self._batch_loss(rows, labels)
        variables = self.train_variables
        grads = self._proximal(tape.gradient(loss, variables), variables)
        with tf.control_dependencies(grads):  # every gradient before any in-place update
            grads = [tf.identity(g) for g in grads]
        if spec.kind == "adam":
            beta_1, beta_2 = tf.constant(spec["beta_1"]), tf.constant(spec["beta_2"])
            t = tf.cast(t, tf.float32)
            b1p, b2p = tf.math.pow(beta_1, t), tf.math.pow(beta_2, t)
            for w, m, v, g in zip(variables, self.client_m, self.client_v, grads):
                tf.raw_ops.ResourceApplyAdam(var=w.handle, m=m.handle, v=v.handle,
                                             beta1_power=b1p, beta2_power=b2p, lr=client_lr,
                                             beta1=beta_1, beta2=beta_2,
                                             epsilon=tf.constant(spec["epsilon"]), grad=g)
        elif spec.kind == "sgd":
            for w, g in zip(variables, grads):
                tf.raw_ops.ResourceApplyGradientDescent(var=w.handle, alpha=client_lr, delta=g)
        else:
            acc = list(self.client_m) if spec.has_accumulator else []
            pre = list(self.client_v) if spec.has_preconditioner else []
            new_w, new_a, new_p = optimizers.apply(
                spec, client_lr, t, [tf.convert_to_tensor(w) for w in variables],
                [a.read_value() for a in acc], [p.read_value() for p in pre], grads)
            for var, value in zip(list(variables) + acc + pre, new_w + new_a + new_p):
                var.assign(value)
        for metric in self.metrics:
            metric.update_state(labels, predictions)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        hits = tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(predictions, axis=-1, output_type=tf.int32), labels), tf.float32))
        return loss * n, hits, n

    def _fresh_client_optimizer(self) -> None:
        """TFF builds a fresh client optimizer every round: its slots start anew."""
        if self.client_spec.has_accumulator:
            for slot in self.client_m:
                slot.assign(tf.zeros_like(slot))
        if self.client_spec.has_preconditioner:
            start = (self.client_spec["initial_preconditioner_value"]
                     if self.client_spec.kind in ("yogi", "adagrad") else 0.0)
            for slot in self.client_v:
                slot.assign(tf.fill(tf.shape(slot), tf.constant(start, tf.float32)))

    def _client_update(self, full_rows, last_rows, client_lr, seed):
        self._client_reset()
        steps = tf.shape(full_rows)[0]
        loss_sum, hits, n = tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)
        for k in tf.range(steps):
            l_k, h_k, n_k = self._step(full_rows[k], k + 1, client_lr)
            loss_sum, hits, n = loss_sum + l_k, hits + h_k, n + n_k
        if tf.shape(last_rows)[0] > 0:
            l_k, h_k, n_k = self._step(last_rows, steps + 1, client_lr)
            loss_sum, hits, n = loss_sum + l_k, hits + h_k, n + n_k
        self._client_send(loss_sum, hits, n, seed)

    def _client_reset(self):
        """A client starts: the server's model (and its own part), a fresh client optimizer."""
        for var, server in zip(self.train_variables + self.model.non_trainable_variables,
                               self.server_trainable + self.server_non_trainable):
            var.assign(server)
        self._client_start()
        self._fresh_client_optimizer()

    def _client_send(self, loss_sum, hits, n, seed):
        """A client's update after its local steps, into the round's sums (or zeroed)."""
        deltas = [s - w if shared else tf.zeros_like(w) for s, w, shared
                  in zip(self.server_trainable, self.train_variables, self._shared())]
        weight = n if self.config.weighted else tf.constant(1.0)
        if not self.agg.plain:
            # TFF zeroes a non-finite update (weight 0 when weighted) before its aggregator
            finite = _all_finite(deltas)
            value = [tf.where(finite, d, tf.zeros_like(d)) for d in deltas]
            if self.config.weighted:
                weight = tf.where(finite, weight, 0.0)
            contribution, below = aggregators.client_value(self.agg, value, weight,
                                                           self.agg_state.read_value(), seed)
            for acc, c in zip(self.update_sum, contribution):
                acc.assign_add(c)
            self.agg_below.assign_add(below)
            self.agg_clients.assign_add(1.0)
            if finite:
                self.sums.assign_add(tf.stack([weight, loss_sum, hits, n]))
            else:
                self.sums.assign_add(tf.stack([weight, 0.0, 0.0, 0.0]))
        elif _all_finite(deltas):
            for acc, d in zip(self.update_sum, deltas):
                acc.assign_add(d * weight)
            self.sums.assign_add(tf.stack([weight, loss_sum, hits, n]))
        elif not self.config.weighted:
            # TFF's unweighted mean divides by every sampled client, a zeroed one too.
            self.sums.assign_add(tf.stack([weight, 0.0, 0.0, 0.0]))

    def _server_update(self, server_lr, seed):
        weight = self.sums[0]
        if self.agg.plain:
            mean = [acc / weight for acc in self.update_sum]
        else:
            mean, new_state = aggregators.server_mean(
                self.agg, [acc.read_value() for acc in self.update_sum], weight,
                self.agg_below.read_value(), self.agg_clients.read_value(),
                self.agg_state.read_value(), seed)
            self.agg_state.assign(new_state)
        if _all_finite(mean):  # TFF's finalizer skips a non-finite update
            spec = self.server_spec
            step = self.server_step + 1
            acc = list(self.server_m) if spec.has_accumulator else []
            pre = list(self.server_v) if spec.has_preconditioner else []
            new_w, new_a, new_p = optimizers.apply(
                spec, server_lr, step, [w.read_value() for w in self.server_trainable],
                [a.read_value() for a in acc], [p.read_value() for p in pre], mean)
            for var, value in zip(self.server_trainable + acc + pre, new_w + new_a + new_p):
                var.assign(value)
            self.server_step.assign(step)

    # ------------------------------------------------------------ state

    def set_state(self, state: EngineState) -> None:
        for var, value in zip(self.server_trainable, state.trainable):
            var.assign(value)
        for var, value in zip(self.server_non_trainable, state.non_trainable):
            var.assign(value)
        accumulator, preconditioner = state.server_accumulator, state.server_preconditioner
        if state.server_step == 0 and not accumulator and not preconditioner:
            # a fresh state: the server optimizer starts as TFF's initialize() makes it
            accumulator, preconditioner = optimizers.initial_slots(self.server_spec,
                                                                   state.trainable)
        else:
            check_server_slots(self.server_spec, state)
        for var, value in zip(self.server_m, accumulator):
            var.assign(value)
        for var, value in zip(self.server_v, preconditioner):
            var.assign(value)
        self.server_step.assign(state.server_step)
        self.agg_state.assign(state.aggregator_state[0] if state.aggregator_state
                              else self.agg.initial_state())

    def get_state(self, round_num: int) -> EngineState:
        spec = self.server_spec
        return EngineState(
            round_num=round_num, trainable=[v.numpy() for v in self.server_trainable],
            non_trainable=[v.numpy() for v in self.server_non_trainable],
            server_step=int(self.server_step.numpy()),
            server_accumulator=[v.numpy() for v in self.server_m] if spec.has_accumulator else [],
            server_preconditioner=([v.numpy() for v in self.server_v]
                                   if spec.has_preconditioner else []),
            aggregator_state=[] if self.agg.plain else [self.agg_state.numpy()])

    # ------------------------------------------------------------ one round

    def warm_up(self) -> None:
        """Trace both functions and run a client with no clips once (kept out of round times)."""
        if self._traced:
            return
        tc = time.perf_counter()
        for function in self._traced_functions():
            function.get_concrete_function()
        self._traced = True
        self.compile_seconds += time.perf_counter() - tc

    def _traced_functions(self) -> list:
        """The traced functions a round calls, traced by :meth:`warm_up`."""
        return [self._client_fn, self._server_fn]

    def _client_lr(self, round_num: int) -> float:
        """The clients' learning rate in round ``round_num`` (the config's; a search anneals it)."""
        return self.config.client_lr

    def _run_client(self, cid: str, rows: np.ndarray, client_lr, seed) -> None:
        """One sampled client's update: its clips as full batches of BS and a partial last one."""
        bs = self.config.batch_size
        full = len(rows) // bs
        self._client_fn(rows[:full * bs].reshape(full, bs), rows[full * bs:], client_lr, seed)

    def run_round(self, round_num: int) -> dict:
        """Train round ``round_num``; returns its history row (keys as the TFF engine's)."""
        config = self.config
        client_lr = tf.constant(self._client_lr(round_num), tf.float32)
        self.warm_up()
        t0 = time.perf_counter()
        for acc in self.update_sum:
            acc.assign(tf.zeros_like(acc))
        self.sums.assign(tf.zeros([4]))
        self.agg_below.assign(tf.zeros([3]))
        self.agg_clients.assign(0.0)
        for metric in self.metrics:
            metric.reset_state()
        sampled = round_clip_rows(self.task.train_clients, config, round_num)
        for position, (cid, rows) in enumerate(sampled):
            self._run_client(cid, np.asarray(rows, np.int32), client_lr,
                             aggregation_seed(config.seed, round_num, position))
        self._server_fn(tf.constant(config.server_lr, tf.float32),
                        aggregation_seed(config.seed, round_num, -1))
        _, loss_sum, hits, examples = (float(v) for v in self.sums.numpy())
        row = {"round": round_num, "clients": len(sampled),
               "seconds": time.perf_counter() - t0,
               "train_loss": loss_sum / examples if examples else float("nan"),
               "train_accuracy": hits / examples if examples else float("nan"),
               "train_examples": int(round(examples))}
        for metric in self.metrics:
            row[f"train_{metric.name}"] = float(np.asarray(metric.result()))
        return row


class PlainTFEngine:
    """:class:`PlainTFFedAvg` behind the round-engine protocol (:mod:`tff_ser.engines.base`)."""

    name = "tf"
    #: trains a :class:`tff_ser.distillation.DistillationTask` (:mod:`tff_ser.engines.distill`)
    distills = True

    @staticmethod
    def availability_reason() -> Optional[str]:
        """Why this process cannot run the engine (Keras on a backend other than TensorFlow)."""
        from tff_ser.engines.base import tensorflow_backend_reason
        return tensorflow_backend_reason("tf")

    @staticmethod
    def unsupported_reason(task: Task, config: FederatedConfig) -> Optional[str]:
        from tff_ser.engines.base import fast_engine_reason
        return fast_engine_reason("tf", task, config, SUPPORTED_OPTIMIZERS,
                                  algorithms=("fedavg", "fedprox"), unweighted=True,
                                  optimizer_arguments=True, any_loss=True,
                                  aggregators=(None, "mean", "robust", "compression", "dp"))

    def __init__(self, task: Task, config: FederatedConfig):
        self.task, self.config = task, config
        if getattr(task, "teacher", None) is not None:
            from tff_ser.engines.distill import DistillationFedAvg
            self.engine = DistillationFedAvg(task, config)
        elif getattr(task, "personal", None) is not None:
            from tff_ser.engines.personal import PersonalizedFedAvg
            self.engine = PersonalizedFedAvg(task, config)
        elif getattr(task, "search", None) is not None:
            from tff_ser.engines.fednas import FedNASFedAvg
            self.engine = FedNASFedAvg(task, config)
        else:
            self.engine = PlainTFFedAvg(task, config)
        self.path: Optional[str] = None

    @property
    def compile_seconds(self) -> float:
        return self.engine.compile_seconds

    def start(self) -> None:
        trainable, non_trainable = initial_model_weights(
            self.task.model, self.task.input_shape, self.task.num_classes, self.config.seed)
        if hasattr(self.engine, "extra_initial"):
            trainable = trainable + self.engine.extra_initial(self.config.seed)
        accumulator, preconditioner = optimizers.initial_slots(self.engine.server_spec, trainable)
        self.engine.set_state(EngineState(0, trainable, non_trainable, 0, accumulator,
                                          preconditioner))
        if hasattr(self.engine, "start_personal"):
            self.engine.start_personal()

    def resume(self, checkpoint_dir: str) -> int:
        self.path = os.path.join(checkpoint_dir, "engine_state.npz")
        if not os.path.exists(self.path):
            return 0
        state = EngineState.load(self.path)
        self.engine.set_state(state)
        if hasattr(self.engine, "load_personal"):
            # written before engine_state.npz by save(): present whenever the state is
            self.engine.load_personal(self._personal_path(int(state.round_num)))
        return int(state.round_num)

    def _personal_path(self, round_num: int) -> str:
        # one file per round: a kill between it and engine_state.npz leaves the
        # state's own round's file in place
        return os.path.join(os.path.dirname(self.path), f"personal_state_{round_num}.npz")

    def round(self, round_num: int) -> dict:
        return self.engine.run_round(round_num)

    def save(self, round_num: int) -> None:
        if hasattr(self.engine, "save_personal"):
            self.engine.save_personal(self._personal_path(round_num))
        self.engine.get_state(round_num).save(self.path)
        if hasattr(self.engine, "save_personal"):
            folder = os.path.dirname(self.path)
            for name in os.listdir(folder):
                if (name.startswith("personal_state_") and name.endswith(".npz")
                        and name != os.path.basename(self._personal_path(round_num))):
                    os.remove(os.path.join(folder, name))

    def final_metrics(self) -> dict:
        """What the run adds to its final metrics (personalization: each client's own model)."""
        if hasattr(self.engine, "evaluate_personal"):
            return {"personalized": {"spec": self.task.personal.to_dict(),
                                     "clients": self.engine.evaluate_personal()}}
        if hasattr(self.engine, "search_result"):
            return {"search": self.engine.search_result()}
        return {}

    def weights(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """The model's server weights (without a distillation projection)."""
        own = len(self.engine.model.trainable_variables)
        return ([v.numpy() for v in self.engine.server_trainable[:own]],
                [v.numpy() for v in self.engine.server_non_trainable])

    def federated_eval(self) -> dict:
        return {}


def aggregation_seed(seed: int, round_num: int, client: int) -> np.ndarray:
    """Stateless seed of a round's quantizer rounding (per client) and DP noise (``client=-1``)."""
    state = np.random.SeedSequence([int(seed), int(round_num), int(client) + 1, 0xA66])
    return state.generate_state(2).astype(np.int64) % (2 ** 31)
