"""Paper 001's models (Chau & Garces, Figs 4-6) on (100, 34) pyAudioAnalysis frames.

Layer sizes follow the paper's Keras summaries exactly, and the parameter
counts match them (``tests/unit/test_models.py``).  The summaries give neither
activations nor dropout rates: hidden Conv1D and Dense layers use ReLU, as in
the Tripathi et al. (2018) code the paper derives from; LSTMs keep tanh /
sigmoid; dropout defaults to 0.2.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras

from tff_ser.layers import ReproducibleDropout
from tff_ser.models import SeededInitializers, check_rank, check_rate


def dense_001(input_shape: Sequence[int] = (100, 34), num_classes: int = 4, *,
              dropout_rate: float = 0.2, seed: Optional[int] = None) -> keras.Model:
    """Paper 001's "Dense" model (Fig 4): 26,008,068 parameters at (100, 34).

    Parameters
    ----------
    input_shape : (time, features)
        Windows x short-term features; (100, 34) in the paper.
    num_classes : int
        Softmax outputs (4 in the paper).
    dropout_rate : float
        Rate of the three Dropout layers (not given in the paper).
    seed : int or None
        Seed of the weight initializers; ``None`` for unseeded.

    Examples
    --------
    >>> dense_001().count_params()
    26008068
    """
    shape = check_rank("dense", input_shape, 2, "(time, features)")
    rate = check_rate(dropout_rate)
    init = SeededInitializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.conv1d(512, 3, "conv1d"),
        ReproducibleDropout(rate, name="dropout"),
        keras.layers.Flatten(name="flatten"),
        init.dense(512, "relu", "dense"),
        ReproducibleDropout(rate, name="dropout_1"),
        init.dense(512, "relu", "embedding_layer"),
        ReproducibleDropout(rate, name="dropout_2"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="dense")


def conv1d_001(input_shape: Sequence[int] = (100, 34), num_classes: int = 4, *,
               dropout_rate: float = 0.2, seed: Optional[int] = None) -> keras.Model:
    """Paper 001's convolutional model (Fig 6): 1,832,004 parameters at (100, 34).

    Four valid-padded kernel-3 Conv1D layers (512, 128, 128, 64 filters),
    each followed by Dropout, then Dense 256 ``embedding_layer`` -> Dropout
    -> softmax.  Parameters as in :func:`dense_001`.

    Examples
    --------
    >>> conv1d_001().count_params()
    1832004
    """
    shape = check_rank("conv1d", input_shape, 2, "(time, features)")
    if shape[0] < 9:
        raise ValueError(f"model 'conv1d' stacks four kernel-3 valid convolutions and needs "
                         f"at least 9 time steps; got input_shape={shape}")
    rate = check_rate(dropout_rate)
    init = SeededInitializers(seed)
    layers = [keras.Input(shape)]
    for i, filters in enumerate((512, 128, 128, 64)):
        suffix = "" if i == 0 else f"_{i}"
        layers += [init.conv1d(filters, 3, f"conv1d{suffix}"),
                   ReproducibleDropout(rate, name=f"dropout{suffix}")]
    layers += [
        keras.layers.Flatten(name="flatten"),
        init.dense(256, "relu", "embedding_layer"),
        ReproducibleDropout(rate, name="dropout_4"),
        init.dense(num_classes, "softmax", "softmax"),
    ]
    return keras.Sequential(layers, name="conv1d")


def lstm_001(input_shape: Sequence[int] = (100, 34), num_classes: int = 4, *,
             seed: Optional[int] = None) -> keras.Model:
    """Paper 001's LSTM model (Fig 5): 3,484,164 parameters at (100, 34).

    LSTM 512 returning sequences -> LSTM 512 -> Dense 512 ReLU
    ``embedding_layer`` -> softmax; no dropout (Fig 5 lists none).

    Examples
    --------
    >>> lstm_001().count_params()
    3484164
    """
    shape = check_rank("lstm", input_shape, 2, "(time, features)")
    init = SeededInitializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.lstm(512, True, "lstm"),
        init.lstm(512, False, "lstm_1"),
        init.dense(512, "relu", "embedding_layer"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="lstm")
