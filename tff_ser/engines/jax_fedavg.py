"""FedAvg on JAX: every sampled client of a round at once (``jax.vmap``), for any Keras 3 model.

TFF's C++ executor never uses a GPU, and the ``tf`` engine walks clients one
after another, so with one client per speaker (73 clients of ~3 local
steps) an accelerator sits idle between tiny batches.  This engine runs
Keras 3 models on Keras' JAX backend and trains the sampled clients of a
round *together*, as FedJAX does: a client's local training is a
``jax.lax.scan`` over its steps of ``model.stateless_call``, ``jax.vmap``
maps it over a chunk of clients, and ``jax.jit`` compiles it once per
(model, chunk, steps, batch size) for the whole run.

The round is TFF's (``build_weighted_fed_avg``), as the ``tf`` engine
computes it (:mod:`tff_ser.engines.plain_tf`, proven equal to TFF's process):

* every client starts from the server weights with a fresh client optimizer
  (any named optimizer, TFF 0.87's formulas: :func:`tff_ser.engines.optimizers.apply`,
  one text for both engines) and trains on the batches
  :func:`tff_ser.engines.state.plan_round` lays out -- the sampled clients,
  clip order and batches of :mod:`tff_ser.fedconfig`, so every engine trains
  the same clips in the same order;
* a batch's loss is the default ``SparseCategoricalCrossentropy`` (plus
  ``model.losses``) over its real clips; FedProx adds TFF's proximal term;
* a client's update (initial minus trained weights) counts with weight
  ``n`` (clips; weighted) or 1 (uniform), and not at all if it holds a
  non-finite value; the server divides the weighted sum by the summed
  weights, and rejects a non-finite mean, then takes its optimizer's step.

Uneven clients are padded: every client's steps are padded to the largest
training client's ``ceil(NLE * clips / BS)`` and each batch to BS, with a
mask.  A padded clip adds nothing to the loss; a step with no real clip
changes neither the weights nor the optimizer (its new values are discarded
with ``where``), so a client's result is the one it gets alone.

How the chunk is chosen
-----------------------
A chunk of C clients holds C copies of the weights, of the client
optimizer's slots and of the gradients, and C batches of activations.  The
engine estimates one client's bytes as ``4 * weights * (3 + slots)`` plus
``4 * BS * (input + every layer's output) * 3`` (forward values, their
gradients, and the scan's saved residuals), where a recurrent layer's output
counts every time step it keeps for its backward pass (``T * (12 * units +
features)``: its inputs, states, gates and their activations; paper 001's
two 512-unit LSTMs on 100 frames keep ~1.3 M values per clip, 25 times their
outputs), and takes the largest C (at most
the clients sampled per round) whose total fits half the device's memory:
``bytes_limit`` from ``jax.devices()[0].memory_stats()`` on a GPU, the
available RAM (psutil) on CPU.  ``TFF_SER_JAX_CHUNK=<C>`` fixes it.  A
round runs ``ceil(sampled / C)`` chunks; the last one is padded with
clients of weight 0, so the compiled function never changes shape.

Dropout: :class:`tff_ser.layers.ReproducibleDropout` draws its masks with
JAX's generator keyed by (layer, input), so the same seed gives the same run
here, and the masks are not TensorFlow's (the weights equal the ``tf``
engine's with dropout off: ``tests/integration/test_jax_engine.py``).

Needs Keras 3 running on JAX: set ``KERAS_BACKEND=jax`` before anything
imports Keras.  TensorFlow is not needed (with features already extracted:
:func:`tff_ser.task.export_task_arrays`).
"""
from __future__ import annotations

import os
import time
from typing import List, Optional, Tuple

import numpy as np

from tff_ser.engines import optimizers
from tff_ser.engines.state import EngineState, max_local_steps, plan_round
from tff_ser.fedconfig import FederatedConfig, initial_model_weights, sampled_per_round
from tff_ser.task import Task

#: Client / server optimizers this engine implements: every named one (TFF 0.87's math).
SUPPORTED_OPTIMIZERS = tuple(optimizers.TFF_DEFAULTS)
#: Set to a number of clients to fix the chunk (see the module docstring).
CHUNK_ENV = "TFF_SER_JAX_CHUNK"


