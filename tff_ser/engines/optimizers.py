"""TFF 0.87's ``tff.learning.optimizers``, as TensorFlow math the fast engines share.

Each named optimizer of :data:`tff_ser.fedconfig.OPTIMIZERS` is written
here term for term as TFF 0.87 writes it (``learning/optimizers/adam.py``,
``sgdm.py``, ``yogi.py``, ``adagrad.py``, ``rmsprop.py``), with TFF's
default arguments, so that the ``tf`` and ``batched`` engines compute the
process TFF builds with ``build_adam``, ``build_sgdm``, ``build_yogi``,
``build_adagrad`` and ``build_rmsprop`` -- on the server (state kept across
rounds) and on the clients (a fresh optimizer every round).  Equality with
TFF's process is tested per round on the reference stack
(``tests/integration/test_recipes_without_tff.py``).

State is two lists of slots per weight, named as TFF names them:
``accumulator`` (first moment / momentum) and ``preconditioner`` (second
moment / squared-gradient sum); an optimizer that has no such slot keeps an
empty list.  The step counter (Adam and Yogi's bias correction) is kept by
the engine.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

#: TFF 0.87's default arguments of each builder (``sgd`` is ``build_sgdm`` without momentum;
#: tff_ser's ``sgdm`` defaults to momentum 0.9).
TFF_DEFAULTS: Dict[str, Dict[str, float]] = {
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "sgd": {},
    "sgdm": {"momentum": 0.9},
    "yogi": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-3,
             "initial_preconditioner_value": 1e-6},
    "adagrad": {"initial_preconditioner_value": 0.1, "epsilon": 1e-7},
    "rmsprop": {"decay": 0.9, "epsilon": 1e-7},
}


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """A named optimizer with every argument resolved (TFF's defaults filled in).

    Parameters
    ----------
    kind : str
        A key of :data:`TFF_DEFAULTS`.
    hparams : tuple of (name, value)
        Its arguments, learning rate excluded (it is a tensor of each round).
    """

    kind: str
    hparams: Tuple[Tuple[str, float], ...]

    def __getitem__(self, name: str) -> float:
        return dict(self.hparams)[name]

    @property
    def has_accumulator(self) -> bool:
        return self.kind in ("adam", "yogi") or (self.kind == "sgdm" and self["momentum"] > 0)

    @property
    def has_preconditioner(self) -> bool:
        return self.kind in ("adam", "yogi", "adagrad", "rmsprop")

    @property
    def counts_steps(self) -> bool:
        """Adam and Yogi correct their bias with the step count."""
        return self.kind in ("adam", "yogi")


def optimizer_spec(kind: str, kwargs=()) -> OptimizerSpec:
    """The :class:`OptimizerSpec` of a named optimizer and its keyword arguments."""
    if kind not in TFF_DEFAULTS:
        raise ValueError(f"unknown optimizer {kind!r}; the fast engines implement "
                         f"{tuple(TFF_DEFAULTS)}")
    given = dict(kwargs)
    unknown = sorted(set(given) - set(TFF_DEFAULTS[kind]))
    if unknown:
        raise ValueError(f"{kind!r} takes {sorted(TFF_DEFAULTS[kind]) or 'no arguments'}, "
                         f"not {unknown}")
    values = {**TFF_DEFAULTS[kind], **{k: float(v) for k, v in given.items()}}
    return OptimizerSpec(kind, tuple(sorted(values.items())))


def initial_slots(spec: OptimizerSpec, weights: Sequence[np.ndarray]
                  ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """``(accumulator, preconditioner)`` of a fresh optimizer for ``weights`` (as TFF's ``initialize``)."""
    zeros = [np.zeros(np.shape(w), np.float32) for w in weights]
    accumulator = zeros if spec.has_accumulator else []
    if not spec.has_preconditioner:
        return accumulator, []
    if spec.kind in ("yogi", "adagrad"):
        value = np.float32(spec["initial_preconditioner_value"])
        return accumulator, [np.ones(np.shape(w), np.float32) * value for w in weights]
    return accumulator, [np.zeros(np.shape(w), np.float32) for w in weights]


class TensorMath:
    """The handful of operations :func:`apply` needs, from one array library.

    ``TensorMath.tensorflow()`` for the TensorFlow engines, ``TensorMath.jax()``
    for the JAX engine (:mod:`tff_ser.engines.jax_fedavg`): one text of TFF's
    formulas serves both.
    """

    def __init__(self, f32, to_float, sqrt, square, sign, pow):
        self.f32, self.to_float = f32, to_float
        self.sqrt, self.square, self.sign, self.pow = sqrt, square, sign, pow

    @classmethod
    def tensorflow(cls) -> "TensorMath":
        import tensorflow as tf
        return cls(lambda v: tf.constant(v, tf.float32), lambda t: tf.cast(t, tf.float32),
                   tf.math.sqrt, tf.math.square, tf.sign, tf.math.pow)

    @classmethod
    def jax(cls) -> "TensorMath":
        import jax.numpy as jnp
        return cls(jnp.float32, lambda t: jnp.asarray(t, jnp.float32),
                   jnp.sqrt, jnp.square, jnp.sign, jnp.power)


def apply(spec: OptimizerSpec, lr, step, weights: Sequence, accumulator: Sequence,
          preconditioner: Sequence, gradients: Sequence, math: "TensorMath" = None):
    """One step of TFF's ``optimizer.next``: ``(weights, accumulator, preconditioner)`` after it.

    Parameters
    ----------
    spec : OptimizerSpec
    lr : float32 scalar tensor
        The learning rate (TFF keeps it in the optimizer state as float32).
    step : int32 scalar tensor
        The step being taken, 1-based (used by Adam and Yogi only).
    weights, accumulator, preconditioner, gradients : sequences of tensors
        ``accumulator`` / ``preconditioner`` empty where ``spec`` has none.
    math : TensorMath
        The array library (default TensorFlow's).
    """
    m = math or TensorMath.tensorflow()
    _f32 = m.f32
    kind = spec.kind
    if kind == "sgd":
        return [w - lr * g for w, g in zip(weights, gradients)], [], []
    if kind == "sgdm":
        if not spec.has_accumulator:
            return [w - lr * g for w, g in zip(weights, gradients)], [], []
        momentum = _f32(spec["momentum"])
        acc = [momentum * a + g for a, g in zip(accumulator, gradients)]
        return [w - lr * a for w, a in zip(weights, acc)], acc, []
    if kind in ("adam", "yogi"):
        beta_1, beta_2, epsilon = _f32(spec["beta_1"]), _f32(spec["beta_2"]), _f32(spec["epsilon"])
        t = m.to_float(step)
        one = _f32(1.0)
        normalized_lr = lr * m.sqrt(one - m.pow(beta_2, t)) / (one - m.pow(beta_1, t))
        new_w, new_a, new_p = [], [], []
        for w, a, p, g in zip(weights, accumulator, preconditioner, gradients):
            a = a + (g - a) * (one - beta_1)
            if kind == "adam":
                p = p + (m.square(g) - p) * (one - beta_2)
            else:
                g2 = m.square(g)
                p = p + (one - beta_2) * m.sign(g2 - p) * g2
            new_w.append(w - normalized_lr * a / (m.sqrt(p) + epsilon))
            new_a.append(a)
            new_p.append(p)
        return new_w, new_a, new_p
    if kind == "adagrad":
        epsilon = _f32(spec["epsilon"])
        new_p = [p + m.square(g) for p, g in zip(preconditioner, gradients)]
        return ([w - lr * g / m.sqrt(p + epsilon)
                 for w, g, p in zip(weights, gradients, new_p)], [], new_p)
    if kind == "rmsprop":
        decay, epsilon = _f32(spec["decay"]), _f32(spec["epsilon"])
        one = _f32(1.0)
        new_p = [p + (m.square(g) - p) * (one - decay)
                 for p, g in zip(preconditioner, gradients)]
        return ([w - lr * g / (m.sqrt(p) + epsilon)
                 for w, g, p in zip(weights, gradients, new_p)], [], new_p)
    raise ValueError(f"unknown optimizer {kind!r}")
