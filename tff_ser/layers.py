"""Keras layers tff_ser needs beyond Keras' own.

:class:`ReproducibleDropout` exists because Keras' ``Dropout`` draws its masks
from stateful random ops.  Inside TFF those ops run in the C++ worker, in
whatever order clients are scheduled, with state that a restarted worker
loses, so two runs with the same seed (or a run resumed after a crash) train
on different masks and end with different metrics.  Here the mask is a pure
function of the layer's input batch and the layer's name: the same batch
through the same weights gets the same mask on every run, on every engine,
while masks still change from step to step because the weights (and so the
layer's inputs) do.
"""
from __future__ import annotations

import zlib

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tff_ser")
class ReproducibleDropout(tf.keras.layers.Layer):
    """Inverted dropout with masks derived from the input batch.

    Parameters
    ----------
    rate : float
        Fraction of units zeroed during training, in [0, 1).

    Notes
    -----
    The stateless seed is ``(crc32(layer name), bits of sum(inputs))``.
    Statistically this is ordinary dropout (each unit kept with probability
    ``1 - rate``, survivors scaled by ``1 / (1 - rate)``); it differs only in
    where the randomness comes from.
    """

    def __init__(self, rate: float, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self._salt = zlib.crc32(self.name.encode()) & 0x7FFFFFFF

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        total = tf.reduce_sum(tf.cast(inputs, tf.float32))
        seed = tf.stack([tf.constant(self._salt, tf.int32), tf.bitcast(total, tf.int32)])
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed) >= self.rate
        scaled = inputs / (1.0 - self.rate)
        return tf.where(keep, scaled, tf.zeros_like(scaled))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
