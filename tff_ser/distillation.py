"""Knowledge distillation (paper 002, Nguyen et al., section II.C): a light student learns from a frozen teacher.

The student's loss is paper 002's Eq. 6,

    L_total  = L_logits + L_feature
    L_logits = alpha * L_KL + (1 - alpha) * L_CE                         (Eq. 4)
    L_KL     = mean_k KL(P_k^t || P_k^s),  P_k = softmax(Z_k / T)         (Eqs. 1-2)
    L_feature = mean_k ||f_k^t - f_k^s||^2 / h                            (Eq. 5)

with ``T = 2`` and ``alpha = 0.5`` (the paper's values, from Hinton et al.).
Three choices the paper leaves open, made here and named in :class:`KDConfig`:

* **Logits.**  The package's models end in a softmax, so ``Z_k`` is taken as
  ``log p_k``: ``softmax(log p / T)`` equals ``softmax(z / T)`` because the
  two differ by a per-clip constant.  ``L_KL`` is *not* multiplied by
  ``T**2`` (Hinton's gradient rescaling): paper 002's Eq. 4 has no such factor.
* **L_CE** is the student's own loss (default sparse categorical
  cross-entropy, as Eq. 3), plus its regularization losses; so with
  ``alpha = 0`` and ``feature_weight = 0`` distillation *is* ordinary training
  of the student (``tests/integration/test_distillation.py`` checks it bit for bit on the
  federated engine).
* **Embeddings.**  ``f`` is the output of a named layer of each model
  (default ``"embedding_layer"``, the layer before the softmax in every
  preset).  Paper 002 fixes the student's embedding size to the teacher's;
  where the sizes differ a learned linear projection (``Dense(h_teacher)``,
  no activation, Glorot-uniform from the run's seed, zero bias) maps the
  student's embedding to the teacher's size.  It is trained with the student
  (and averaged by the server in federated runs), and dropped afterwards: the
  deployed student is the model alone.  ``feature_weight`` scales
  ``L_feature`` (1.0: Eq. 6).

The teacher is frozen, so its outputs on a clip never change: they are
computed once (:func:`teacher_outputs`, inference mode) and carried by a
:class:`DistillationTask`.  Federated, this is the paper's system with the
teacher broadcast once: each client scores its own clips with it and keeps the
scores; only the student's weights travel each round.  The tf engine trains a
:class:`DistillationTask` (:mod:`tff_ser.engines.distill`); the other
engines refuse it with that reason.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from tff_ser.task import Task

#: Name of the embedding layer in every preset model (the layer before the softmax).
EMBEDDING_LAYER = "embedding_layer"


@dataclasses.dataclass(frozen=True)
class KDConfig:
    """Paper 002's distillation loss (Eqs. 1-6).

    Parameters
    ----------
    alpha : float
        Weight of ``L_KL`` in ``L_logits`` (Eq. 4); ``1 - alpha`` weighs ``L_CE``.  0.5 in the paper.
    temperature : float
        ``T`` of Eq. 1, softening both models' probabilities.  2 in the paper.
    feature_weight : float
        Weight of ``L_feature`` (Eq. 5); 1.0 is Eq. 6, 0.0 distils logits only.
    teacher_layer, student_layer : str
        The layers whose outputs are the embeddings ``f^t`` and ``f^s``.
    """

    alpha: float = 0.5
    temperature: float = 2.0
    feature_weight: float = 1.0
    teacher_layer: str = EMBEDDING_LAYER
    student_layer: str = EMBEDDING_LAYER

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha weighs L_KL against L_CE and must be in [0, 1]; "
                             f"got {self.alpha}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 (paper 002: T = 2); got {self.temperature}")
        if not self.feature_weight >= 0:
            raise ValueError(f"feature_weight must be >= 0; got {self.feature_weight}")

    @property
    def uses_features(self) -> bool:
        return self.feature_weight > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class TeacherOutputs:
    """The frozen teacher's probabilities and embeddings on every clip of a task.

    ``probabilities``: (n_clips, n_classes); ``embeddings``: (n_clips, h) or
    ``None`` (logits-only distillation).  Row ``i`` belongs to clip ``i`` of
    the task's ``x``.
    """

    probabilities: np.ndarray
    embeddings: Optional[np.ndarray] = None
    name: str = "teacher"

    def __post_init__(self):
        self.probabilities = np.asarray(self.probabilities, np.float32)
        if self.probabilities.ndim != 2:
            raise ValueError(f"teacher probabilities must be (n_clips, n_classes); got shape "
                             f"{self.probabilities.shape}")
        if self.embeddings is not None:
            self.embeddings = np.asarray(self.embeddings, np.float32).reshape(
                len(self.embeddings), -1)
            if len(self.embeddings) != len(self.probabilities):
                raise ValueError(f"the teacher has {len(self.probabilities)} probability rows "
                                 f"but {len(self.embeddings)} embedding rows")


def embedding_model(model, layer: str):
    """``model`` seen with two outputs: its own output and the output of layer ``layer``.

    The two share every weight with ``model``, in the same order.
    """
    import keras
    try:
        inner = model.get_layer(layer)
    except ValueError:
        names = [lay.name for lay in model.layers]
        raise ValueError(f"model {model.name!r} has no layer {layer!r} to take the embedding "
                         f"from; its layers: {names}. Name one in KDConfig(teacher_layer=..., "
                         "student_layer=...)") from None
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [model.outputs[0], inner.output], name=f"{model.name}_kd")


def teacher_outputs(teacher, x: np.ndarray, kd: KDConfig = KDConfig(), *,
                    batch_size: int = 256, name: Optional[str] = None) -> TeacherOutputs:
    """Score every clip of ``x`` with the trained ``teacher`` (a Keras model), in inference mode."""
    if kd.uses_features:
        view = embedding_model(teacher, kd.teacher_layer)
        probs, feats = [], []
        for start in range(0, len(x), batch_size):
            p, f = view(x[start:start + batch_size], training=False)
            probs.append(np.asarray(p))
            feats.append(np.asarray(f).reshape(len(p), -1))
        return TeacherOutputs(np.concatenate(probs), np.concatenate(feats),
                              name or teacher.name)
    probs = [np.asarray(teacher(x[s:s + batch_size], training=False))
             for s in range(0, len(x), batch_size)]
    return TeacherOutputs(np.concatenate(probs), None, name or teacher.name)


@dataclasses.dataclass
class DistillationTask(Task):
    """A :class:`Task` whose student learns from a frozen teacher's outputs.

    ``teacher`` holds the teacher's outputs on every clip of ``x`` (row for
    row); ``kd`` the loss.  ``model`` is the student.  Train it with
    :func:`tff_ser.federated.train_federated` (the tf engine) or
    :func:`tff_ser.centralized.train_centralized`.
    """

    teacher: Optional[TeacherOutputs] = None
    kd: KDConfig = KDConfig()

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.teacher, TeacherOutputs):
            raise TypeError("a DistillationTask needs teacher=TeacherOutputs(...) "
                            "(tff_ser.distillation.teacher_outputs(trained_teacher, task.x))")
        if len(self.teacher.probabilities) != len(self.x):
            raise ValueError(f"the teacher scored {len(self.teacher.probabilities)} clips but "
                             f"the task has {len(self.x)}: compute teacher_outputs on this "
                             "task's x")
        if self.teacher.probabilities.shape[1] != self.num_classes:
            raise ValueError(f"the teacher outputs {self.teacher.probabilities.shape[1]} classes "
                             f"but the task has {self.num_classes}")
        if self.kd.uses_features and self.teacher.embeddings is None:
            raise ValueError("feature_weight > 0 needs the teacher's embeddings; compute "
                             "teacher_outputs with the same KDConfig, or set feature_weight=0")
        self.info = {**self.info, "distillation": {**self.kd.to_dict(),
                                                   "teacher": self.teacher.name}}


def distillation_task(task: Task, student, teacher: TeacherOutputs,
                      kd: KDConfig = KDConfig()) -> DistillationTask:
    """``task``'s clips and clients, with ``student`` learning from ``teacher``."""
    return DistillationTask(model=student, x=task.x, y=task.y,
                            train_clients=task.train_clients, val_clients=task.val_clients,
                            class_names=task.class_names, info=dict(task.info),
                            normalizer=task.normalizer, teacher=teacher, kd=kd)


