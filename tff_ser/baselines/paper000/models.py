"""Paper 000's MLP (Mishchenko et al., section IV.A) on 136-d clip statistics."""
from __future__ import annotations

from typing import Optional, Sequence

import keras

from tff_ser.layers import ReproducibleDropout
from tff_ser.models import SeededInitializers, check_rank, check_rate


def mlp_000(input_shape: Sequence[int] = (136,), num_classes: int = 4, *,
            hidden_units: Sequence[int] = (256, 128), dropout_rate: float = 0.2,
            seed: Optional[int] = None) -> keras.Model:
    """Paper 000's MLP: Dense [256, 128] ReLU with dropout 0.2, softmax output.

    Parameters
    ----------
    input_shape : (features,)
        Clip-level statistics; (136,) for tff_ser's ``clip_stats`` features.
    num_classes : int
        Softmax outputs.
    hidden_units : sequence of int
        Hidden layer sizes, [256, 128] in section IV.A.
    dropout_rate : float
        Dropout after each hidden layer, 0.2 in section IV.A.
    seed : int or None
        Seed of the weight initializers.

    Examples
    --------
    >>> mlp_000().count_params()
    68484
    """
    shape = check_rank("mlp", input_shape, 1, "(features,)")
    rate = check_rate(dropout_rate)
    init = SeededInitializers(seed)
    layers = [keras.Input(shape)]
    for i, units in enumerate(hidden_units):
        layers += [init.dense(int(units), "relu", f"dense_{i}"),
                   ReproducibleDropout(rate, name=f"dropout_{i}")]
    layers.append(init.dense(num_classes, "softmax", "softmax"))
    return keras.Sequential(layers, name="mlp")
