"""TFF 0.87's named aggregators as TensorFlow math: robust, 8-bit compression, DP-FedAvg.

What ``FederatedConfig.aggregator`` names, computed the way TFF 0.87 builds
them (``learning/model_update_aggregator.py``, ``aggregators/robust.py``,
``aggregators/quantile_estimation.py``, ``aggregators/differential_privacy.py``,
``aggregators/encoded.py`` and the tensorflow_privacy / model-optimization
queries and encoders they use), so that the ``tf`` engine computes them
without TFF:

* ``"robust"`` -- ``robust_aggregator``: adaptive **zeroing** (a client's update
  is zeroed when its L-inf norm exceeds ``2 C_z + 1``; ``C_z`` starts at 10
  and follows the 0.98 quantile of the norms, geometric rate ln 10), then
  adaptive **L2 clipping** (the update is divided by ``norm / C_c`` when its
  L2 norm exceeds ``C_c``; ``C_c`` starts at 1 and follows the 0.8 quantile,
  rate 0.2), then the (weighted) mean.  Both estimates are noise-free
  (``PrivateQuantileEstimationProcess.no_noise``): ``C <- C exp(-rate (f - q))``
  with ``f`` the fraction of this round's clients at or below ``C``.
* ``"compression"`` -- ``compression_aggregator``: the same zeroing and
  clipping, then the mean whose value sum quantizes every tensor of more than
  20,000 elements to 8 bits per client (``weight * update``; min/max of the
  tensor, stochastic rounding, decoded on the server).
* ``"dp"`` -- DP-FedAvg (uniform weights).  Fixed clip ``dp_clip``:
  ``DifferentiallyPrivateFactory.gaussian_fixed``: each update clipped to L2
  norm ``clip`` (``tf.clip_by_global_norm``), summed, Gaussian noise of std
  ``z clip`` added, divided by the clients per round ``m``.  Adaptive
  (``dp_clip=None``): ``tff.learning.dp_aggregator``: zeroing as above, then
  tensorflow_privacy's ``QuantileAdaptiveClipSumQuery``: clip starts at 0.1
  and follows the median (rate 0.2, geometric), the clipped-count fraction
  gets noise of std ``0.05 m`` (``clipped_count_stddev``) and the sum noise
  of std ``clip * z'`` with ``z' = (z^-2 - (2 * 0.05 m)^-2)^-1/2``, so that
  the whole is one Gaussian mechanism of multiplier ``z``.

Randomness: TFF draws the DP noise and the quantizer's rounding from
unseeded TensorFlow ops; here they are stateless draws from (run seed,
round), so a run is reproducible.  Deterministic parts are equal to TFF's
process to 1e-5 per round (noise 0; tensors below the quantization
threshold); the noisy parts agree in distribution
(``tests/integration/test_aggregators_without_tff.py``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

#: TFF 0.87's defaults (model_update_aggregator.py, differential_privacy.py).
ZEROING = {"initial": 10.0, "quantile": 0.98, "rate": math.log(10.0), "multiplier": 2.0,
           "increment": 1.0}
CLIPPING = {"initial": 1.0, "quantile": 0.8, "rate": 0.2}
DP_ADAPTIVE = {"initial": 0.1, "quantile": 0.5, "rate": 0.2, "count_stddev_per_client": 0.05}
QUANTIZATION_BITS = 8
QUANTIZATION_THRESHOLD = 20000

#: Positions of the adaptive norms in the aggregator state vector.
Z, C, DP = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class AggregatorSpec:
    """What one run's aggregation does, resolved from its config (see the module docstring)."""

    zeroing: bool = False
    clipping: bool = False
    compression: bool = False
    dp: bool = False
    dp_clip: Optional[float] = None      # None: adaptive
    noise_multiplier: float = 0.0        # z as the config gives it
    clients_per_round: float = 1.0       # m, the DP denominator

    @property
    def adaptive_dp(self) -> bool:
        return self.dp and self.dp_clip is None

    @property
    def plain(self) -> bool:
        """TFF's default mean: nothing beyond the (weighted) average."""
        return not (self.zeroing or self.clipping or self.compression or self.dp)

    @property
    def clipped_count_stddev(self) -> float:
        if not self.adaptive_dp or self.noise_multiplier <= 0:
            return 0.0
        return DP_ADAPTIVE["count_stddev_per_client"] * self.clients_per_round

    @property
    def value_noise_multiplier(self) -> float:
        """The noise multiplier of the sum (TFF's ``adaptive_clip_noise_params``)."""
        z = self.noise_multiplier
        if not self.dp or z <= 0:
            return 0.0
        if self.dp_clip is not None:
            return z
        return (z ** -2 - (2 * self.clipped_count_stddev) ** -2) ** -0.5

    def initial_state(self) -> np.ndarray:
        """``[C_z, C_c, clip]``: the adaptive norms before round 1."""
        clip = DP_ADAPTIVE["initial"] if self.dp_clip is None else float(self.dp_clip)
        return np.array([ZEROING["initial"], CLIPPING["initial"], clip], np.float32)


