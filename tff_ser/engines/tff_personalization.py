"""Local fine-tuning evaluated by TFF's own personalization computation (reference stack).

TFF 0.87 ships ``tff.learning.algorithms.build_personalization_eval_computation``:
the server broadcasts the global weights, each client runs personalization
strategies (``personalize_fn``) on its own train data and reports metrics on its
own test data, beside the global model's (``baseline_evaluate_fn``).
:func:`tff_finetune_clients` runs tff_ser's local fine-tuning
(:func:`tff_ser.personalization.finetune_clients`) as such a strategy, so the
two can be checked against each other on the same clients
(``tests/integration/test_personalization.py``).

The strategy is the same fine-tuning: a fresh client Keras Adam (``lr``),
``steps`` epochs over the client's personal-train clips in minibatches of
``batch_size`` (in index order: the comparison runs ``finetune_clients`` with
``shuffle=False``, since Keras' ``fit`` shuffle and a ``tf.data`` shuffle draw
different orders), the head (the model's last layer) or all layers, loss from
the model's ``forward_pass`` (the Keras loss, mean over the batch, as in
``fit``).  Each client is one call of the computation with that client alone,
so rows are matched to clients without relying on the order TFF's reservoir
sampling collects them in.  Dropout masks are drawn differently by Keras' ``fit``
and by TFF's ``forward_pass``: compare on a model without dropout.
"""
from __future__ import annotations

import collections
from typing import Dict

import numpy as np
import pandas as pd

from tff_ser.task import Task


def _strategy(steps: int, lr: float, batch_size: int, head_vars: int, num_classes: int):
    import tensorflow as tf

    def evaluate(model, data):
        hits = tf.zeros([num_classes], tf.int32)
        counts = tf.zeros([num_classes], tf.int32)
        for x, y in data.batch(256):
            pred = tf.argmax(model.predict_on_batch(x, training=False), axis=1,
                             output_type=tf.int32)
            label = tf.one_hot(y, num_classes, dtype=tf.int32)
            counts += tf.reduce_sum(label, axis=0)
            hits += tf.reduce_sum(label * tf.cast(tf.equal(pred, y), tf.int32)[:, None], axis=0)
        return collections.OrderedDict(
            [(f"hits_{c}", hits[c]) for c in range(num_classes)]
            + [(f"count_{c}", counts[c]) for c in range(num_classes)])

    def build_personalize():
        optimizer = tf.keras.optimizers.Adam(lr)

        @tf.function
        def personalize(model, train_data, test_data, context=None):
            del context
            variables = model.trainable_variables
            if head_vars:
                variables = variables[-head_vars:]
            optimizer.build(variables)
            batches = train_data.batch(batch_size)
            for _ in range(steps):
                for batch in batches:
                    with tf.GradientTape() as tape:
                        loss = model.forward_pass(batch, training=True).loss
                    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return evaluate(model, test_data)

        return personalize

    @tf.function
    def baseline(model, data):
        return evaluate(model, data)

    return build_personalize, baseline


def _scores(metrics, num_classes: int) -> dict:
    hits = np.array([int(np.ravel(metrics[f"hits_{c}"])[0]) for c in range(num_classes)])
    counts = np.array([int(np.ravel(metrics[f"count_{c}"])[0]) for c in range(num_classes)])
    present = counts > 0
    return {"accuracy": float(hits.sum() / counts.sum()),
            "uar": float(np.mean(hits[present] / counts[present])),
            "n_scored": int(counts.sum())}


def tff_finetune_clients(task: Task, weights, personal_test: Dict[str, np.ndarray], *,
                         steps: int = 5, lr: float = 1e-3, batch_size: int = 16,
                         layers: str = "all") -> pd.DataFrame:
    """:func:`tff_ser.personalization.finetune_clients` as TFF's personalization evaluation.

    Same arguments and columns (``global_*``: TFF's baseline metrics,
    ``personal_*``: the fine-tuning strategy's); clips in index order
    (compare with ``finetune_clients(..., shuffle=False)``).  Reference stack
    (TFF) only.
    """
    import tensorflow as tf
    from tff_ser.engines.tff_process import make_model_fn
    from tff_ser.runtime import get_tff
    if layers not in ("head", "all"):
        raise ValueError(f"layers must be 'head' or 'all', got {layers!r}")
    tff = get_tff()
    keras_model = task.model_def.build(task.input_shape, task.num_classes, seed=0)
    head_vars = len(keras_model.layers[-1].trainable_weights) if layers == "head" else 0
    build_personalize, baseline = _strategy(steps, lr, batch_size, head_vars, task.num_classes)
    computation = tff.learning.algorithms.build_personalization_eval_computation(
        make_model_fn(task.model, task.input_shape, task.num_classes),
        collections.OrderedDict(finetune=build_personalize), baseline, max_num_clients=1)
    trainable, non_trainable = weights
    model_weights = tff.learning.models.ModelWeights(
        trainable=[np.asarray(w) for w in trainable],
        non_trainable=[np.asarray(w) for w in non_trainable])

    def data(rows):
        rows = np.asarray(rows)
        return tf.data.Dataset.from_tensor_slices((task.x[rows], task.y[rows]))

    out = []
    for cid in sorted(personal_test):
        train_rows = np.asarray(task.train_clients[cid])
        test_rows = np.asarray(personal_test[cid])
        if set(test_rows) & set(train_rows):
            raise ValueError(f"client {cid!r}: personal-test clips are among its training clips")
        metrics = computation(model_weights, [collections.OrderedDict(
            train_data=data(train_rows), test_data=data(test_rows))])
        g = _scores(metrics["baseline_metrics"], task.num_classes)
        p = _scores(metrics["finetune"], task.num_classes)
        out.append({"client": cid, "adapted_on": int(len(train_rows)),
                    "n_scored": g["n_scored"], "global_accuracy": g["accuracy"],
                    "global_uar": g["uar"], "personal_accuracy": p["accuracy"],
                    "personal_uar": p["uar"]})
    return pd.DataFrame(out)
