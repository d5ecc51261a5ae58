"""Personalized federated learning on the tf engine: FedPer and Ditto, each client keeping its own model.

Both train the global model with the tf engine's FedAvg rounds (sampling,
client order, fresh client optimizer, weighted mean, server optimizer,
non-finite rejection, checkpoints: :class:`~tff_ser.engines.plain_tf.PlainTFFedAvg`)
and keep, for every training client, state that never leaves it:

* **FedPer** (Arivazhagan et al. 2019, "Federated learning with personalization
  layers"): the model's last ``personal_layers`` layers with weights are the
  client's own *personal head*; a sampled client trains its head and the shared
  body together on its clips, sends only the body's update, and keeps its head
  for the next round it is sampled in.  Every head starts from the global
  model's initial head.  The server's copy of the head receives no update and
  stays the initial one (what a new speaker starts from).
* **FedRep** (Collins et al. 2021, "Exploiting shared representations for
  personalized federated learning"): the same split into a shared body and a
  personal head, trained in two passes per round: a sampled client first
  trains its head with the body frozen (the round's local steps), then the
  body with its new head frozen (the same steps, with a fresh client
  optimizer), and sends only the body's update.  Frozen means a zero
  gradient on a fresh optimizer: the variables do not move.
* **FedBN** (Li et al. 2021, "FedBN: federated learning on non-IID features
  via local batch normalization"): every batch-normalization layer stays on
  the client -- its scale and offset (never sent) and its moving mean and
  variance (each client's own, not the server's, at every client start);
  the rest is averaged.  For models with ``BatchNormalization`` layers (a
  user's own; no preset model has one).
* **Ditto** (Li et al. 2021, "Ditto: fair and robust federated learning through
  personalization"): the global model trains by plain FedAvg; a sampled client
  then also trains its *personal model* ``v`` for the same local steps on the
  same batches, minimising ``f(v) + lambda / 2 * ||v - w||^2`` with ``w`` the
  round's global model (gradient ``grad f(v) + lambda * (v - w)``), with its
  own fresh client optimizer.  ``v`` starts as the initial global model and
  is kept by the client.  ``lambda = 0`` is local training alone; a large
  ``lambda`` pulls every ``v`` to the global model.

A client's personal state lives in :attr:`PersonalizedFedAvg.personal` (client id
-> arrays) and is checkpointed beside the engine state (``personal_state_<round>.npz``,
written atomically before ``engine_state.npz``; older rounds' files are removed
after it), so a killed run resumes with every client's own model of the saved round.
After training, :meth:`PersonalizedFedAvg.evaluate_personal` scores each
client's own model on its personal-test clips (``PersonalizedTask.personal_test``,
from :func:`tff_ser.personalization.personal_split`), beside the global model
on the same clips.  Only the tf engine trains these (:data:`PERSONALIZING_ENGINES`):
the fast batched engine and TFF's process hold no per-client state.
"""
from __future__ import annotations

import dataclasses
import io
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from tff_ser.engines.personal_spec import (HEAD_METHODS, LOCAL_METHODS,  # noqa: F401
                                             METHODS, PersonalSpec)
from tff_ser.engines.plain_tf import PlainTFFedAvg
from tff_ser.task import Task


@dataclasses.dataclass
class PersonalizedTask(Task):
    """A :class:`Task` trained with personalization: its spec and each client's personal-test clips.

    Its training clients hold only their personal-train clips (see
    :func:`tff_ser.personalization.personalized_task`).
    """

    personal: Optional[PersonalSpec] = None
    personal_test: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        if self.personal is None:
            raise ValueError("a PersonalizedTask needs personal=PersonalSpec(...)")
        for cid, rows in self.personal_test.items():
            if cid not in self.train_clients:
                raise ValueError(f"personal-test clips of {cid!r}, which is no training client")
            if set(np.asarray(rows).tolist()) & set(np.asarray(self.train_clients[cid]).tolist()):
                raise ValueError(f"client {cid!r}: personal-test clips are among its training clips")


def _batch_norm_layers(model) -> list:
    import keras
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


def _weighted_layers(model) -> list:
    return [layer for layer in model.layers if layer.trainable_weights]


