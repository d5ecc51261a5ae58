"""Keras layers and initializers tff_ser needs beyond Keras' own.

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

import math
import zlib

import keras
import numpy as np


def keras_backend() -> str:
    """The backend Keras runs on in this process (Keras 2: always ``"tensorflow"``)."""
    return keras.backend.backend()


@keras.utils.register_keras_serializable(package="tff_ser")
class ReproducibleDropout(keras.layers.Layer):
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
        if keras_backend() == "jax":
            return self._jax_call(inputs)
        import tensorflow as tf
        total = tf.reduce_sum(tf.cast(inputs, tf.float32))
        seed = tf.stack([tf.constant(self._salt, tf.int32), tf.bitcast(total, tf.int32)])
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed) >= self.rate
        scaled = inputs / (1.0 - self.rate)
        return tf.where(keep, scaled, tf.zeros_like(scaled))

    def _jax_call(self, inputs):
        # The same rule on Keras' JAX backend (engine="jax"): the key is (salt, bits of the
        # input's sum), so the same seed gives the same run; the masks are JAX's own
        # generator's, not TensorFlow's.
        import jax
        import jax.numpy as jnp
        total = jnp.sum(inputs.astype(jnp.float32))
        key = jax.random.wrap_key_data(jnp.stack([
            jnp.uint32(self._salt), jax.lax.bitcast_convert_type(total, jnp.uint32)]))
        keep = jax.random.uniform(key, inputs.shape) >= self.rate
        return jnp.where(keep, inputs / (1.0 - self.rate), jnp.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


# --------------------------------------------------------------------------
# Keras 2.14's seeded initializers, for Keras 3
# --------------------------------------------------------------------------

def _ops():
    """``keras.ops`` (Keras 3, any backend), or the same names from TensorFlow (Keras 2)."""
    if hasattr(keras, "ops"):
        return keras.ops
    import types
    import tensorflow as tf
    return types.SimpleNamespace(tanh=tf.tanh, einsum=tf.einsum, squeeze=tf.squeeze,
                                 softmax=lambda x, axis: tf.nn.softmax(x, axis=axis))


def _fans(shape):
    """Keras 2.14's ``_compute_fans``."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _tensorflow():
    """TensorFlow if it is installed, else ``None`` (``engine="jax"`` without TensorFlow)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


def _as_backend_tensor(values, dtype):
    # Through NumPy, so that the values reach any Keras 3 backend unchanged
    # (Keras 2 has no keras.ops: its backend is TensorFlow).
    if not hasattr(keras, "ops"):
        import tensorflow as tf
        return tf.cast(values, dtype or tf.float32)
    return keras.ops.convert_to_tensor(np.asarray(values), dtype=dtype or "float32")


@keras.utils.register_keras_serializable(package="tff_ser")
class Keras2GlorotUniform(keras.initializers.Initializer):
    """Keras 2.14's ``GlorotUniform(seed)`` values, computed under Keras 3.

    Keras 2.14 draws ``tf.random.stateless_uniform(shape, seed=[seed, 0])``
    in ``[-limit, limit]``, ``limit = sqrt(3 / max(1, (fan_in + fan_out) / 2))``;
    Keras 3 uses another generator, so the same seed would start another
    model.  This computes Keras 2.14's draw with TensorFlow's stateless op, so
    a seeded model starts from the same weights on both stacks; without
    TensorFlow, with the same generator in NumPy (:mod:`tff_ser.stateless`,
    bit for bit).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __call__(self, shape, dtype=None, **kwargs):
        fan_in, fan_out = _fans(shape)
        scale = 1.0 / max(1.0, (fan_in + fan_out) / 2.0)
        limit = math.sqrt(3.0 * scale)
        tf = _tensorflow()
        if tf is None:
            from tff_ser.stateless import stateless_uniform
            return _as_backend_tensor(stateless_uniform(shape, [self.seed, 0], -limit, limit),
                                      dtype)
        values = tf.random.stateless_uniform(tuple(shape), seed=[self.seed, 0], minval=-limit,
                                             maxval=limit, dtype=tf.float32)
        return _as_backend_tensor(values.numpy() if hasattr(keras, "ops") else values, dtype)

    def get_config(self):
        return {"seed": self.seed}


@keras.utils.register_keras_serializable(package="tff_ser")
class Keras2Orthogonal(keras.initializers.Initializer):
    """Keras 2.14's ``Orthogonal(seed)`` values (gain 1), computed under Keras 3.

    As Keras 2.14: the QR decomposition of a ``stateless_normal`` matrix of
    shape (max(rows, cols), min(rows, cols)) drawn with ``seed=[seed, 0]``,
    columns signed by R's diagonal, transposed when rows < cols.  Without
    TensorFlow: the same draw in NumPy (:mod:`tff_ser.stateless`, to float32
    rounding) and NumPy's QR.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __call__(self, shape, dtype=None, **kwargs):
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(f"the orthogonal initializer needs a shape of rank >= 2; got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        tf = _tensorflow()
        if tf is None:
            from tff_ser.stateless import stateless_normal
            q, r = np.linalg.qr(stateless_normal((max(rows, cols), min(rows, cols)),
                                                 [self.seed, 0]))
            q = (q * np.sign(np.diag(r))).astype(np.float32)
            return _as_backend_tensor((q.T if rows < cols else q).reshape(shape), dtype)
        a = tf.random.stateless_normal((max(rows, cols), min(rows, cols)), seed=[self.seed, 0],
                                       dtype=tf.float32)
        q, r = tf.linalg.qr(a, full_matrices=False)
        q *= tf.sign(tf.linalg.tensor_diag_part(r))
        if rows < cols:
            q = tf.linalg.matrix_transpose(q)
        q = tf.reshape(q, shape)
        return _as_backend_tensor(q.numpy() if hasattr(keras, "ops") else q, dtype)

    def get_config(self):
        return {"seed": self.seed}


@keras.utils.register_keras_serializable(package="tff_ser")
class AttentionPooling(keras.layers.Layer):
    """Attention over frames: ``sum_t softmax_t(v . tanh(W h_t + b)) h_t``.

    How paper 003's wav2vec branch pools its recurrent outputs ("we exploit the
    attention mechanism to prioritize important frames and fuse these features via
    attention weights", after Lian et al.'s CTNet): a score per frame from a
    one-hidden-layer network, softmaxed over the frames, weights the frames'
    sum.  Input ``(batch, frames, dim)``, output ``(batch, dim)``.

    Parameters
    ----------
    units : int
        Width of the scoring network's hidden layer.
    kernel_initializer, score_initializer : initializer
        Of ``W`` and ``v`` (pass seeded ones for a reproducible model).
    """

    def __init__(self, units: int, kernel_initializer="glorot_uniform",
                 score_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"attention units must be >= 1; got {units!r}")
        self.units = int(units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.score_initializer = keras.initializers.get(score_initializer)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(dim, self.units),
                                      initializer=self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.score = self.add_weight(name="score", shape=(self.units, 1),
                                     initializer=self.score_initializer)
        super().build(input_shape)

    def attention(self, inputs):
        """The frames' weights, ``(batch, frames)``: each row sums to 1."""
        ops = _ops()
        hidden = ops.tanh(ops.einsum("btd,du->btu", inputs, self.kernel) + self.bias)
        return ops.softmax(ops.squeeze(ops.einsum("btu,uo->bto", hidden, self.score), -1),
                           axis=-1)

    def call(self, inputs):
        return _ops().einsum("bt,btd->bd", self.attention(inputs), inputs)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "score_initializer": keras.initializers.serialize(self.score_initializer)}
