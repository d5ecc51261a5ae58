"""DARTS in Keras: paper 003's spectrogram search space, its search network and the derived cell.

Paper 003 (Sun et al., *EmotionNAS*, section 2.1 and 3.3) searches the
spectrogram branch with DARTS (Liu, Simonyan & Yang 2019): the network is
``L`` cells (normal ones, and reduction ones at a third and two thirds of the
depth), each a small DAG of ``N = 4`` nodes; every edge ``i -> j`` is a
*mixed operation*

    x_j = sum_o softmax(theta^(i,j))_o * o(x_i)          (paper 003, eq. 1-2)

over the 8 candidates of :data:`PRIMITIVES` (3x3 max and average pooling,
skip connection, 3x3 and 5x5 separable convolutions, 3x3 and 5x5 dilated
convolutions, no connection).  The architecture parameters ``theta`` (one
``(edges, 8)`` matrix for all normal cells, one for all reduction cells) are
trained on a validation split and the weights on a training split (eq. 3,
first-order: :mod:`tff_ser.engines.fednas`).  At the end each node keeps its
two strongest incoming edges and each edge its strongest operation other than
``none`` (:func:`derive_genotype`); the :class:`Genotype` is saved as JSON
and rebuilt as a plain Keras model (:func:`derived_network`).

Follows the DARTS reference code (``quark0/darts``, ``model_search.py``,
``operations.py``, ``genotypes.py``) with three changes, each for a reason:

* **GroupNorm, not BatchNorm.**  DARTS normalises with BatchNorm (no affine
  parameters while searching).  FedAvg -- TFF's process and this package's
  engines -- averages trainable weights only and keeps the server's
  non-trainable ones, so BatchNorm's moving statistics would stay at their
  initial values on the server; and BatchNorm is known to fail under
  non-IID clients (Hsieh et al. 2020, "The non-IID data quagmire of
  decentralized machine learning"), who replace it by GroupNorm.  Every
  normalisation here is ``GroupNormalization`` with :func:`norm_groups`
  groups (2 for the even channel counts of paper 003's ``C = 6``), without
  scale and offset in the search network and with them in the derived one.
* **Dilated convolutions with stride 2** (reduction cells) are computed at
  stride 1 and subsampled: TensorFlow's convolutions refuse a dilation with
  a stride, and with ``same`` padding the two are the same numbers.
* **Factorized reduction** pads the shifted branch back to the input size,
  so odd sizes (140 -> 70 -> 35 -> 18) give equal halves.

The derived network keeps DARTS's stem (a 3x3 convolution to ``3 C``
channels), cell wiring (a cell reads the outputs of the two cells before it)
and classifier (global average pooling, softmax); it has no auxiliary head
and no drop-path, which paper 003 does not mention.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Paper 003's 8 candidate operations (section 3.3), in DARTS's order and names.
PRIMITIVES: Tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")

#: Paper 003's search settings: N = 4 nodes per cell, L = 3 cells, C = 6 channels.
NODES, CELLS, CHANNELS = 4, 3, 6
#: DARTS's stem width: the stem convolution outputs ``STEM_MULTIPLIER * C`` channels.
STEM_MULTIPLIER = 3


def edge_count(nodes: int = NODES) -> int:
    """Edges of a cell of ``nodes`` nodes: node ``i`` reads the 2 inputs and nodes ``< i``."""
    return sum(2 + i for i in range(nodes))


def reduction_cells(cells: int) -> Tuple[int, ...]:
    """Which cells reduce (stride 2, channels doubled): DARTS's ``L // 3`` and ``2 L // 3``."""
    return tuple(sorted({cells // 3, 2 * cells // 3}))


def norm_groups(channels: int) -> int:
    """GroupNorm groups for ``channels``: 2 when even, else 1 (a layer norm per clip)."""
    return 2 if channels % 2 == 0 else 1


# --------------------------------------------------------------------------
# genotype
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Genotype:
    """A derived cell pair, as DARTS writes it.

    ``normal`` and ``reduce`` list, for node 0, 1, ... in turn, its two
    incoming edges as ``(operation, input)``: input 0 and 1 are the cell's
    inputs (the outputs of the cells two back and one back), input ``k >= 2``
    is node ``k - 2``.  The cell's output concatenates the nodes in
    ``*_concat`` (all intermediate nodes: ``range(2, 2 + N)``).
    """

    normal: Tuple[Tuple[str, int], ...]
    normal_concat: Tuple[int, ...]
    reduce: Tuple[Tuple[str, int], ...]
    reduce_concat: Tuple[int, ...]

    def __post_init__(self):
        for kind in ("normal", "reduce"):
            edges = tuple((str(op), int(i)) for op, i in getattr(self, kind))
            concat = tuple(int(i) for i in getattr(self, f"{kind}_concat"))
            object.__setattr__(self, kind, edges)
            object.__setattr__(self, f"{kind}_concat", concat)
            if len(edges) % 2 or not edges:
                raise ValueError(f"genotype {kind} cell: {len(edges)} edges; a cell has two "
                                 "edges per node")
            for k, (op, source) in enumerate(edges):
                node = k // 2
                if op not in PRIMITIVES or op == "none":
                    raise ValueError(f"genotype {kind} cell: unknown operation {op!r}; choose "
                                     f"from {PRIMITIVES[1:]}")
                if not 0 <= source < node + 2:
                    raise ValueError(f"genotype {kind} cell: node {node} reads input {source}, "
                                     f"but only inputs 0..{node + 1} exist before it")
            if not concat or any(not 2 <= i < 2 + len(edges) // 2 for i in concat):
                raise ValueError(f"genotype {kind}_concat {concat} names no node of the cell")

    @property
    def nodes(self) -> int:
        return len(self.normal) // 2

    def to_frame(self):
        """One row per edge: cell (normal / reduce), node, its input, the operation."""
        import pandas as pd

        return pd.DataFrame([{"cell": kind, "node": k // 2, "input": input_name(i),
                              "operation": op}
                             for kind in ("normal", "reduce")
                             for k, (op, i) in enumerate(getattr(self, kind))])

    def picks(self, kind: str) -> Tuple[Tuple[str, str], ...]:
        """The ``kind`` cell's chosen ``(edge label, operation)`` pairs, labelled as
        :func:`edge_labels` labels the rows of ``theta``."""
        return tuple((edge_label(k // 2, i), op) for k, (op, i) in enumerate(getattr(self, kind)))

    def to_dict(self) -> dict:
        return {"normal": [list(e) for e in self.normal], "normal_concat": list(self.normal_concat),
                "reduce": [list(e) for e in self.reduce], "reduce_concat": list(self.reduce_concat)}

    @classmethod
    def from_dict(cls, data: dict) -> "Genotype":
        missing = {"normal", "normal_concat", "reduce", "reduce_concat"} - set(data)
        if missing:
            raise ValueError(f"a genotype needs keys normal, normal_concat, reduce, "
                             f"reduce_concat; missing {sorted(missing)}")
        return cls(tuple(tuple(e) for e in data["normal"]), tuple(data["normal_concat"]),
                   tuple(tuple(e) for e in data["reduce"]), tuple(data["reduce_concat"]))

    def save(self, path) -> None:
        from tff_ser.rundir import atomic_write_bytes
        atomic_write_bytes(os.fspath(path),
                           (json.dumps(self.to_dict(), indent=1) + "\n").encode())

    @classmethod
    def load(cls, path) -> "Genotype":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


#: DARTS's published CIFAR-10 cell ("DARTS_V2", second order; ``genotypes.py`` of the DARTS
#: code): :func:`derived_network`'s default, a cell searched on another task.
DARTS_V2 = Genotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    normal_concat=(2, 3, 4, 5),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
    reduce_concat=(2, 3, 4, 5))


def as_genotype(genotype) -> Genotype:
    """A :class:`Genotype` from itself, its dict, or the path of its JSON file."""
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, dict):
        return Genotype.from_dict(genotype)
    if isinstance(genotype, (str, os.PathLike)):
        if not os.path.isfile(genotype):
            raise FileNotFoundError(f"no genotype file at {genotype}; a search writes "
                                    "genotype.json into its run folder")
        return Genotype.load(genotype)
    raise TypeError(f"a genotype is a Genotype, its dict or a JSON path; got "
                    f"{type(genotype).__name__}")


def input_name(source: int) -> str:
    """A node's input as DARTS writes it: ``c_{k-2}``, ``c_{k-1}`` (the two cells
    before) or ``node j``."""
    return ("c_{k-2}", "c_{k-1}")[source] if source < 2 else f"node {source - 2}"


def edge_label(node: int, source: int) -> str:
    """``"node 1 <- c_{k-1}"``: the edge into ``node`` from input ``source``."""
    return f"node {node} <- {input_name(source)}"


def edge_labels(nodes: int = NODES) -> Tuple[str, ...]:
    """One label per row of a cell's ``theta``, in its order (node 0's two inputs,
    node 1's three, ...)."""
    return tuple(edge_label(node, source) for node in range(nodes) for source in range(node + 2))


def edge_weights(theta) -> np.ndarray:
    """``softmax(theta)`` per edge: the mixed operation's weight on each of
    :data:`PRIMITIVES` (each row sums to 1)."""
    theta = np.asarray(theta, dtype=np.float64)
    e = np.exp(theta - theta.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def derive_cell(weights: np.ndarray, nodes: int = NODES) -> Tuple[Tuple[str, int], ...]:
    """DARTS's discretisation of one cell's softmaxed architecture weights.

    For every node, the two incoming edges whose strongest operation other
    than ``none`` weighs most, each with that operation.

    Parameters
    ----------
    weights : ndarray, shape (edge_count(nodes), len(PRIMITIVES))
        ``softmax(theta)`` per edge, edges in node order (node 0's two
        inputs, node 1's three, ...).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (edge_count(nodes), len(PRIMITIVES)):
        raise ValueError(f"architecture weights of shape {weights.shape}; a cell of {nodes} "
                         f"nodes has ({edge_count(nodes)}, {len(PRIMITIVES)})")
    none = PRIMITIVES.index("none")
    real = np.delete(np.arange(len(PRIMITIVES)), none)
    chosen: List[Tuple[str, int]] = []
    start = 0
    for node in range(nodes):
        rows = weights[start:start + node + 2]
        strength = rows[:, real].max(axis=1)
        # stable: a tie keeps the earlier input, as sorted() does in DARTS's genotype()
        inputs = sorted(np.argsort(-strength, kind="stable")[:2].tolist())
        for i in inputs:
            chosen.append((PRIMITIVES[int(real[np.argmax(rows[i, real])])], int(i)))
        start += node + 2
    return tuple(chosen)


def derive_genotype(alpha_normal, alpha_reduce, nodes: int = NODES) -> Genotype:
    """The :class:`Genotype` of architecture parameters ``theta`` (softmaxed per edge here)."""
    concat = tuple(range(2, 2 + nodes))
    return Genotype(derive_cell(edge_weights(alpha_normal), nodes), concat,
                    derive_cell(edge_weights(alpha_reduce), nodes), concat)


# --------------------------------------------------------------------------
# operations
# --------------------------------------------------------------------------

def _layers():
    # Keras on first use: the genotype half of this module stays TF-free
    import keras
    from tff_ser.models import SeededInitializers
    return keras, SeededInitializers


def _norm(channels: int, affine: bool, name: str):
    keras, _ = _layers()
    return keras.layers.GroupNormalization(norm_groups(channels), center=affine, scale=affine,
                                           epsilon=1e-5, name=name)


def _conv_stack(init, x, channels: int, kernel: int, stride: int, dilation: int, affine: bool,
                name: str):
    """ReLU -> depthwise k x k (dilated) -> pointwise 1 x 1 -> norm, at ``stride``."""
    keras, _ = _layers()
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.SeparableConv2D(
        channels, kernel, strides=1 if dilation > 1 else stride, padding="same",
        dilation_rate=dilation, use_bias=False, name=f"{name}_conv",
        depthwise_initializer=init.glorot_uniform(),
        pointwise_initializer=init.glorot_uniform())(x)
    if dilation > 1 and stride > 1:
        # TF convolutions refuse dilation with a stride; with `same` padding the
        # strided output is every stride-th output of the stride-1 one
        x = keras.layers.Lambda(lambda t: t[:, ::stride, ::stride, :], name=f"{name}_sub")(x)
    return _norm(channels, affine, f"{name}_norm")(x)


def factorized_reduce(init, x, channels: int, affine: bool, name: str):
    """DARTS's ``FactorizedReduce``: two 1x1 stride-2 convolutions, one shifted by a pixel, joined."""
    keras, _ = _layers()
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    shifted = keras.layers.Lambda(_shift_pixel, name=f"{name}_shift")(x)
    half = channels // 2
    # a 1 x 1 convolution at stride 2 reads every other pixel: subsample, then convolve.
    # (TensorFlow's strided 1 x 1 convolution corrupts the heap in its gradient when it
    # widens the channels: glibc aborts, on TF 2.14 and 2.20 alike.)
    x, shifted = (keras.layers.Lambda(_every_other_pixel, name=f"{name}_sub{i}")(t)
                  for i, t in ((1, x), (2, shifted)))
    a = keras.layers.Conv2D(half, 1, padding="same", use_bias=False,
                            kernel_initializer=init.glorot_uniform(), name=f"{name}_conv_1")(x)
    b = keras.layers.Conv2D(channels - half, 1, padding="same", use_bias=False,
                            kernel_initializer=init.glorot_uniform(), name=f"{name}_conv_2")(shifted)
    x = keras.layers.Concatenate(name=f"{name}_cat")([a, b])
    return _norm(channels, affine, f"{name}_norm")(x)


def _every_other_pixel(t):
    return t[:, ::2, ::2, :]


def _shift_pixel(t):
    """``t`` moved up and left by one pixel, zero-padded back to its size."""
    import tensorflow as tf
    return tf.pad(t[:, 1:, 1:, :], [[0, 0], [0, 1], [0, 1], [0, 0]])


def relu_conv_norm(init, x, channels: int, affine: bool, name: str):
    """DARTS's ``ReLUConvBN`` with a 1 x 1 kernel: how a cell adapts its inputs' channels."""
    keras, _ = _layers()
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.Conv2D(channels, 1, padding="same", use_bias=False,
                            kernel_initializer=init.glorot_uniform(), name=f"{name}_conv")(x)
    return _norm(channels, affine, f"{name}_norm")(x)


def operation(op: str, init, x, channels: int, stride: int, affine: bool, name: str):
    """The output of candidate ``op`` (one of :data:`PRIMITIVES`) on ``x`` (functional Keras).

    As DARTS's ``OPS``: separable convolutions apply their ReLU-depthwise-
    pointwise-norm block twice (the second at stride 1), dilated ones once
    with dilation 2; ``skip_connect`` at stride 2 is a factorized reduction;
    while searching (``affine=False``) pooling is followed by a norm, as
    DARTS's ``MixedOp`` does.
    """
    keras, _ = _layers()
    if op == "none":
        return keras.layers.Lambda(lambda t: t[:, ::stride, ::stride, :] * 0.0,
                                   name=f"{name}_zero")(x)
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        pool = keras.layers.MaxPool2D if op.startswith("max") else keras.layers.AveragePooling2D
        y = pool(3, strides=stride, padding="same", name=f"{name}_pool")(x)
        return y if affine else _norm(channels, False, f"{name}_pnorm")(y)
    if op == "skip_connect":
        return x if stride == 1 else factorized_reduce(init, x, channels, affine, name)
    kernel = int(op[-1])
    if op.startswith("sep_conv"):
        y = _conv_stack(init, x, channels, kernel, stride, 1, affine, f"{name}_a")
        return _conv_stack(init, y, channels, kernel, 1, 1, affine, f"{name}_b")
    if op.startswith("dil_conv"):
        return _conv_stack(init, x, channels, kernel, stride, 2, affine, name)
    raise ValueError(f"unknown operation {op!r}; choose from {PRIMITIVES}")


# --------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------

def _spectrogram_input(input_shape: Sequence[int], input_pool: int, name: str):
    """The network's input and its image: channels added, ``input_pool`` x ``input_pool`` averaged."""
    keras, _ = _layers()
    from tff_ser.models import check_rank
    shape = tuple(int(d) for d in input_shape)
    image = check_rank(name, shape + (1,) if len(shape) == 2 else shape, 3,
                       "(time, frequency) or (time, frequency, channels)")
    if isinstance(input_pool, bool) or not isinstance(input_pool, (int, np.integer)) \
            or input_pool < 1 or input_pool > min(image[:2]):
        raise ValueError(f"model {name!r}: input_pool must be an integer from 1 to "
                         f"{min(image[:2])}; got {input_pool!r}")
    inputs = keras.Input(shape)
    x = keras.layers.Reshape(image, name="add_channel")(inputs)
    if input_pool > 1:
        x = keras.layers.AveragePooling2D(int(input_pool), name="input_pool")(x)
    return inputs, x


def _check_sizes(name: str, cells: int, channels: int, nodes: int) -> None:
    for label, value, low in (("cells (L)", cells, 1), ("channels (C)", channels, 2),
                              ("nodes (N)", nodes, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"model {name!r}: {label} must be an integer >= {low}; got {value!r}")


#: Name of the search network's layer that holds the architecture parameters.
ARCHITECTURE_LAYER = "architecture"


def initial_architecture(edges: int, seed: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """DARTS's initial ``theta``: ``1e-3 * N(0, 1)`` per entry, normal and reduction apart.

    Drawn with NumPy from ``seed``, so both stacks start a search from the
    same numbers (``None``: fresh random ones).
    """
    rng = np.random.default_rng(None if seed is None else (int(seed), 0xA7C))
    shape = (edges, len(PRIMITIVES))
    return (1e-3 * rng.standard_normal(shape)).astype(np.float32), \
        (1e-3 * rng.standard_normal(shape)).astype(np.float32)


def _architecture_layer(edges: int, seed: Optional[int]):
    keras, _ = _layers()
    normal, reduce = initial_architecture(edges, seed)

    class Architecture(keras.layers.Layer):
        """``theta`` of the normal and the reduction cells; outputs their softmaxes."""

        def build(self, input_shape):
            self.alpha_normal = self.add_weight(
                name="alpha_normal", shape=normal.shape, trainable=True,
                initializer=keras.initializers.Constant(normal))
            self.alpha_reduce = self.add_weight(
                name="alpha_reduce", shape=reduce.shape, trainable=True,
                initializer=keras.initializers.Constant(reduce))
            super().build(input_shape)

        def call(self, x):
            import tensorflow as tf
            # the same for every clip: x only places the layer in the functional graph
            return (tf.nn.softmax(self.alpha_normal, axis=-1),
                    tf.nn.softmax(self.alpha_reduce, axis=-1))

    return Architecture


def _cells_and_classifier(init, x, cells: int, channels: int, num_classes: int, affine: bool,
                          cell):
    """DARTS's network around its cells: the stem (3 x 3 convolution to ``3 C`` channels),
    ``cells`` cells -- each reading the two cells before it through 1 x 1 (or factorized-
    reduction) preprocessing, channels doubled at reduction cells -- then global average
    pooling and softmax.  ``cell(p0, p1, channels, reduction, name)`` builds one cell."""
    keras, _ = _layers()
    c_curr = STEM_MULTIPLIER * channels
    stem = keras.layers.Conv2D(c_curr, 3, padding="same", use_bias=False, name="stem_conv",
                               kernel_initializer=init.glorot_uniform())(x)
    s0 = s1 = _norm(c_curr, True, "stem_norm")(stem)
    c, reduction_prev = channels, False
    for k in range(cells):
        reduction = k in reduction_cells(cells)
        c = 2 * c if reduction else c
        name = f"cell_{k}"
        p0 = (factorized_reduce(init, s0, c, affine, f"{name}_pre0") if reduction_prev
              else relu_conv_norm(init, s0, c, affine, f"{name}_pre0"))
        p1 = relu_conv_norm(init, s1, c, affine, f"{name}_pre1")
        s0, s1 = s1, cell(p0, p1, c, reduction, name)
        reduction_prev = reduction
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(s1)
    return init.dense(num_classes, "softmax", "softmax")(pooled)


def darts_search_network(input_shape: Sequence[int] = (140, 140), num_classes: int = 4, *,
                         cells: int = CELLS, channels: int = CHANNELS, nodes: int = NODES,
                         input_pool: int = 1, seed: Optional[int] = None):
    """Paper 003's DARTS search network ("supernet") for spectrograms.

    Every edge of every cell is the softmax-weighted sum of all 8 candidate
    operations (:data:`PRIMITIVES`); the architecture parameters are the two
    weights of the layer named ``"architecture"`` (``alpha_normal``,
    ``alpha_reduce``, each ``(edge_count(nodes), 8)``, DARTS's initial
    ``1e-3 * N(0, 1)``), found by :func:`architecture_variables`.

    Parameters
    ----------
    input_shape : (time, frequency) or (time, frequency, channels)
        Paper 003's spectrogram is (140, 140).
    cells, channels, nodes : int
        ``L``, ``C`` and ``N`` (paper 003: 3, 6, 4).
    input_pool : int
        Average the input's ``input_pool`` x ``input_pool`` blocks first
        (1: none, the paper).  A search costs in proportion to the pixels:
        2 makes it 4 times cheaper (:mod:`tff_ser.baselines.paper003`).

    Examples
    --------
    >>> darts_search_network().count_params()   # paper 003 Table 3: 0.13 M at L = 3, C = 6
    132498
    """
    keras, SeededInitializers = _layers()
    _check_sizes("darts_search", cells, channels, nodes)
    init = SeededInitializers(seed)
    inputs, x = _spectrogram_input(input_shape, input_pool, "darts_search")
    w_normal, w_reduce = _architecture_layer(edge_count(nodes), seed)(name=ARCHITECTURE_LAYER)(x)

    def cell(p0, p1, c, reduction, name):
        weights = w_reduce if reduction else w_normal
        states = [p0, p1]
        edge = 0
        for node in range(nodes):
            terms = []
            for i, h in enumerate(states):
                stride = 2 if reduction and i < 2 else 1
                outs = [operation(op, init, h, c, stride, False, f"{name}_e{edge}_{op}")
                        for op in PRIMITIVES]
                terms.append(MixedSum(edge, name=f"{name}_e{edge}_mix")([weights] + outs))
                edge += 1
            states.append(keras.layers.Add(name=f"{name}_n{node}")(terms)
                          if len(terms) > 1 else terms[0])
        return keras.layers.Concatenate(name=f"{name}_out")(states[2:])

    outputs = _cells_and_classifier(init, x, cells, channels, num_classes, False, cell)
    return keras.Model(inputs, outputs, name="darts_search")


def _mixed_sum_class():
    keras, _ = _layers()

    class _MixedSum(keras.layers.Layer):
        """``sum_o w[edge, o] * o(x)``: one edge's mixed operation (paper 003, eq. 2)."""

        def __init__(self, edge: int, **kwargs):
            super().__init__(**kwargs)
            self.edge = int(edge)

        def call(self, inputs):
            weights, outs = inputs[0], inputs[1:]
            total = outs[0] * weights[self.edge, 0]
            for o, out in enumerate(outs[1:], start=1):
                total = total + out * weights[self.edge, o]
            return total

        def compute_output_shape(self, input_shape):
            return input_shape[1]

        def get_config(self):
            return {**super().get_config(), "edge": self.edge}

    return _MixedSum


def MixedSum(edge: int, **kwargs):  # noqa: N802 - a layer factory, named as the layer
    """The layer of one mixed edge (built on first use, so importing this module loads no Keras)."""
    if "cls" not in _MIXED:
        _MIXED["cls"] = _mixed_sum_class()
    return _MIXED["cls"](edge, **kwargs)


_MIXED: dict = {}


def architecture_variables(model) -> list:
    """The architecture parameters ``theta`` of a search network (normal, then reduction)."""
    try:
        layer = model.get_layer(ARCHITECTURE_LAYER)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {ARCHITECTURE_LAYER!r}: it "
                         "is no DARTS search network (tff_ser.darts.darts_search_network)") from None
    return [layer.alpha_normal, layer.alpha_reduce]


def search_genotype(model, nodes: Optional[int] = None) -> Genotype:
    """The genotype a search network's current architecture parameters derive."""
    a_normal, a_reduce = (np.asarray(v.numpy()) for v in architecture_variables(model))
    if nodes is None:
        nodes = next(n for n in range(1, 64) if edge_count(n) == a_normal.shape[0])
    return derive_genotype(a_normal, a_reduce, nodes)


def derived_network(input_shape: Sequence[int] = (140, 140), num_classes: int = 4, *,
                    genotype=None, cells: int = CELLS, channels: int = CHANNELS,
                    input_pool: int = 1, seed: Optional[int] = None):
    """The discrete network of a searched :class:`Genotype` (paper 003's spectrogram branch).

    Each node sums its two chosen operations; the cell outputs the
    concatenation of ``*_concat``; norms carry scale and offset.

    Parameters
    ----------
    genotype : Genotype, dict or path, optional
        From a search (``genotype.json``) or :func:`derive_genotype`; default
        :data:`DARTS_V2`, the cell DARTS found on CIFAR-10.
    cells, channels : int
        ``L`` and ``C`` of the network trained from scratch (paper 003: 3 and 6,
        as searched; its Table 3 varies them).
    input_pool : int
        As :func:`darts_search_network`'s.
    """
    keras, SeededInitializers = _layers()
    genotype = DARTS_V2 if genotype is None else as_genotype(genotype)
    _check_sizes("darts_derived", cells, channels, genotype.nodes)
    init = SeededInitializers(seed)
    inputs, x = _spectrogram_input(input_shape, input_pool, "darts_derived")

    def cell(p0, p1, c, reduction, name):
        edges = genotype.reduce if reduction else genotype.normal
        concat = genotype.reduce_concat if reduction else genotype.normal_concat
        states = [p0, p1]
        for node in range(len(edges) // 2):
            terms = []
            for j in (0, 1):
                op, source = edges[2 * node + j]
                stride = 2 if reduction and source < 2 else 1
                terms.append(operation(op, init, states[source], c, stride, True,
                                       f"{name}_n{node}_{j}_{op}"))
            states.append(keras.layers.Add(name=f"{name}_n{node}")(terms))
        outs = [states[i] for i in concat]
        return keras.layers.Concatenate(name=f"{name}_out")(outs) if len(outs) > 1 else outs[0]

    outputs = _cells_and_classifier(init, x, cells, channels, num_classes, True, cell)
    return keras.Model(inputs, outputs, name="darts_derived")