def kd_loss(labels, student_probs, teacher_probs, kd: KDConfig, *, ce=None,
            student_features=None, teacher_features=None):
    """Paper 002's L_total (Eq. 6) of a batch, as a scalar tensor.

    ``ce``: the student's own loss value on the batch (``L_CE``); when
    ``None``, sparse categorical cross-entropy of ``student_probs``.
    """
    import tensorflow as tf
    eps = 1e-7
    student_probs = tf.convert_to_tensor(student_probs, tf.float32)
    teacher_probs = tf.convert_to_tensor(teacher_probs, tf.float32)
    if ce is None:
        picked = tf.gather(student_probs, tf.cast(labels, tf.int32), batch_dims=1)
        ce = -tf.reduce_mean(tf.math.log(tf.clip_by_value(picked, eps, 1.0)))
    total = (1.0 - kd.alpha) * ce
    if kd.alpha > 0:
        t = kd.temperature
        log_ps = tf.nn.log_softmax(tf.math.log(tf.clip_by_value(student_probs, eps, 1.0)) / t)
        log_pt = tf.nn.log_softmax(tf.math.log(tf.clip_by_value(teacher_probs, eps, 1.0)) / t)
        kl = tf.reduce_mean(tf.reduce_sum(tf.exp(log_pt) * (log_pt - log_ps), axis=-1))
        total = total + kd.alpha * kl
    if kd.uses_features:
        fs = tf.reshape(tf.convert_to_tensor(student_features, tf.float32),
                        [tf.shape(student_probs)[0], -1])
        ft = tf.reshape(tf.convert_to_tensor(teacher_features, tf.float32), tf.shape(fs))
        total = total + kd.feature_weight * tf.reduce_mean(tf.square(ft - fs))
    return total