def backend_reason() -> Optional[str]:
    """Why this process cannot run the jax engine (``None``: Keras runs on JAX)."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return "the jax engine needs JAX (pip install jax; GPU: jax[cuda12] or jax[cuda13])"
    import keras
    if not hasattr(keras, "ops") or keras.backend.backend() != "jax":
        return ("the jax engine runs Keras 3 on its JAX backend, but this process's Keras runs "
                f"on {keras.backend.backend()!r} (Keras {keras.__version__}); set "
                "KERAS_BACKEND=jax before anything imports Keras (a fresh process or kernel)")
    return None


def _client_bytes(model, batch_size: int, slots: int) -> int:
    """One client's memory in a chunk (the module docstring's estimate)."""
    weights = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    activations = int(np.prod(model.inputs[0].shape[1:])) if model.inputs else 0
    for layer in model.layers:
        try:
            activations += int(np.prod(layer.output.shape[1:]))
        except (AttributeError, ValueError, TypeError):
            pass
        activations += _recurrent_steps(layer)
    return 4 * weights * (3 + slots) + 4 * batch_size * activations * 3


def _recurrent_steps(layer) -> int:
    """Values a recurrent layer keeps over its time steps for the backward pass (per clip):
    ``T * (12 * units + features)``, 0 for any other layer (the module docstring)."""
    units = getattr(getattr(layer, "cell", None), "units", None)
    if not units:
        return 0
    try:
        steps, features = layer.input.shape[1], layer.input.shape[-1]
    except (AttributeError, ValueError, TypeError, IndexError):
        return 0
    return int(steps or 0) * (12 * int(units) + int(features or 0))


def _memory_budget() -> int:
    import jax
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) // 2
    import psutil
    return int(psutil.virtual_memory().available) // 2


def choose_chunk(model, config: FederatedConfig, num_clients: int, slots: int) -> int:
    """Clients trained together per call (the module docstring says how)."""
    most = sampled_per_round(num_clients, config.client_fraction)
    fixed = os.environ.get(CHUNK_ENV)
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ValueError(f"{CHUNK_ENV} must be a number of clients >= 1; got {fixed!r}")
        return min(most, int(fixed))
    per_client = max(1, _client_bytes(model, config.batch_size, slots))
    return int(max(1, min(most, _memory_budget() // per_client)))


class JaxFedAvg:
    """FedAvg / FedProx rounds of one model on one task, clients vmapped on JAX.

    Parameters
    ----------
    task : Task
        Its features are put on the device once; batches are gathered there.
    config : FederatedConfig
        Client and server optimizers (any of :data:`SUPPORTED_OPTIMIZERS`),
        FedAvg or FedProx, weighted or uniform client weights.
    """

    def __init__(self, task: Task, config: FederatedConfig):
        import jax
        import jax.numpy as jnp
        reason = backend_reason()
        if reason:
            from tff_ser.engines.base import EngineUnsupported
            raise EngineUnsupported(reason)
        self.task, self.config = task, config
        self.client_spec = optimizers.optimizer_spec(config.client_optimizer,
                                                     config.client_optimizer_kwargs)
        self.server_spec = optimizers.optimizer_spec(config.server_optimizer,
                                                     config.server_optimizer_kwargs)
        self.model = task.model_def.build(task.input_shape, task.num_classes)
        self.x = jnp.asarray(task.x, jnp.float32)
        self.y = jnp.asarray(task.y, jnp.int32)
        self.max_steps = max_local_steps([len(c) for c in task.train_clients.values()],
                                         config.local_epochs, config.batch_size)
        slots = int(self.client_spec.has_accumulator) + int(self.client_spec.has_preconditioner)
        self.chunk = choose_chunk(self.model, config, len(task.train_clients), slots)
        # Keras 3 keeps more non-trainable variables than the weights a run saves (an LSTM's
        # seed generator state): those are fed from the built model, the saved ones from
        # the server state.
        saved = {id(v) for v in self.model.non_trainable_weights}
        self._non_trainable_saved = [id(v) in saved for v in self.model.non_trainable_variables]
        self._non_trainable_own = [np.asarray(v.numpy()) for v in
                                   self.model.non_trainable_variables]
        self.compile_seconds = 0.0
        self._chunk_fn = jax.jit(self._chunk_update)
        self._server_fn = jax.jit(self._server_update)
        self._compiled: Optional[tuple] = None
        self.state: Optional[EngineState] = None

    # ------------------------------------------------------------ one client, one chunk

    def _loss(self, trainable, non_trainable, xb, yb, mask):
        import jax.numpy as jnp
        import keras
        predictions, _, losses = self.model.stateless_call(
            trainable, non_trainable, xb, training=True, return_losses=True)
        per_clip = keras.losses.sparse_categorical_crossentropy(yb, predictions)
        n = jnp.sum(mask)
        loss = jnp.sum(per_clip * mask) / jnp.maximum(n, 1.0)
        return loss + sum(losses, jnp.float32(0.0)), predictions

    def _client(self, server, non_trainable, rows, mask, client_lr):
        """One client's local training: ``(update, loss sum, hits, clips)``."""
        import jax
        import jax.numpy as jnp
        spec, math = self.client_spec, optimizers.TensorMath.jax()
        acc0, pre0 = optimizers.initial_slots(spec, [np.zeros(w.shape, np.float32)
                                                     for w in self.model.trainable_variables])
        acc0 = [jnp.asarray(a) for a in acc0]
        pre0 = [jnp.asarray(p) for p in pre0]
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)
        mu = self.config.proximal_strength if self.config.algorithm == "fedprox" else None

        def step(carry, batch):
            weights, acc, pre, taken = carry
            batch_rows, batch_mask = batch
            labels = self.y[batch_rows]
            (loss, predictions), grads = grad_fn(weights, non_trainable, self.x[batch_rows],
                                                 labels, batch_mask)
            if mu is not None:  # TFF 0.87's proximal term, as the tf engine adds it
                grads = [g + jnp.float32(mu) * (s - w)
                         for g, s, w in zip(grads, server, weights)]
            new_w, new_a, new_p = optimizers.apply(spec, client_lr, taken + 1, weights, acc,
                                                   pre, grads, math=math)
            real = jnp.sum(batch_mask) > 0

            def keep(new, old):
                return [jnp.where(real, a, b) for a, b in zip(new, old)]

            n = jnp.sum(batch_mask)
            hits = jnp.sum(batch_mask * (jnp.argmax(predictions, axis=-1) == labels))
            return ((keep(new_w, weights), keep(new_a, acc), keep(new_p, pre),
                     taken + real.astype(jnp.int32)), (loss * n, hits, n))

        (trained, _, _, _), (loss_sums, hits, clips) = jax.lax.scan(
            step, (list(server), acc0, pre0, jnp.int32(0)), (rows, mask))
        update = [s - w for s, w in zip(server, trained)]
        return update, jnp.sum(loss_sums), jnp.sum(hits), jnp.sum(clips)

    def _chunk_update(self, server, non_trainable, rows, mask, present, client_lr):
        """A chunk of clients at once: its weighted update sum and its round sums."""
        import jax
        import jax.numpy as jnp
        updates, loss_sum, hits, clips = jax.vmap(
            self._client, in_axes=(None, None, 0, 0, None))(server, non_trainable, rows, mask,
                                                             client_lr)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(u), axis=tuple(range(1, u.ndim)))
                                    for u in updates]), axis=0)
        counted = present * finite
        if self.config.weighted:
            weight = clips * counted
            weight_sum = jnp.sum(weight)
        else:
            # TFF's unweighted mean divides by every sampled client, a zeroed one too
            weight = counted
            weight_sum = jnp.sum(present)
        update_sum = [jnp.tensordot(weight, jnp.where(finite.reshape((-1,) + (1,) * (u.ndim - 1)),
                                                      u, 0.0), axes=1) for u in updates]
        sums = jnp.stack([weight_sum, jnp.sum(loss_sum * counted), jnp.sum(hits * counted),
                          jnp.sum(clips * counted)])
        return update_sum, sums

    def _server_update(self, server, acc, pre, step, update_sum, weight, server_lr):
        """TFF's weighted mean and server optimizer (a non-finite mean is rejected)."""
        import jax.numpy as jnp
        mean = [u / weight for u in update_sum]
        ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(m)) for m in mean]))
        new_w, new_a, new_p = optimizers.apply(self.server_spec, server_lr, step + 1, server, acc,
                                               pre, mean, math=optimizers.TensorMath.jax())

        def pick(new, old):
            return [jnp.where(ok, a, b) for a, b in zip(new, old)]

        return pick(new_w, server), pick(new_a, acc), pick(new_p, pre), step + ok.astype(
            jnp.int32)

    # ------------------------------------------------------------ state

    def _non_trainable(self, saved_values) -> list:
        """``model.non_trainable_variables``' values: the saved weights, then the model's own."""
        import jax.numpy as jnp
        saved = iter(saved_values)
        return [jnp.asarray(next(saved) if is_saved else own)
                for is_saved, own in zip(self._non_trainable_saved, self._non_trainable_own)]

    def set_state(self, state: EngineState) -> None:
        from tff_ser.engines.state import check_server_slots
        if state.server_step == 0 and not state.server_accumulator \
                and not state.server_preconditioner:
            acc, pre = optimizers.initial_slots(self.server_spec, state.trainable)
            state = EngineState(state.round_num, state.trainable, state.non_trainable, 0, acc, pre)
        else:
            check_server_slots(self.server_spec, state)
        self.state = state

    def _compile(self, server, non_trainable, rows, mask, present, client_lr, server_args):
        """Compile both functions for this run's shapes, once (kept out of round times)."""
        tc = time.perf_counter()
        chunk = self._chunk_fn.lower(server, non_trainable, rows, mask, present,
                                     client_lr).compile()
        update = self._server_fn.lower(*server_args).compile()
        self._compiled = (chunk, update)
        self.compile_seconds += time.perf_counter() - tc

    def run_round(self, round_num: int) -> dict:
        """Train round ``round_num``; returns its history row (keys as the other engines')."""
        import jax.numpy as jnp
        config, state = self.config, self.state
        plan = plan_round(self.task, config, round_num, max_steps=self.max_steps)
        server = [jnp.asarray(w) for w in state.trainable]
        non_trainable = self._non_trainable(state.non_trainable)
        client_lr = jnp.float32(config.client_lr)
        server_args = (server, [jnp.asarray(a) for a in state.server_accumulator],
                       [jnp.asarray(p) for p in state.server_preconditioner],
                       jnp.int32(state.server_step))
        chunks = [_chunk_slice(plan, start, self.chunk)
                  for start in range(0, len(plan.clients), self.chunk)]
        if self._compiled is None:
            self._compile(server, non_trainable, *chunks[0], client_lr,
                          server_args + (server, jnp.float32(1.0), jnp.float32(1.0)))
        chunk_fn, server_fn = self._compiled
        t0 = time.perf_counter()
        update_sum, sums = None, np.zeros(4, np.float64)
        for rows, mask, present in chunks:
            part, part_sums = chunk_fn(server, non_trainable, rows, mask, present, client_lr)
            update_sum = part if update_sum is None else [a + b for a, b in zip(update_sum, part)]
            sums += np.asarray(part_sums, np.float64)
        weight, loss_sum, hits, examples = sums
        new_w, new_a, new_p, step = server_fn(*server_args, update_sum, jnp.float32(weight),
                                              jnp.float32(config.server_lr))
        self.state = EngineState(round_num, [np.asarray(w) for w in new_w], state.non_trainable,
                                 int(step), [np.asarray(a) for a in new_a],
                                 [np.asarray(p) for p in new_p])
        return {"round": round_num, "clients": len(plan.clients),
                "seconds": time.perf_counter() - t0,
                "train_loss": float(loss_sum / examples) if examples else float("nan"),
                "train_accuracy": float(hits / examples) if examples else float("nan"),
                "train_examples": int(round(examples))}