def aggregator_spec(config, num_train_clients: int) -> AggregatorSpec:
    """The :class:`AggregatorSpec` of ``config.aggregator`` (None / "mean": plain mean)."""
    from tff_ser.fedconfig import sampled_per_round
    agg = config.aggregator
    if agg in (None, "mean"):
        return AggregatorSpec()
    if agg in ("robust", "compression"):
        return AggregatorSpec(zeroing=True, clipping=True, compression=agg == "compression")
    if agg == "dp":
        m = float(sampled_per_round(num_train_clients, config.client_fraction))
        return AggregatorSpec(zeroing=config.dp_clip is None, dp=True, dp_clip=config.dp_clip,
                              noise_multiplier=float(config.noise_multiplier),
                              clients_per_round=m)
    raise ValueError(f"the tf engine implements aggregators None, 'mean', 'robust', "
                     f"'compression' and 'dp', not {agg!r}")


# --------------------------------------------------------------------------
# at the clients
# --------------------------------------------------------------------------

def _inf_norm(value: Sequence[tf.Tensor]) -> tf.Tensor:
    # robust.py's _global_inf_norm
    return tf.reduce_max(tf.stack([tf.cast(tf.norm(a, ord=np.inf), tf.float32) for a in value]))


def _l2_norm(value: Sequence[tf.Tensor]) -> tf.Tensor:
    # robust.py's _global_l2_norm
    return tf.math.sqrt(tf.reduce_sum(tf.stack(
        [tf.cast(tf.norm(a, ord=2) ** 2, tf.float32) for a in value])))


def _below(norm: tf.Tensor, estimate: tf.Tensor) -> tf.Tensor:
    # quantile_estimator_query: the record is 1 at or below the estimate, shifted by -0.5
    return tf.cast(norm <= estimate, tf.float32) - 0.5


