"""ReproducibleDropout: ordinary dropout statistics, masks fixed by the batch."""
import numpy as np
import pytest
import tensorflow as tf

from tff_ser.layers import ReproducibleDropout


def test_same_batch_same_mask_and_different_batches_differ():
    layer = ReproducibleDropout(0.5, name="d")
    x = tf.ones((64, 32))
    a, b = layer(x, training=True), layer(x, training=True)
    np.testing.assert_array_equal(a, b)
    c = layer(x * 1.01, training=True)
    assert np.mean((a.numpy() == 0) != (c.numpy() == 0)) > 0.2


def test_keeps_the_expected_fraction_and_scales_survivors():
    x = tf.random.stateless_uniform((256, 256), seed=(1, 2)) + 1.0
    out = ReproducibleDropout(0.2, name="d")(x, training=True).numpy()
    kept = out != 0
    assert kept.mean() == pytest.approx(0.8, abs=0.01)
    np.testing.assert_allclose(out[kept], x.numpy()[kept] / 0.8, rtol=1e-6)


def test_inference_is_the_identity():
    x = tf.random.normal((8, 5))
    np.testing.assert_array_equal(ReproducibleDropout(0.5)(x, training=False), x)
    np.testing.assert_array_equal(ReproducibleDropout(0.5)(x), x)


def test_rate_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="rate"):
        ReproducibleDropout(1.0)
