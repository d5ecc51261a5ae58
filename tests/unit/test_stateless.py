"""tff_ser.stateless draws what TensorFlow's stateless ops draw, so a seed builds one model without TF."""
import numpy as np
import pytest
import tensorflow as tf

from tff_ser import stateless

CASES = [((5,), [7, 0]), ((34, 1024), [123456, 0]), ((3, 7, 11), [2**31 - 2, 0]), ((1,), [0, 0]),
         ((257,), [5, 2**40 + 3])]


@pytest.mark.parametrize("shape,seed", CASES)
def test_uniform_draws_equal_tensorflows_bit_for_bit(shape, seed):
    ours = stateless.stateless_uniform(shape, seed, -0.3, 0.7)
    theirs = tf.random.stateless_uniform(shape, seed=seed, minval=-0.3, maxval=0.7).numpy()
    assert ours.dtype == np.float32 and ours.shape == tuple(shape)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape,seed", CASES)
def test_normal_draws_equal_tensorflows_to_float32_rounding(shape, seed):
    ours = stateless.stateless_normal(shape, seed)
    theirs = tf.random.stateless_normal(shape, seed=seed).numpy()
    # measured: at most 1.8e-6 on values up to ~4.5 (NumPy's log/sin/cos, not Eigen's)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=5e-6)
    if ours.size >= 1000:
        assert abs(float(ours.mean())) < 0.1 and 0.9 < float(ours.std()) < 1.1


def test_the_initializers_without_tensorflow_build_the_same_model(monkeypatch):
    from tff_ser import layers
    glorot, orth = layers.Keras2GlorotUniform(11), layers.Keras2Orthogonal(12)
    with_tf = [np.asarray(glorot((34, 64))), np.asarray(orth((16, 64)))]
    monkeypatch.setattr(layers, "_tensorflow", lambda: None)
    without = [np.asarray(glorot((34, 64))), np.asarray(orth((16, 64)))]
    np.testing.assert_array_equal(without[0], with_tf[0])
    np.testing.assert_allclose(without[1], with_tf[1], rtol=0, atol=1e-5)
    q = without[1]
    np.testing.assert_allclose(q @ q.T, np.eye(16), atol=1e-5)  # still orthogonal rows
