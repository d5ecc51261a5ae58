"""TensorFlow's stateless random draws (Philox-4x32-10), in NumPy: seeded models without TensorFlow.

Keras 2.14 draws a seeded model's initial weights with
``tf.random.stateless_uniform`` / ``stateless_normal(shape, seed=[seed, 0])``,
and :class:`tff_ser.layers.Keras2GlorotUniform` / ``Keras2Orthogonal`` repeat
those draws so that a seed builds the same model on every stack.  Where
TensorFlow is not installed (``engine="jax"`` in a TensorFlow-free
environment) they call this module instead, which computes what TensorFlow's
CPU kernels compute:

* the key and counter of ``StatelessRandomGetKeyCounter`` (the seed pair
  scrambled through one Philox block, ``stateless_random_ops_v2``);
* Philox-4x32-10 (Salmon et al. 2011, TensorFlow's ``random::PhiloxRandom``):
  each counter value gives four 32-bit words;
* uniform floats from the 23 low bits of each word (``Uint32ToFloat``), and
  normal floats by Box-Muller on pairs of words (``BoxMullerFloat``).

Uniform draws equal TensorFlow's bit for bit; normal draws to float32
rounding (``log``, ``sin``, ``cos`` are NumPy's, not Eigen's).
``tests/unit/test_stateless.py`` compares both with TensorFlow.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_LOW = np.uint64(0xFFFFFFFF)


def _philox(counter: np.ndarray, key: Tuple[int, int]) -> np.ndarray:
    """Philox-4x32-10 of counters ``(n, 4)`` uint32 under ``key``: ``(n, 4)`` uint32 words."""
    c = counter.astype(np.uint32).copy()
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):
        for round_ in range(10):
            p0 = _M0 * c[:, 0].astype(np.uint64)
            p1 = _M1 * c[:, 2].astype(np.uint64)
            lo0, hi0 = (p0 & _LOW).astype(np.uint32), (p0 >> np.uint64(32)).astype(np.uint32)
            lo1, hi1 = (p1 & _LOW).astype(np.uint32), (p1 >> np.uint64(32)).astype(np.uint32)
            c = np.stack([hi1 ^ c[:, 1] ^ k0, lo1, hi0 ^ c[:, 3] ^ k1, lo0], axis=1)
            if round_ < 9:
                k0, k1 = k0 + _W0, k1 + _W1
    return c


def key_counter(seed: Sequence[int]) -> Tuple[Tuple[int, int], np.ndarray]:
    """TensorFlow's ``StatelessRandomGetKeyCounter``: the Philox key and first counter of ``seed``."""
    s0, s1 = (int(v) & 0xFFFFFFFFFFFFFFFF for v in seed)
    counter = np.array([[s0 & 0xFFFFFFFF, s0 >> 32, s1 & 0xFFFFFFFF, s1 >> 32]], np.uint32)
    mix = _philox(counter, (0x3EC8F720, 0x02461E29))[0]
    return (int(mix[0]), int(mix[1])), np.array([0, 0, mix[2], mix[3]], np.uint32)


def _words(seed: Sequence[int], blocks: int) -> np.ndarray:
    """``blocks`` Philox outputs from ``seed``'s counter on: ``(blocks, 4)`` uint32."""
    key, start = key_counter(seed)
    # the 128-bit counter counts up from `start`, low word first
    low = np.uint64(start[0]) | (np.uint64(start[1]) << np.uint64(32))
    steps = np.arange(blocks, dtype=np.uint64)
    with np.errstate(over="ignore"):
        low_now = low + steps
    carry = (low_now < low).astype(np.uint64)
    high = (np.uint64(start[2]) | (np.uint64(start[3]) << np.uint64(32))) + carry
    counters = np.stack([low_now & _LOW, low_now >> np.uint64(32), high & _LOW,
                         high >> np.uint64(32)], axis=1).astype(np.uint32)
    return _philox(counters, key)


def _unit_floats(words: np.ndarray) -> np.ndarray:
    """TensorFlow's ``Uint32ToFloat``: [0, 1) from the low 23 bits."""
    bits = (words & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)
    return bits.view(np.float32) - np.float32(1.0)


def stateless_uniform(shape: Sequence[int], seed: Sequence[int], minval: float = 0.0,
                      maxval: float = 1.0) -> np.ndarray:
    """``tf.random.stateless_uniform(shape, seed, minval, maxval)`` (float32), bit for bit."""
    n = int(np.prod(shape, dtype=np.int64))
    unit = _unit_floats(_words(seed, -(-n // 4)).reshape(-1))[:n]
    lo, hi = np.float32(minval), np.float32(maxval)
    return (unit * (hi - lo) + lo).reshape(tuple(shape)).astype(np.float32)


def stateless_normal(shape: Sequence[int], seed: Sequence[int]) -> np.ndarray:
    """``tf.random.stateless_normal(shape, seed)`` (float32), to float32 rounding."""
    n = int(np.prod(shape, dtype=np.int64))
    words = _words(seed, -(-n // 4)).reshape(-1, 2)
    u1 = np.maximum(_unit_floats(words[:, 0]), np.float32(1.0e-7))
    v1 = np.float32(2.0 * np.pi) * _unit_floats(words[:, 1])
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    pairs = np.stack([np.sin(v1) * radius, np.cos(v1) * radius], axis=1)
    return pairs.reshape(-1)[:n].reshape(tuple(shape)).astype(np.float32)
