"""FedNAS on the tf engine: a DARTS search whose weights and architecture both train across clients.

FedNAS (He, Annavaram & Avestimehr 2020, "FedNAS: federated deep learning via
neural architecture search"): every sampled client runs DARTS's first-order
search on its own clips -- for each local step, an Adam step of the
architecture parameters ``theta`` on a batch of its *validation* clips, then
an SGD step of the weights ``w`` on a batch of its *training* clips (paper 003,
eq. 3) -- and the server averages both ``w`` and ``theta``, weighted by the
clients' training clips.  No FL framework this package builds on ships it.

This is :class:`~tff_ser.engines.plain_tf.PlainTFFedAvg` with the search
added to its local step; everything else is the tf engine's: client sampling
and batches (:func:`tff_ser.fedconfig.round_clip_rows`), a fresh client
optimizer per round (the weights': the run's client optimizer; the
architecture's: its own Adam, :class:`~tff_ser.engines.search_spec.SearchSpec`),
the weighted mean, the server optimizer (SGD with lr 1.0 is FedNAS's plain
average), non-finite rejection and checkpoints -- ``theta`` is a trainable
weight of the model, so a killed search resumes from the saved round like
any run.  Per DARTS's code, the weights' gradient gets L2 weight decay and is
clipped to a global norm, and their learning rate anneals on a cosine over
the rounds.

A search on one client holding every training clip is centralized DARTS
(:func:`tff_ser.nas.pooled_search_task`), except that the optimizers' slots
restart every round (epoch), as a client's do in FedAvg.

Validation batches: each round a client shuffles its validation clips
(seeded by run, round and client) into batches of the run's batch size
(one batch of all of them when it has fewer), and local step ``k`` uses batch
``k mod count``.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tff_ser.engines.plain_tf import PlainTFFedAvg
from tff_ser.engines.search_spec import SearchSpec
from tff_ser.task import Task


@dataclasses.dataclass
class SearchTask(Task):
    """A :class:`Task` whose model is a DARTS search network, and each client's validation clips.

    Its training clients hold only the clips that train the weights
    (see :func:`tff_ser.nas.search_task`); ``search_val`` the clips that train
    the architecture.  Held-out (validation) speakers take no part in the search.
    """

    search: Optional[SearchSpec] = None
    search_val: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        if self.search is None:
            raise ValueError("a SearchTask needs search=SearchSpec(...)")
        missing = sorted(set(self.train_clients) - set(self.search_val))
        if missing:
            raise ValueError(f"training clients {missing[:3]} have no architecture-validation "
                             "clips; build the task with tff_ser.nas.search_task")
        held_out = set(self.val_indices.tolist())
        for cid, rows in self.search_val.items():
            rows = set(np.asarray(rows).tolist())
            if cid not in self.train_clients:
                raise ValueError(f"architecture-validation clips of {cid!r}, which is no "
                                 "training client")
            if not rows:
                raise ValueError(f"client {cid!r} has no architecture-validation clips")
            if rows & set(np.asarray(self.train_clients[cid]).tolist()):
                raise ValueError(f"client {cid!r}: architecture-validation clips are among "
                                 "its weight-training clips")
            if rows & held_out:
                raise ValueError(f"client {cid!r}: architecture-validation clips belong to "
                                 "held-out speakers; a search never sees them")


class FedNASFedAvg(PlainTFFedAvg):
    """FedAvg rounds of a DARTS search network, each local step a first-order DARTS step."""

    def __init__(self, task: SearchTask, config):
        from tff_ser.darts import architecture_variables
        self.spec: SearchSpec = task.search
        super().__init__(task, config)
        arch = {id(v) for v in architecture_variables(self.model)}
        self._arch_mask = [id(v) in arch for v in self.train_variables]
        self.arch_vars = [v for v, a in zip(self.train_variables, self._arch_mask) if a]

        def like(v, name):
            return tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=name)

        self.arch_m = [like(v, "arch_m") for v in self.arch_vars]
        self.arch_v = [like(v, "arch_v") for v in self.arch_vars]
        self.val_batches = tf.Variable(tf.zeros([1, 1], tf.int32), trainable=False,
                                       shape=tf.TensorShape([None, None]), name="val_batches")
        self._round = 0
        # A search network is ~1,200 Keras layers: one traced function holding a client's
        # whole update (the tf engine's) would trace and optimise two copies of a step that
        # is already a graph of ~10^4 operations -- minutes before the first round.  Here a
        # client is three small functions, the step traced once, called per batch (a step
        # takes seconds, so the Python loop costs nothing).
        self._reset_fn = tf.function(self._client_reset, input_signature=[])
        self._step_fn = tf.function(self._step, input_signature=[
            tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.float32)])
        self._send_fn = tf.function(self._client_send, input_signature=[
            tf.TensorSpec([], tf.float32)] * 3 + [tf.TensorSpec([2], tf.int64)])

    # ------------------------------------------------------------ graph parts

    def _fresh_client_optimizer(self) -> None:
        super()._fresh_client_optimizer()
        for slot in self.arch_m + self.arch_v:
            slot.assign(tf.zeros_like(slot))

    def _arch_step(self, rows, t):
        """Adam on ``theta`` from the loss on validation clips ``rows`` (DARTS's first order)."""
        spec = self.spec
        labels = tf.gather(self.y, rows)
        with tf.GradientTape() as tape:
            _, loss = self._batch_loss(rows, labels)
        decay = tf.constant(spec.arch_weight_decay, tf.float32)
        # a network without normal cells (L = 1) leaves alpha_normal without gradient
        grads = [(tf.zeros_like(a) if g is None else g) + decay * a
                 for g, a in zip(tape.gradient(loss, self.arch_vars), self.arch_vars)]
        t = tf.cast(t, tf.float32)
        beta_1, beta_2 = tf.constant(spec.arch_beta_1), tf.constant(spec.arch_beta_2)
        for a, m, v, g in zip(self.arch_vars, self.arch_m, self.arch_v, grads):
            tf.raw_ops.ResourceApplyAdam(var=a.handle, m=m.handle, v=v.handle,
                                         beta1_power=tf.math.pow(beta_1, t),
                                         beta2_power=tf.math.pow(beta_2, t),
                                         lr=tf.constant(spec.arch_lr, tf.float32),
                                         beta1=beta_1, beta2=beta_2,
                                         epsilon=tf.constant(1e-8), grad=g)

    def _step(self, rows, t, client_lr):
        batches = self.val_batches.read_value()
        self._arch_step(batches[(t - 1) % tf.shape(batches)[0]], t)
        return super()._step(rows, t, client_lr)

    def _proximal(self, grads, variables):
        """The weights' gradient: FedProx's term if any, L2 decay, clipped; ``theta``'s: none."""
        grads = super()._proximal(grads, variables)
        decay = tf.constant(self.spec.weight_decay, tf.float32)
        weights = [g + decay * w for g, w, a in zip(grads, variables, self._arch_mask) if not a]
        weights, _ = tf.clip_by_global_norm(weights, self.spec.grad_clip)
        weights = iter(weights)
        return [tf.zeros_like(w) if a else next(weights)
                for w, a in zip(variables, self._arch_mask)]

    # ------------------------------------------------------------ one round

    def _client_lr(self, round_num: int) -> float:
        return self.spec.cosine_lr(self.config.client_lr, round_num, self.config.rounds)

    def _validation_batches(self, cid: str) -> np.ndarray:
        rows = np.asarray(self.task.search_val[cid], np.int32)
        rng = np.random.default_rng([int(self.config.seed), int(self._round),
                                     zlib.crc32(str(cid).encode()), 0xDA])
        rows = rng.permutation(rows)
        bs = self.config.batch_size
        if len(rows) < bs:
            return rows.reshape(1, -1)
        full = len(rows) // bs
        return rows[:full * bs].reshape(full, bs)

    def _traced_functions(self) -> list:
        return [self._reset_fn, self._step_fn, self._send_fn, self._server_fn]

    def _run_client(self, cid, rows, client_lr, seed) -> None:
        self.val_batches.assign(self._validation_batches(cid))
        bs = self.config.batch_size
        self._reset_fn()
        totals = [tf.constant(0.0)] * 3
        for k, start in enumerate(range(0, len(rows), bs)):
            out = self._step_fn(rows[start:start + bs], tf.constant(k + 1, tf.int32), client_lr)
            totals = [a + b for a, b in zip(totals, out)]
        self._send_fn(*totals, seed)

    def run_round(self, round_num: int) -> dict:
        self._round = round_num
        return super().run_round(round_num)

    def search_result(self) -> dict:
        """The server's architecture parameters and the genotype they derive."""
        from tff_ser.darts import derive_genotype
        values = [v.numpy() for v, a in zip(self.server_trainable, self._arch_mask) if a]
        genotype = derive_genotype(values[0], values[1],
                                   nodes=_nodes(values[0].shape[0]))
        return {"spec": self.spec.to_dict(), "genotype": genotype.to_dict(),
                "alpha_normal": values[0].tolist(), "alpha_reduce": values[1].tolist()}


def _nodes(edges: int) -> int:
    from tff_ser.darts import edge_count
    return next(n for n in range(1, 64) if edge_count(n) == edges)
