"""Two streams into one prediction: decision-level and feature-level fusion of trained branches.

Paper 003 (EmotionNAS, section 2.3) fuses its two branches at the decision
level: "we take the output probabilities of different features as the inputs,
followed with a multi-layer perception to generate final results".  Here a
*branch* is any trained Keras model of a task (the searched spectrogram CNN,
the recurrent stream, ...), and fusion is a new :class:`~tff_ser.task.Task` on
the same clips, labels and clients whose features are

* ``"decision"`` -- the branches' class probabilities, concatenated (paper 003:
  2 branches x 4 classes = 8 inputs to its (8, 8), (8, 4), (4, 4) perceptron);
* ``"feature"`` -- the branches' embeddings (a named layer, default the one
  before the output layer), concatenated and standardized with the training
  clients' statistics, for one head: feature-level fusion, for comparison.

The fused task trains like any other (``train_federated``: every client scores
its own clips with the broadcast branches and trains the fusion model on
them; or ``train_centralized``).  The branches score the training clips they
were trained on, so their probabilities there are more confident than on new
speakers -- as in paper 003, where the fusion MLP is trained on the training
set too.  :func:`tff_ser.features.pipeline.common_clips` lines up two feature
sets whose clip lists differ (a clip one kind could not compute).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from tff_ser.distillation import KDConfig, TeacherOutputs, teacher_outputs
from tff_ser.task import Task

#: Fusion levels of :func:`fusion_task`.
FUSIONS = ("decision", "feature")


def branch_outputs(model, x: np.ndarray, *, layer=None, batch_size: int = 256,
                   name=None) -> TeacherOutputs:
    """A trained branch's class probabilities and ``layer`` embeddings on every clip of ``x``
    (default: the layer before the output layer -- a DARTS network's pooling, the
    recurrent stream's ``embedding_layer``)."""
    layer = model.layers[-2].name if layer is None else layer
    return teacher_outputs(model, x, KDConfig(feature_weight=1.0, teacher_layer=layer),
                           batch_size=batch_size, name=name)


def fusion_task(task: Task, branches: Sequence[TeacherOutputs], model, *,
                level: str = "decision") -> Task:
    """``task``'s clips, labels and clients with the branches' fused outputs as features.

    Parameters
    ----------
    task : Task
        The clients and labels (any of the branches' tasks: they share clips and clients).
    branches : sequence of TeacherOutputs
        :func:`branch_outputs` of each trained branch, on ``task.x``'s clips, row for row.
    model : str or KerasModel
        The fusion model (paper 003's decision-level perceptron is the preset
        ``fusion_mlp``; its input is ``branches x classes`` wide).
    level : {"decision", "feature"}
    """
    if level not in FUSIONS:
        raise ValueError(f"fusion level must be one of {FUSIONS}, got {level!r}")
    if len(branches) < 2:
        raise ValueError(f"fusion needs at least two branches, got {len(branches)}")
    for b in branches:
        if len(b.probabilities) != len(task.y):
            raise ValueError(f"branch {b.name!r} scored {len(b.probabilities)} clips but the task "
                             f"has {len(task.y)}: score every branch on the same clips "
                             "(tff_ser.features.pipeline.common_clips lines feature sets up)")
        if b.probabilities.shape[1] != task.num_classes:
            raise ValueError(f"branch {b.name!r} outputs {b.probabilities.shape[1]} classes, the "
                             f"task has {task.num_classes}")
    if level == "decision":
        x = np.concatenate([b.probabilities for b in branches], axis=1)
    else:
        from tff_ser.features.normalize import Standardizer
        missing = [b.name for b in branches if b.embeddings is None]
        if missing:
            raise ValueError(f"feature-level fusion needs each branch's embeddings; {missing} "
                             "have none (compute them with branch_outputs(..., layer=...))")
        x = np.concatenate([b.embeddings for b in branches], axis=1)
        x = Standardizer().fit(x[task.train_indices]).transform(x)
    info = {**task.info, "fusion": {"level": level, "branches": [b.name for b in branches]}}
    return dataclasses.replace(task, model=model, x=x.astype(np.float32), info=info,
                               normalizer=None)