def projection_initial(student_size: int, teacher_size: int, seed: int):
    """Initial kernel and bias of the student -> teacher embedding projection (Glorot uniform, 0)."""
    limit = np.sqrt(6.0 / (student_size + teacher_size))
    rng = np.random.default_rng([int(seed), 0x4B44])
    kernel = rng.uniform(-limit, limit, (student_size, teacher_size)).astype(np.float32)
    return [kernel, np.zeros(teacher_size, np.float32)]


class DistillationStudent:
    """The student as paper 002's loss sees it: its predictions, its (projected) embedding, its loss.

    Shared by the federated engine (:mod:`tff_ser.engines.distill`) and the
    centralized :class:`DistilledFit`.  With the feature loss it views
    ``model`` with its embedding layer as a second output and, when the
    student's embedding size differs from the teacher's, adds the
    ``Dense(h_teacher)`` projection (:attr:`extra_variables`, initial values
    :meth:`extra_initial`).
    """

    def __init__(self, model, task: "DistillationTask"):
        self.model, self.kd = model, task.kd
        self.loss_fn = task.model_def.make_loss()
        self.view = self.projection = None
        self.student_size = self.teacher_size = None
        if self.kd.uses_features:
            import keras
            self.view = embedding_model(model, self.kd.student_layer)
            self.student_size = int(np.prod(self.view.outputs[1].shape[1:]))
            self.teacher_size = int(task.teacher.embeddings.shape[1])
            if self.student_size != self.teacher_size:
                self.projection = keras.layers.Dense(self.teacher_size, name="kd_projection")
                self.projection.build((None, self.student_size))

    @property
    def extra_variables(self) -> list:
        """Trained beside the model's own weights: the projection's, if any."""
        return list(self.projection.trainable_variables) if self.projection is not None else []

    def extra_initial(self, seed: int) -> list:
        """Initial values of :attr:`extra_variables`."""
        if self.projection is None:
            return []
        return projection_initial(self.student_size, self.teacher_size, seed)

    def loss(self, x, labels, teacher_probs, teacher_features=None):
        """``(predictions, L_total + the model's regularization losses)`` on the batch ``x``."""
        import tensorflow as tf
        features = None
        if self.view is not None:
            predictions, features = self.view(x, training=True)
            features = tf.reshape(features, [tf.shape(features)[0], -1])
            if self.projection is not None:
                features = self.projection(features)
        else:
            predictions = self.model(x, training=True)
        loss = kd_loss(labels, predictions, teacher_probs, self.kd,
                       ce=self.loss_fn(labels, predictions), student_features=features,
                       teacher_features=teacher_features)
        if self.model.losses:
            loss = loss + tf.add_n(list(self.model.losses))
        return predictions, loss


class DistilledFit:
    """One centralized epoch of a :class:`DistillationTask`'s student: paper 002's loss, minibatch by minibatch.

    The centralized counterpart of :mod:`tff_ser.engines.distill`: the
    student (``model``, built and seeded by the caller, seen through
    :class:`DistillationStudent`, its projection seeded as there), and the
    caller's Keras optimizer, kept across epochs as ``model.fit`` keeps it.
    ``__call__(rows, batch_size)`` trains on ``task.x[rows]`` in that order
    and returns the epoch's mean loss and accuracy.
    """

    def __init__(self, task: DistillationTask, model, optimizer, seed: int = 0):
        import tensorflow as tf
        self.task, self.optimizer = task, optimizer
        self.student = DistillationStudent(model, task)
        for var, value in zip(self.student.extra_variables, self.student.extra_initial(seed)):
            var.assign(value)
        self.variables = list(model.trainable_variables) + self.student.extra_variables
        self._step = tf.function(self._train_step)

    def _train_step(self, x, y, teacher_probs, teacher_features):
        import tensorflow as tf
        with tf.GradientTape() as tape:
            predictions, loss = self.student.loss(
                x, y, teacher_probs, teacher_features if self.student.view is not None else None)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        hits = tf.reduce_sum(tf.cast(tf.equal(
            tf.argmax(predictions, axis=-1, output_type=tf.int32), tf.cast(y, tf.int32)),
            tf.float32))
        return loss, hits

    def __call__(self, rows: np.ndarray, batch_size: int):
        task, teacher = self.task, self.task.teacher
        feats = teacher.embeddings if task.kd.uses_features else None
        loss_sum = hits = 0.0
        for start in range(0, len(rows), batch_size):
            r = rows[start:start + batch_size]
            loss, h = self._step(task.x[r], task.y[r], teacher.probabilities[r],
                                 feats[r] if feats is not None else np.zeros((len(r), 0),
                                                                             np.float32))
            loss_sum += float(loss) * len(r)
            hits += float(h)
        return loss_sum / len(rows), hits / len(rows)
