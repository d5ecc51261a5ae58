"""Paper 004's CNN and LSTM (Latif et al., section 3.2) on 40-d log-Mel.

The paper names the layers but not their sizes; the sizes here are this
package's choice, small enough to train federated on a CPU.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import keras

from tff_ser.models import SeededInitializers, check_rank


def cnn_logmel_004(input_shape: Sequence[int] = (300, 40), num_classes: int = 4, *,
                   filters: int = 16, kernel_size: Tuple[int, int] = (5, 5),
                   pool_size: Tuple[int, int] = (4, 4),
                   hidden_units: Tuple[int, int] = (128, 64),
                   seed: Optional[int] = None) -> keras.Model:
    """Paper 004's CNN: one conv layer, one max-pool, two FC layers, softmax.

    The log-mel matrix is treated as a one-channel image (time x mel) and
    convolved with ``same`` padding.  Sizes are not in the paper; the
    defaults (16 filters 5x5, 4x4 pooling, FC 128 and 64) keep the model
    near 1.5 M parameters so federated rounds stay cheap on a CPU.

    Examples
    --------
    >>> cnn_logmel_004().count_params()
    1545060
    """
    shape = check_rank("cnn_logmel", input_shape, 2, "(time, mel bands)")
    if shape[0] < pool_size[0] or shape[1] < pool_size[1]:
        raise ValueError(f"model 'cnn_logmel' pools {tuple(pool_size)} and needs inputs at least "
                         f"that large; got input_shape={shape}")
    init = SeededInitializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Reshape(shape + (1,), name="add_channel"),
        keras.layers.Conv2D(int(filters), tuple(kernel_size), padding="same",
                               activation="relu", name="conv2d",
                               kernel_initializer=init.glorot_uniform()),
        keras.layers.MaxPool2D(tuple(pool_size), name="max_pool"),
        keras.layers.Flatten(name="flatten"),
        init.dense(int(hidden_units[0]), "relu", "fc_1"),
        init.dense(int(hidden_units[1]), "relu", "fc_2"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="cnn_logmel")


def lstm_logmel_004(input_shape: Sequence[int] = (300, 40), num_classes: int = 4, *,
                    lstm_units: int = 128, hidden_units: Tuple[int, int] = (128, 64),
                    seed: Optional[int] = None) -> keras.Model:
    """Paper 004's LSTM: one LSTM layer, two FC layers, softmax.

    Sizes are not in the paper; defaults LSTM 128, FC 128 and 64.

    Examples
    --------
    >>> lstm_logmel_004().count_params()
    111556
    """
    shape = check_rank("lstm_logmel", input_shape, 2, "(time, mel bands)")
    init = SeededInitializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.lstm(int(lstm_units), False, "lstm"),
        init.dense(int(hidden_units[0]), "relu", "fc_1"),
        init.dense(int(hidden_units[1]), "relu", "fc_2"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="lstm_logmel")
