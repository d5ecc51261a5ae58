"""Scoring a model on a task's held-out clients: pooled metrics, per-client accuracy, predictions.

Both trainers (federated and centralized) score their final model here, so
their numbers are computed the same way: pooled metrics over every held-out
clip (:func:`tff_ser.metrics.classification_metrics`), the mean of the
per-client (per-speaker) accuracies -- paper 000's objective -- and each
clip's prediction, to pool over folds or seeds.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from tff_ser.task import Task

_EVAL_MODELS: Dict[tuple, object] = {}


def _eval_model(model, input_shape: tuple, num_classes: int):
    # One Keras model per model value, reused: rebuilding a model (and its
    # predict function) for every evaluation retraces TF graphs each time.
    # Keyed by the KerasModel object, never by its name, so another model
    # under the same name cannot reuse it.
    from tff_ser.models import as_model
    model_def = as_model(model)
    key = (model_def, tuple(input_shape), num_classes)
    if key not in _EVAL_MODELS:
        _EVAL_MODELS[key] = model_def.build(tuple(input_shape), num_classes)
    return _EVAL_MODELS[key]


def evaluate_weights(task: Task, weights, *, batch_size: int = 256) -> dict:
    """Centralized evaluation of model weights on the validation clients.

    Returns pooled metrics over all validation clips (``pooled``), the
    mean of per-client accuracies (paper 000's objective, ``client_mean_accuracy``)
    and the per-client accuracies.
    """
    try:
        return _evaluate_cached(task, weights, batch_size)
    except ValueError as exc:
        # Keras invalidates models made before a later tf.compat.v1 graph built
        # another model (TFF traces each new process's model_fn in such a
        # graph): "Your Layer or Model is in an invalid state".  Measured: two
        # resumed TFF runs of different configs in one process.  Rebuild once.
        if "invalid state" not in str(exc):
            raise
        _EVAL_MODELS.pop((task.model_def, tuple(task.input_shape), task.num_classes), None)
        return _evaluate_cached(task, weights, batch_size)


def _evaluate_cached(task: Task, weights, batch_size: int) -> dict:
    model = _eval_model(task.model_def, task.input_shape, task.num_classes)
    trainable, non_trainable = weights
    for var, value in zip(model.trainable_weights, trainable):
        var.assign(value)
    for var, value in zip(model.non_trainable_weights, non_trainable):
        var.assign(value)
    return evaluate_keras(task, model, batch_size=batch_size)


def predict_classes(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Argmax class of ``model`` on ``x``, in inference mode, batch by batch."""
    out = [np.argmax(np.asarray(model(x[i:i + batch_size], training=False)), axis=-1)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def evaluate_keras(task: Task, model, *, batch_size: int = 256) -> dict:
    """Evaluate a Keras model on the task's validation clients (see :func:`evaluate_weights`)."""
    from tff_ser.metrics import classification_metrics
    idx = task.val_indices
    if len(idx) == 0:
        return {}
    pred = predict_classes(model, task.x[idx], batch_size=batch_size)
    pooled = classification_metrics(task.y[idx], pred, num_classes=task.num_classes,
                                    class_names=list(task.class_names))
    pos = {int(i): k for k, i in enumerate(idx)}
    per_client = {}
    for cid, cidx in sorted(task.val_clients.items()):
        rows = [pos[int(i)] for i in cidx]
        per_client[cid] = float(np.mean(pred[rows] == task.y[cidx]))
    return {"pooled": pooled,
            "client_mean_accuracy": float(np.mean(list(per_client.values()))),
            "per_client_accuracy": per_client,
            # per clip, to pool over folds or seeds: row of task.x, true and predicted class
            "predictions": {"index": [int(i) for i in idx], "true": task.y[idx].tolist(),
                            "predicted": np.asarray(pred).astype(int).tolist()}}
