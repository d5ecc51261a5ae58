"""The ``"federated"`` normalization as a TFF federated computation (reference stack).

Each client maps its clips to ``(count, per-feature sum, per-feature sum of
squares)`` with a ``tff.tensorflow.computation``; ``tff.federated_sum`` adds them at the
server, and only these aggregates leave a client.  :func:`tff_ser.task.make_task`
computes the same sums with NumPy (both stacks); ``tests/integration/test_normalization.py``
checks that TFF's sums, the NumPy sums and the pooled statistics agree.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def federated_moments(client_arrays: Sequence[np.ndarray]) -> Tuple[float, np.ndarray, np.ndarray]:
    """TFF's ``federated_sum`` of every client's ``(count, sum, sum of squares)``.

    ``client_arrays``: one ``(n_clips, ..., n_features)`` array per client;
    statistics are over every axis but the last, as :class:`tff_ser.features.normalize.Standardizer`.
    """
    import tensorflow as tf
    from tff_ser.runtime import get_tff
    tff = get_tff()
    n_features = int(np.shape(client_arrays[0])[-1])
    flat = [np.asarray(a, np.float64).reshape(-1, n_features) for a in client_arrays]
    spec = tff.TensorType(np.float64, [None, n_features])

    @tff.tensorflow.computation(spec)
    def client_moments(x):
        return (tf.cast(tf.shape(x)[0], tf.float64), tf.reduce_sum(x, axis=0),
                tf.reduce_sum(tf.square(x), axis=0))

    @tff.federated_computation(tff.FederatedType(spec, tff.CLIENTS))
    def summed(data):
        return tff.federated_sum(tff.federated_map(client_moments, data))

    count, total, total_sq = summed(flat)
    return float(count), np.asarray(total), np.asarray(total_sq)