def _chunk_slice(plan, start: int, size: int):
    """Clients ``start .. start + size`` of ``plan``, padded with absent clients to ``size``."""
    rows = plan.clip_index[start:start + size]
    mask = plan.clip_mask[start:start + size]
    present = np.ones(len(rows), np.float32)
    missing = size - len(rows)
    if missing:
        rows = np.concatenate([rows, np.zeros((missing,) + rows.shape[1:], rows.dtype)])
        mask = np.concatenate([mask, np.zeros((missing,) + mask.shape[1:], mask.dtype)])
        present = np.concatenate([present, np.zeros(missing, np.float32)])
    return rows, mask, present


class JaxEngine:
    """:class:`JaxFedAvg` behind the round-engine protocol (:mod:`tff_ser.engines.base`)."""

    name = "jax"

    @staticmethod
    def unsupported_reason(task: Task, config: FederatedConfig) -> Optional[str]:
        from tff_ser.engines.base import fast_engine_reason
        return fast_engine_reason("jax", task, config, SUPPORTED_OPTIMIZERS,
                                  algorithms=("fedavg", "fedprox"), unweighted=True,
                                  optimizer_arguments=True)

    @staticmethod
    def availability_reason() -> Optional[str]:
        """Why this process cannot run the engine (no JAX, or Keras not on JAX)."""
        return backend_reason()

    def __init__(self, task: Task, config: FederatedConfig):
        self.task, self.config = task, config
        self.engine = JaxFedAvg(task, config)
        self.path: Optional[str] = None

    @property
    def compile_seconds(self) -> float:
        return self.engine.compile_seconds

    def start(self) -> None:
        trainable, non_trainable = initial_model_weights(
            self.task.model, self.task.input_shape, self.task.num_classes, self.config.seed)
        self.engine.set_state(EngineState(0, trainable, non_trainable, 0, [], []))

    def resume(self, checkpoint_dir: str) -> int:
        self.path = os.path.join(checkpoint_dir, "engine_state.npz")
        if not os.path.exists(self.path):
            return 0
        state = EngineState.load(self.path)
        self.engine.set_state(state)
        return int(state.round_num)

    def round(self, round_num: int) -> dict:
        return self.engine.run_round(round_num)

    def save(self, round_num: int) -> None:
        state = self.engine.state
        EngineState(round_num, state.trainable, state.non_trainable, state.server_step,
                    state.server_accumulator, state.server_preconditioner).save(self.path)

    def final_metrics(self) -> dict:
        return {"jax": {"clients_per_chunk": self.engine.chunk,
                        "local_steps_padded_to": self.engine.max_steps}}

    def weights(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        return list(self.engine.state.trainable), list(self.engine.state.non_trainable)

    def federated_eval(self) -> dict:
        return {}
