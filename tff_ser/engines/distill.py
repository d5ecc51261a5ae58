"""Paper 002's distillation on the tf engine: FedAvg of a student whose local loss is the KD loss.

:class:`DistillationFedAvg` is :class:`~tff_ser.engines.plain_tf.PlainTFFedAvg`
with one change: a local step minimises :func:`tff_ser.distillation.kd_loss`
(the student's own loss and regularization, the KL divergence to the
teacher's softened probabilities, and the embedding MSE) instead of the
student's own loss.  The teacher's outputs on every clip sit in two
variables beside the features and are gathered by the same rows as the batch
(each client reads only its own clips' teacher outputs).  Everything else --
sampling, client order, fresh client optimizer, weighted mean, server
optimizer, aggregators, non-finite rejection, checkpoints -- is the tf
engine's, so ``alpha = 0`` with no feature loss trains exactly the
student's FedAvg (``tests/integration/test_distillation.py``).  When the embedding sizes
differ, the student -> teacher projection is trained and averaged with the
student; :meth:`tff_ser.engines.plain_tf.PlainTFEngine.weights` returns the
student's weights alone.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tff_ser.distillation import embedding_model, kd_loss, projection_initial
from tff_ser.engines.plain_tf import PlainTFFedAvg


class DistillationFedAvg(PlainTFFedAvg):
    """FedAvg rounds of ``task.model`` (the student) distilling from ``task.teacher``."""

    def _extra_trainable(self) -> list:
        task = self.task
        self.kd = task.kd
        self.teacher_probs = tf.Variable(task.teacher.probabilities, trainable=False,
                                         name="teacher_probabilities")
        self.view, self.projection, self.teacher_feats = None, None, None
        if not self.kd.uses_features:
            return []
        import keras
        self.view = embedding_model(self.model, self.kd.student_layer)
        self.student_size = int(np.prod(self.view.outputs[1].shape[1:]))
        self.teacher_size = int(task.teacher.embeddings.shape[1])
        self.teacher_feats = tf.Variable(task.teacher.embeddings, trainable=False,
                                         name="teacher_embeddings")
        if self.student_size == self.teacher_size:
            return []
        self.projection = keras.layers.Dense(self.teacher_size, name="kd_projection")
        self.projection.build((None, self.student_size))
        return list(self.projection.trainable_variables)

    def extra_initial(self, seed: int) -> list:
        """Initial values of :meth:`_extra_trainable` (the projection's, if any)."""
        if self.projection is None:
            return []
        return projection_initial(self.student_size, self.teacher_size, seed)

    def _batch_loss(self, rows, labels):
        model = self.model
        inputs = tf.gather(self.x, rows)
        features = teacher_features = None
        if self.view is not None:
            predictions, features = self.view(inputs, training=True)
            features = tf.reshape(features, [tf.shape(features)[0], -1])
            if self.projection is not None:
                features = self.projection(features)
            teacher_features = tf.gather(self.teacher_feats, rows)
        else:
            predictions = model(inputs, training=True)
        loss = kd_loss(labels, predictions, tf.gather(self.teacher_probs, rows), self.kd,
                       ce=self.loss_fn(labels, predictions), student_features=features,
                       teacher_features=teacher_features)
        if model.losses:
            loss = loss + tf.add_n(list(model.losses))
        return predictions, loss