def quantize(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """8-bit uniform quantization with stochastic rounding, encoded and decoded (TFF's encoder)."""
    flat = tf.reshape(x, [-1])
    min_x, max_x = tf.reduce_min(flat), tf.reduce_max(flat)
    max_value = tf.constant(2.0 ** QUANTIZATION_BITS - 1.0, tf.float32)
    scaled = tf.compat.v1.div_no_nan(flat - min_x, max_x - min_x) * max_value
    floored = tf.floor(scaled)
    bernoulli = tf.random.stateless_uniform(tf.shape(scaled), seed) < (scaled - floored)
    quantized = floored + tf.cast(bernoulli, tf.float32)
    return tf.reshape(quantized / max_value * (max_x - min_x) + min_x, tf.shape(x))


def client_value(spec: AggregatorSpec, value: List[tf.Tensor], weight: tf.Tensor,
                 state: tf.Tensor, seed: tf.Tensor) -> Tuple[List[tf.Tensor], tf.Tensor]:
    """One client's contribution to the sum, and its ``[below_z, below_c, below_dp]`` records.

    ``value`` is the client's update (already zeroed if non-finite), ``weight``
    its weight in the mean (1 for uniform weights), ``state`` the
    ``[C_z, C_c, clip]`` of this round, ``seed`` a stateless seed of this
    client and round (quantization).
    """
    below = [tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)]
    if spec.zeroing:
        norm = _inf_norm(value)
        zeroing_norm = ZEROING["multiplier"] * state[Z] + ZEROING["increment"]
        value = tf.cond(norm > zeroing_norm, lambda: [tf.zeros_like(v) for v in value],
                        lambda: list(value))
        below[Z] = _below(norm, state[Z])
    if spec.clipping:
        norm = _l2_norm(value)
        clip = state[C]
        value = tf.cond(norm > clip, lambda: [v / (norm / clip) for v in value],
                        lambda: list(value))
        below[C] = _below(norm, clip)
    if spec.dp:
        value, norm = tf.clip_by_global_norm(list(value), state[DP])
        below[DP] = _below(norm, state[DP])
    if not spec.dp:
        value = [v * weight for v in value]  # MeanFactory weighs at the clients
    if spec.compression:
        value = [quantize(v, seed + i) if int(np.prod(v.shape)) > QUANTIZATION_THRESHOLD else v
                 for i, v in enumerate(value)]
    return list(value), tf.stack(below)


# --------------------------------------------------------------------------
# at the server
# --------------------------------------------------------------------------

def _geometric(estimate, below_fraction, quantile, rate):
    fraction = tf.minimum(1.0, tf.maximum(0.0, below_fraction))
    return estimate * tf.math.exp(-tf.constant(rate, tf.float32) * (fraction - quantile))


def server_mean(spec: AggregatorSpec, value_sum: List[tf.Tensor], weight_sum: tf.Tensor,
                below_sum: tf.Tensor, clients: tf.Tensor, state: tf.Tensor, seed: tf.Tensor
                ) -> Tuple[List[tf.Tensor], tf.Tensor]:
    """The aggregate the server optimizer gets, and the next round's ``[C_z, C_c, clip]``.

    ``value_sum`` is the sum of :func:`client_value` over the round's
    clients, ``weight_sum`` their weights' sum, ``below_sum`` the sum of
    their records, ``clients`` how many there were.
    """
    new_state = tf.unstack(state)
    if spec.dp:
        stddev = state[DP] * spec.value_noise_multiplier
        noised = [v + tf.random.stateless_normal(tf.shape(v), seed + i) * stddev
                  for i, v in enumerate(value_sum)] if spec.value_noise_multiplier > 0 \
            else list(value_sum)
        m = tf.constant(spec.clients_per_round, tf.float32)
        mean = [v / m for v in noised]
        if spec.adaptive_dp:
            count = below_sum[DP]
            if spec.clipped_count_stddev > 0:
                count = count + tf.random.stateless_normal([], seed + len(value_sum)) \
                    * spec.clipped_count_stddev
            new_clip = _geometric(state[DP], count / m + 0.5, DP_ADAPTIVE["quantile"],
                                  DP_ADAPTIVE["rate"])
            new_state[DP] = tf.maximum(new_clip, 0.0)
    else:
        mean = [v / weight_sum for v in value_sum]
    # noise-free quantile estimates: the mean of the shifted records over the round's clients
    if spec.zeroing:
        new_state[Z] = _geometric(state[Z], below_sum[Z] / clients + 0.5, ZEROING["quantile"],
                                  ZEROING["rate"])
    if spec.clipping:
        new_state[C] = _geometric(state[C], below_sum[C] / clients + 0.5, CLIPPING["quantile"],
                                  CLIPPING["rate"])
    return mean, tf.stack(new_state)
