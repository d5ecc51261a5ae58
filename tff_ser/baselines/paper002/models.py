"""Paper 002's students (Nguyen et al., *Enhancing SER through Knowledge Distillation*), on paper 001's frames.

Paper 002 makes its students by cutting the teacher's depth (BERT 12 -> 6, 4,
2 layers) while keeping the embedding the size of the teacher's, so that the
feature loss (Eq. 5) compares vectors of one size.  Its teachers here are
paper 001's models (``dense``, 26,008,068 parameters; ``conv1d``, 1,832,004),
so the students cut *their* width and depth and keep their
``embedding_layer`` size (512 for dense, 256 for conv1d):

* ``conv1d_student``: two kernel-3 Conv1D layers (64, 32 filters) instead of
  four (512, 128, 128, 64) -> Dense 256 ``embedding_layer`` -> softmax;
  800,484 parameters, 43.7 % of conv1d's (paper 002's smallest student kept
  55.1 % of its teacher's).
* ``dense_student``: Conv1D 128 instead of 512, one hidden Dense instead of
  two -> Dense 512 ``embedding_layer`` -> softmax; 6,438,276 parameters,
  24.8 % of dense's.

Activations, dropout and initializers as paper 001's models
(:mod:`tff_ser.baselines.paper001.models`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras

from tff_ser.layers import ReproducibleDropout
from tff_ser.models import SeededInitializers, check_rank, check_rate


def conv1d_student_002(input_shape: Sequence[int] = (100, 34), num_classes: int = 4, *,
                       dropout_rate: float = 0.2, seed: Optional[int] = None) -> keras.Model:
    """The student of paper 001's conv1d: 800,484 parameters at (100, 34).

    Examples
    --------
    >>> conv1d_student_002().count_params()
    800484
    """
    shape = check_rank("conv1d_student", input_shape, 2, "(time, features)")
    if shape[0] < 5:
        raise ValueError(f"model 'conv1d_student' stacks two kernel-3 valid convolutions and "
                         f"needs at least 5 time steps; got input_shape={shape}")
    rate = check_rate(dropout_rate)
    init = SeededInitializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.conv1d(64, 3, "conv1d"),
        ReproducibleDropout(rate, name="dropout"),
        init.conv1d(32, 3, "conv1d_1"),
        ReproducibleDropout(rate, name="dropout_1"),
        keras.layers.Flatten(name="flatten"),
        init.dense(256, "relu", "embedding_layer"),
        ReproducibleDropout(rate, name="dropout_2"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="conv1d_student")


def dense_student_002(input_shape: Sequence[int] = (100, 34), num_classes: int = 4, *,
                      dropout_rate: float = 0.2, seed: Optional[int] = None) -> keras.Model:
    """The student of paper 001's dense model: 6,438,276 parameters at (100, 34).

    Examples
    --------
    >>> dense_student_002().count_params()
    6438276
    """
    shape = check_rank("dense_student", input_shape, 2, "(time, features)")
    rate = check_rate(dropout_rate)
    init = SeededInitializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.conv1d(128, 3, "conv1d"),
        ReproducibleDropout(rate, name="dropout"),
        keras.layers.Flatten(name="flatten"),
        init.dense(512, "relu", "embedding_layer"),
        ReproducibleDropout(rate, name="dropout_1"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="dense_student")
