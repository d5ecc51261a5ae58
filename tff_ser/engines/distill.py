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

import tensorflow as tf

from tff_ser.distillation import DistillationStudent
from tff_ser.engines.plain_tf import PlainTFFedAvg


class DistillationFedAvg(PlainTFFedAvg):
    """FedAvg rounds of ``task.model`` (the student) distilling from ``task.teacher``."""

    def _extra_trainable(self) -> list:
        task = self.task
        self.student = DistillationStudent(self.model, task)
        self.teacher_probs = tf.Variable(task.teacher.probabilities, trainable=False,
                                         name="teacher_probabilities")
        self.teacher_feats = (tf.Variable(task.teacher.embeddings, trainable=False,
                                          name="teacher_embeddings")
                              if task.kd.uses_features else None)
        return self.student.extra_variables

    def extra_initial(self, seed: int) -> list:
        """Initial values of :meth:`_extra_trainable` (the projection's, if any)."""
        return self.student.extra_initial(seed)

    def _batch_loss(self, rows, labels):
        teacher_features = (tf.gather(self.teacher_feats, rows)
                            if self.teacher_feats is not None else None)
        return self.student.loss(tf.gather(self.x, rows), labels,
                                 tf.gather(self.teacher_probs, rows), teacher_features)