class PersonalizedFedAvg(PlainTFFedAvg):
    """FedAvg rounds of ``task.model`` with each client's own head (FedPer) or model (Ditto)."""

    def __init__(self, task: Task, config):
        self.spec: PersonalSpec = task.personal
        super().__init__(task, config)
        variables = self.train_variables
        if self.spec.method in HEAD_METHODS:
            layers = _weighted_layers(self.model)
            if self.spec.personal_layers >= len(layers):
                raise ValueError(
                    f"personal_layers={self.spec.personal_layers} leaves no shared layer: "
                    f"the model has {len(layers)} layers with weights")
            head = {id(w) for layer in layers[-self.spec.personal_layers:]
                    for w in layer.trainable_weights}
            self._personal_mask = [id(v) in head for v in variables]
        elif self.spec.method == "fedbn":
            bn = _batch_norm_layers(self.model)
            if not bn:
                raise ValueError(f"FedBN keeps batch-normalization layers on the clients, and "
                                 f"model {task.model_def.name!r} has none; use fedper, fedrep "
                                 "or ditto, or a model with keras.layers.BatchNormalization")
            local = {id(w) for layer in bn for w in layer.trainable_weights}
            self._personal_mask = [id(v) in local for v in variables]
        else:
            self._personal_mask = [True] * len(variables)
        # FedBN: the batch-norm moving statistics are each client's own too
        local_nt = {id(w) for layer in _batch_norm_layers(self.model)
                    for w in layer.non_trainable_weights} if self.spec.method == "fedbn" else set()
        self._personal_nt_mask = [id(v) in local_nt for v in self.model.non_trainable_variables]
        self.personal_nt_vars = [v for v, p in zip(self.model.non_trainable_variables,
                                                   self._personal_nt_mask) if p]
        self.personal_nt_in = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                           name="personal_nt_in") for v in self.personal_nt_vars]
        self.personal_vars = [v for v, p in zip(variables, self._personal_mask) if p]
        self.personal_in = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                        name="personal_in") for v in self.personal_vars]
        #: client id -> that client's own arrays (FedPer: its head; Ditto: its whole model)
        self.personal: Dict[str, List[np.ndarray]] = {}
        self._ditto_pass = False
        self._personal_fn = tf.function(self._personal_update, input_signature=[
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.float32)])
        # FedRep: 1 where a local step may move a variable (the head pass, then the body pass)
        self._grad_mask = [tf.Variable(1.0, trainable=False, name="grad_mask")
                           for _ in variables]
        self._head_fn = tf.function(self._head_update, input_signature=[
            tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.float32)])

    # ------------------------------------------------------------ graph parts

    def _client_start(self) -> None:
        if self.spec.method in LOCAL_METHODS:
            for var, mine in zip(self.personal_vars + self.personal_nt_vars,
                                 self.personal_in + self.personal_nt_in):
                var.assign(mine)

    def _shared(self) -> List[bool]:
        if self.spec.method in LOCAL_METHODS:
            return [not p for p in self._personal_mask]
        return super()._shared()

    def _proximal(self, grads, variables):
        if self.spec.method == "fedrep":
            grads = super()._proximal(grads, variables)
            return [g * m for g, m in zip(grads, self._grad_mask)]
        if not self._ditto_pass:
            return super()._proximal(grads, variables)
        lam = tf.constant(self.spec.ditto_lambda, tf.float32)
        return [g + lam * (w - s) for g, s, w in zip(grads, self.server_trainable, variables)]

    def _personal_update(self, full_rows, last_rows, client_lr):
        """Ditto: train the client's own model from ``personal_in``, toward the server's."""
        self._ditto_pass = True  # while this function is traced
        try:
            for var, mine in zip(self.train_variables, self.personal_in):
                var.assign(mine)
            self._local_steps(full_rows, last_rows, client_lr)
        finally:
            self._ditto_pass = False

    def _local_steps(self, full_rows, last_rows, client_lr):
        """A fresh client optimizer, then the round's local steps (no update is sent)."""
        self._fresh_client_optimizer()
        steps = tf.shape(full_rows)[0]
        for k in tf.range(steps):
            self._step(full_rows[k], k + 1, client_lr)
        if tf.shape(last_rows)[0] > 0:
            self._step(last_rows, steps + 1, client_lr)

    def _head_update(self, full_rows, last_rows, client_lr):
        """FedRep's first pass: the server's body and the client's head, only the head trained."""
        for var, server in zip(self.train_variables + self.model.non_trainable_variables,
                               self.server_trainable + self.server_non_trainable):
            var.assign(server)
        self._client_start()
        self._local_steps(full_rows, last_rows, client_lr)

    def _train_only(self, head: bool) -> None:
        for mask, personal in zip(self._grad_mask, self._personal_mask):
            mask.assign(1.0 if personal == head else 0.0)

    # ------------------------------------------------------------ state

    def _initial_personal(self) -> List[np.ndarray]:
        return [v.numpy() for v, p in zip(self.server_trainable, self._personal_mask) if p] + \
            [v.numpy() for v, p in zip(self.server_non_trainable, self._personal_nt_mask) if p]

    def _own(self, cid: str) -> List[np.ndarray]:
        if cid not in self.personal:
            self.personal[cid] = self._initial_personal()
        return self.personal[cid]

    def start_personal(self) -> None:
        """Every client starts from the initial global model's personal part."""
        self.personal = {}

    def save_personal(self, path: str) -> None:
        from tff_ser.rundir import atomic_write_bytes
        arrays = {f"{cid}\x1f{i}": a for cid, values in self.personal.items()
                  for i, a in enumerate(values)}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())

    def load_personal(self, path: str) -> None:
        personal: Dict[str, Dict[int, np.ndarray]] = {}
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                cid, i = key.split("\x1f")
                personal.setdefault(cid, {})[int(i)] = data[key]
        self.personal = {cid: [v[i] for i in sorted(v)] for cid, v in personal.items()}

    # ------------------------------------------------------------ one round

    def warm_up(self) -> None:
        if self._traced:
            return
        super().warm_up()
        if self.spec.method == "ditto":
            self._personal_fn.get_concrete_function()
        if self.spec.method == "fedrep":
            self._head_fn.get_concrete_function()

    def _run_client(self, cid, rows, client_lr, seed) -> None:
        # the tf engine's client update, with the client's own part put in before it
        # (FedPer) or trained after it (Ditto), and read back
        bs = self.config.batch_size
        full = len(rows) // bs
        full_rows, last_rows = rows[:full * bs].reshape(full, bs), rows[full * bs:]
        if self.spec.method in ("fedper", "fedbn"):
            for var, value in zip(self.personal_in + self.personal_nt_in, self._own(cid)):
                var.assign(value)
            self._client_fn(full_rows, last_rows, client_lr, seed)
            self.personal[cid] = [v.numpy() for v in self.personal_vars + self.personal_nt_vars]
        elif self.spec.method == "fedrep":  # the head with the body frozen, then the body
            for var, value in zip(self.personal_in, self._own(cid)):
                var.assign(value)
            self._train_only(head=True)
            self._head_fn(full_rows, last_rows, client_lr)
            for mine, var in zip(self.personal_in, self.personal_vars):
                mine.assign(var)
            self._train_only(head=False)
            self._client_fn(full_rows, last_rows, client_lr, seed)
            self.personal[cid] = [v.numpy() for v in self.personal_in]
        else:  # ditto: the global update, then the personal model's steps
            self._client_fn(full_rows, last_rows, client_lr, seed)
            for var, value in zip(self.personal_in, self._own(cid)):
                var.assign(value)
            self._personal_fn(full_rows, last_rows, client_lr)
            self.personal[cid] = [v.numpy() for v in self.train_variables]

    # ------------------------------------------------------------ evaluation

    def personal_weights(self, cid: str):
        """``(trainable, non_trainable)`` of client ``cid``'s own model."""
        trainable = [v.numpy() for v in self.server_trainable]
        own = iter(self._own(cid))
        trainable = [next(own) if p else w for w, p in zip(trainable, self._personal_mask)]
        non_trainable = [next(own) if p else v.numpy()
                         for v, p in zip(self.server_non_trainable, self._personal_nt_mask)]
        return trainable, non_trainable

    def evaluate_personal(self) -> List[dict]:
        """Each client with personal-test clips: its own model and the global one on them.

        ``distance_to_global``: ``||own - global|| / ||global||`` over the
        trainable weights (how far the client's model is from the global one).
        """
        from tff_ser.metrics import classification_metrics
        task = self.task
        model = task.model_def.build(task.input_shape, task.num_classes, seed=0)

        def score(weights, rows):
            trainable, non_trainable = weights
            for var, value in zip(model.trainable_weights + model.non_trainable_weights,
                                  list(trainable) + list(non_trainable)):
                var.assign(value)
            pred = np.argmax(np.asarray(model(task.x[rows], training=False)), axis=1)
            m = classification_metrics(task.y[rows], pred, num_classes=task.num_classes)
            return m["accuracy"], m["balanced_accuracy"]

        glob = ([v.numpy() for v in self.server_trainable],
                [v.numpy() for v in self.server_non_trainable])
        out = []
        for cid in sorted(task.personal_test):
            rows = np.asarray(task.personal_test[cid])
            g_acc, g_uar = score(glob, rows)
            own = self.personal_weights(cid)
            p_acc, p_uar = score(own, rows)
            gap = np.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(own[0], glob[0])))
            norm = np.sqrt(sum(float(np.sum(b ** 2)) for b in glob[0]))
            out.append({"client": cid, "n_scored": int(len(rows)),
                        "sampled": cid in self.personal, "global_accuracy": g_acc,
                        "global_uar": g_uar, "personal_accuracy": p_acc, "personal_uar": p_uar,
                        "distance_to_global": gap / norm if norm else float("nan")})
        return out


