"""Paper 003's spectrogram branch (Sun et al., section 3.3): DARTS at its settings.

The search space, search network and derived network are :mod:`tff_ser.darts`; these
builders fix paper 003's choices (N = 4 nodes, L = 3 cells, C = 6 channels) as defaults.
"""
from __future__ import annotations

from typing import Optional, Sequence

from tff_ser import darts


def darts_search_003(input_shape: Sequence[int] = (140, 140), num_classes: int = 4, *,
                     cells: int = 3, channels: int = 6, nodes: int = 4, input_pool: int = 1,
                     seed: Optional[int] = None):
    """Paper 003's DARTS search network (Table 3's 0.13 M parameters at L = 3, C = 6).

    Examples
    --------
    >>> darts_search_003().count_params()
    132498
    """
    return darts.darts_search_network(input_shape, num_classes, cells=cells, channels=channels,
                                      nodes=nodes, input_pool=input_pool, seed=seed)


def darts_derived_003(input_shape: Sequence[int] = (140, 140), num_classes: int = 4, *,
                      genotype=None, cells: int = 3, channels: int = 6, input_pool: int = 1,
                      seed: Optional[int] = None):
    """A searched cell (``genotype=``, a search's ``genotype.json``) as paper 003's L = 3, C = 6
    network; default DARTS's CIFAR-10 cell (:data:`tff_ser.darts.DARTS_V2`)."""
    return darts.derived_network(input_shape, num_classes, genotype=genotype, cells=cells,
                                 channels=channels, input_pool=input_pool, seed=seed)


def attention_rnn_003(input_shape: Sequence[int] = (100, 34), num_classes: int = 4, *,
                      cell: str = "gru", rnn_layers: int = 2, units: int = 256,
                      attention_units: int = 128, hidden_units: int = 128,
                      seed: Optional[int] = None):
    """Paper 003's second stream: a recurrent network over frames, attention pooling, FC, softmax.

    Paper 003 searches the recurrent cell (its Table 4 prefers L = 2 cells of
    h = 256 hidden units) on wav2vec frames.  Here the cell is a GRU or LSTM
    (the search of recurrent cells is not built), stacked ``rnn_layers`` deep,
    and the frames are a sequence feature that exists without pretrained
    weights -- paper 001's (100, 34) frames (default), paper 004's log-Mel, or
    a user's own embeddings (``extract(clips, "embeddings", folder=...,
    frames=...)``).

    Examples
    --------
    >>> attention_rnn_003().count_params()
    685444
    """
    import keras

    from tff_ser.layers import AttentionPooling
    from tff_ser.models import SeededInitializers, check_rank
    shape = check_rank("attention_rnn", input_shape, 2, "(frames, features)")
    if cell not in ("gru", "lstm"):
        raise ValueError(f"model 'attention_rnn': cell must be 'gru' or 'lstm', got {cell!r}")
    if int(rnn_layers) < 1:
        raise ValueError(f"model 'attention_rnn': rnn_layers must be >= 1, got {rnn_layers!r}")
    init = SeededInitializers(seed)
    x = inputs = keras.Input(shape)
    for i in range(int(rnn_layers)):
        if cell == "lstm":
            x = init.lstm(int(units), True, f"lstm_{i + 1}")(x)
        else:
            x = keras.layers.GRU(int(units), return_sequences=True, name=f"gru_{i + 1}",
                                 kernel_initializer=init.glorot_uniform(),
                                 recurrent_initializer=init.orthogonal())(x)
    x = AttentionPooling(int(attention_units), kernel_initializer=init.glorot_uniform(),
                         score_initializer=init.glorot_uniform(), name="attention")(x)
    x = init.dense(int(hidden_units), "relu", "embedding_layer")(x)
    outputs = init.dense(num_classes, "softmax", "softmax")(x)
    return keras.Model(inputs, outputs, name="attention_rnn")


def fusion_mlp_003(input_shape: Sequence[int] = (8,), num_classes: int = 4, *,
                   hidden_units: Sequence[int] = (8, 4), seed: Optional[int] = None):
    """Paper 003's decision-level fusion: a three-layer perceptron on the branches' probabilities.

    "The input and output of each layer are set to (8, 8), (8, 4) and (4, 4)": the two
    branches' four class probabilities concatenated (8), hidden layers of 8 and 4, softmax.

    Examples
    --------
    >>> fusion_mlp_003().count_params()
    128
    """
    import keras

    from tff_ser.models import SeededInitializers, check_rank
    shape = check_rank("fusion_mlp", input_shape, 1, "(branches x classes,)")
    init = SeededInitializers(seed)
    x = inputs = keras.Input(shape)
    for i, units in enumerate(hidden_units):
        x = init.dense(int(units), "relu", f"fc_{i + 1}")(x)
    outputs = init.dense(num_classes, "softmax", "softmax")(x)
    return keras.Model(inputs, outputs, name="fusion_mlp")
