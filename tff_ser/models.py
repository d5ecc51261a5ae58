"""The papers' Keras models, as uncompiled builders TFF can wrap.

Every builder returns a *fresh, uncompiled* ``keras.Sequential`` whose
last layer is a softmax, so the loss to pair with any of them is
``keras.losses.SparseCategoricalCrossentropy(from_logits=False)``.  The
models are written against the ``keras`` API: Keras 2.14 on the reference
stack, Keras 3 on the current one (:mod:`tff_ser.stack`).
TFF's ``model_fn`` must build a new model on every call, which is why the
registry holds builders rather than models.

Models
------
Paper 001 (Chau & Garces), input ``(100, 34)``: 100 windows of 0.2 s, 34
pyAudioAnalysis short-term features each.  Layer sizes follow the paper's
Keras summaries (Figs 4-6) exactly, and the parameter counts match them:

* ``"dense"`` (Fig 4, 26,008,068 parameters): Conv1D 512 k3 -> Dropout ->
  Flatten -> Dense 512 -> Dropout -> Dense 512 ``embedding_layer`` ->
  Dropout -> Dense 4 softmax.  The paper calls it "Dense"/"deep neural
  network" although its first layer is a convolution.
* ``"conv1d"`` (Fig 6, 1,832,004): Conv1D 512/128/128/64, k3, each followed
  by Dropout -> Flatten -> Dense 256 ``embedding_layer`` -> Dropout ->
  Dense 4 softmax.
* ``"lstm"`` (Fig 5, 3,484,164): LSTM 512 (sequences) -> LSTM 512 ->
  Dense 512 ``embedding_layer`` -> Dense 4 softmax.  No dropout: Fig 5 has
  none.

The summaries give neither activations nor dropout rates.  Hidden Conv1D and
Dense layers use ReLU, as in the Tripathi et al. (2018) IEMOCAP code the
paper says its models derive from; LSTMs keep Keras' tanh/sigmoid.  Dropout
rate defaults to 0.2 (paper 000's rate for its MLP) and is the
``dropout_rate`` keyword of the builders.

Paper 000 (Mishchenko et al.), input ``(136,)`` clip statistics:

* ``"mlp"``: Dense 256 ReLU -> Dropout 0.2 -> Dense 128 ReLU -> Dropout 0.2
  -> Dense softmax, as stated in section IV.A.

Paper 004 (Latif et al.), input ``(300, 40)`` = 3 s of 40-d log Mel
filterbank at a 10 ms step.  The paper names the layers but not their
sizes; the sizes below are this package's choice, small enough to train
federated on a CPU:

* ``"cnn_logmel"``: one Conv2D over (time, mel) -> one MaxPool2D -> two
  fully connected ReLU layers -> softmax.  Defaults: 16 filters of 5x5,
  4x4 pooling, FC 128 and 64 (about 1.55 M parameters).
* ``"lstm_logmel"``: one LSTM -> two fully connected ReLU layers ->
  softmax.  Defaults: LSTM 128, FC 128 and 64 (about 112 k parameters).

"Two fully connected layers followed by a softmax layer" is read as two
hidden layers plus the softmax output layer.

Seeds
-----
``build_model(..., seed=s)`` gives every weight initializer its own seed
derived from ``s`` (``numpy.random.SeedSequence``), so two builds with the
same seed start from identical weights, and no global random state
(Python, NumPy, TensorFlow) is touched.  Dropout layers are
:class:`tff_ser.layers.ReproducibleDropout`: their masks are a function of
the input batch, so the same seed gives the same training run under TFF's
C++ runtime, after a resume, and in Keras ``fit`` alike.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import keras

from tff_ser.layers import Keras2GlorotUniform, Keras2Orthogonal, ReproducibleDropout
from tff_ser.stack import keras_major

#: Input shape of each feature kind (see ``tff_ser.features``).
FEATURE_SHAPES: Dict[str, Tuple[int, ...]] = {
    "paper001": (100, 34),
    "clip_stats": (136,),
    "logmel": (300, 40),
    "egemaps": (88,),
    "compare": (6373,),
}


class _Initializers:
    """Fresh Keras initializers, each with its own seed derived from one seed.

    Keras 2.14 gives identical values to every variable created from one
    seeded initializer instance, so each variable needs a distinct seed.
    With ``seed=None`` the Keras defaults (unseeded) are returned.

    Keras 3 draws seeded initial weights with another generator, so on the
    current stack the seeded initializers are :class:`~tff_ser.layers.Keras2GlorotUniform`
    and :class:`~tff_ser.layers.Keras2Orthogonal`, which compute Keras 2.14's
    values: the same seed builds the same initial model on both stacks
    (``tests/test_stack.py`` checks them against weights saved on the
    reference stack).
    """

    def __init__(self, seed: Optional[int]):
        self._seed = None if seed is None else int(seed)
        self._count = 0
        self._keras_2 = keras_major() == 2

    def _next(self) -> Optional[int]:
        if self._seed is None:
            return None
        self._count += 1
        # Hashing (seed, n) keeps seeds s and s + 1 from sharing streams shifted by one layer.
        return int(np.random.SeedSequence((self._seed, self._count)).generate_state(1)[0] % (2**31 - 1))

    def glorot_uniform(self):
        seed = self._next()
        if seed is None or self._keras_2:
            return keras.initializers.GlorotUniform(seed=seed)
        return Keras2GlorotUniform(seed)

    def orthogonal(self):
        seed = self._next()
        if seed is None or self._keras_2:
            return keras.initializers.Orthogonal(seed=seed)
        return Keras2Orthogonal(seed)

    def dense(self, units: int, activation: Optional[str], name: str) -> keras.layers.Dense:
        return keras.layers.Dense(units, activation=activation, name=name,
                                     kernel_initializer=self.glorot_uniform())

    def conv1d(self, filters: int, kernel_size: int, name: str) -> keras.layers.Conv1D:
        return keras.layers.Conv1D(filters, kernel_size, activation="relu", name=name,
                                      kernel_initializer=self.glorot_uniform())

    def lstm(self, units: int, return_sequences: bool, name: str) -> keras.layers.LSTM:
        return keras.layers.LSTM(units, return_sequences=return_sequences, name=name,
                                    kernel_initializer=self.glorot_uniform(),
                                    recurrent_initializer=self.orthogonal())


def _check_rate(dropout_rate: float) -> float:
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate!r}")
    return float(dropout_rate)


def _check_rank(name: str, input_shape: Sequence[int], rank: int, meaning: str) -> Tuple[int, ...]:
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != rank or any(d < 1 for d in shape):
        raise ValueError(f"model {name!r} takes inputs of shape {meaning} (rank {rank}, "
                         f"positive sizes); got input_shape={tuple(input_shape)}")
    return shape


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
    shape = _check_rank("dense", input_shape, 2, "(time, features)")
    rate = _check_rate(dropout_rate)
    init = _Initializers(seed)
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
    shape = _check_rank("conv1d", input_shape, 2, "(time, features)")
    if shape[0] < 9:
        raise ValueError(f"model 'conv1d' stacks four kernel-3 valid convolutions and needs "
                         f"at least 9 time steps; got input_shape={shape}")
    rate = _check_rate(dropout_rate)
    init = _Initializers(seed)
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
    shape = _check_rank("lstm", input_shape, 2, "(time, features)")
    init = _Initializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.lstm(512, True, "lstm"),
        init.lstm(512, False, "lstm_1"),
        init.dense(512, "relu", "embedding_layer"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="lstm")


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
    shape = _check_rank("mlp", input_shape, 1, "(features,)")
    rate = _check_rate(dropout_rate)
    init = _Initializers(seed)
    layers = [keras.Input(shape)]
    for i, units in enumerate(hidden_units):
        layers += [init.dense(int(units), "relu", f"dense_{i}"),
                   ReproducibleDropout(rate, name=f"dropout_{i}")]
    layers.append(init.dense(num_classes, "softmax", "softmax"))
    return keras.Sequential(layers, name="mlp")


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
    shape = _check_rank("cnn_logmel", input_shape, 2, "(time, mel bands)")
    if shape[0] < pool_size[0] or shape[1] < pool_size[1]:
        raise ValueError(f"model 'cnn_logmel' pools {tuple(pool_size)} and needs inputs at least "
                         f"that large; got input_shape={shape}")
    init = _Initializers(seed)
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
    shape = _check_rank("lstm_logmel", input_shape, 2, "(time, mel bands)")
    init = _Initializers(seed)
    return keras.Sequential([
        keras.Input(shape),
        init.lstm(int(lstm_units), False, "lstm"),
        init.dense(int(hidden_units[0]), "relu", "fc_1"),
        init.dense(int(hidden_units[1]), "relu", "fc_2"),
        init.dense(num_classes, "softmax", "softmax"),
    ], name="lstm_logmel")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Parameters
    ----------
    name : str
        Registry key (``build_model(name)``).
    builder : callable
        ``builder(input_shape, num_classes, *, seed=None, **hyperparameters)``
        returning a fresh uncompiled ``keras.Model`` with softmax output.
    feature_kind : str
        ``"paper001"``, ``"clip_stats"`` or ``"logmel"``: the features it reads.
    input_shape : tuple of int
        Shape of one example for that feature kind.
    paper : str
        Seed-paper id (``"000"``, ``"001"``, ``"004"``) and where in it.
    description : str
        One line for tables and ``--help``.
    """

    name: str
    builder: Callable[..., keras.Model]
    feature_kind: str
    input_shape: Tuple[int, ...]
    paper: str
    description: str


MODELS: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("dense", dense_001, "paper001", FEATURE_SHAPES["paper001"], "001 Fig 4",
              "Conv1D 512 -> Dense 512 -> Dense 512 -> softmax, 26.0 M parameters"),
    ModelSpec("conv1d", conv1d_001, "paper001", FEATURE_SHAPES["paper001"], "001 Fig 6",
              "4 x Conv1D (512/128/128/64) -> Dense 256 -> softmax, 1.83 M parameters"),
    ModelSpec("lstm", lstm_001, "paper001", FEATURE_SHAPES["paper001"], "001 Fig 5",
              "LSTM 512 -> LSTM 512 -> Dense 512 -> softmax, 3.48 M parameters"),
    ModelSpec("mlp", mlp_000, "clip_stats", FEATURE_SHAPES["clip_stats"], "000 IV.A",
              "MLP [256, 128] ReLU, dropout 0.2 -> softmax"),
    ModelSpec("mlp_egemaps", mlp_000, "egemaps", FEATURE_SHAPES["egemaps"], "000 IV.A",
              "paper 000's MLP on openSMILE's 88 eGeMAPSv02 functionals"),
    ModelSpec("mlp_compare", mlp_000, "compare", FEATURE_SHAPES["compare"], "000 IV.A",
              "paper 000's MLP on openSMILE's 6,373 ComParE_2016 functionals"),
    ModelSpec("cnn_logmel", cnn_logmel_004, "logmel", FEATURE_SHAPES["logmel"], "004 3.2",
              "Conv2D 16x5x5 -> MaxPool 4x4 -> FC 128 -> FC 64 -> softmax (sizes ours)"),
    ModelSpec("lstm_logmel", lstm_logmel_004, "logmel", FEATURE_SHAPES["logmel"], "004 3.2",
              "LSTM 128 -> FC 128 -> FC 64 -> softmax (sizes ours)"),
)}


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name``; ValueError listing the known names."""
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None


def build_model(name: str, *, input_shape: Optional[Sequence[int]] = None, num_classes: int = 4,
                seed: Optional[int] = None, **hyperparameters) -> keras.Model:
    """Build a fresh, uncompiled Keras model from the registry.

    Parameters
    ----------
    name : str
        One of :data:`MODELS` (``dense``, ``conv1d``, ``lstm``, ``mlp``,
        ``cnn_logmel``, ``lstm_logmel``).
    input_shape : tuple of int, optional
        Shape of one example; defaults to the spec's (the paper's) shape.
    num_classes : int
        Number of softmax outputs (4 for NEU/HAP/SAD/ANG).
    seed : int, optional
        Makes the initial weights deterministic (per-initializer seeds; no
        global random state is changed).  ``None``: fresh random weights.
    **hyperparameters
        Passed to the builder (e.g. ``dropout_rate``, ``hidden_units``).

    Returns
    -------
    keras.Model
        Uncompiled; outputs softmax probabilities, so pair it with
        ``SparseCategoricalCrossentropy(from_logits=False)``.

    Examples
    --------
    >>> build_model("mlp", num_classes=4, seed=0).output_shape
    (None, 4)
    """
    spec = get_spec(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
    accepted = [p.name for p in inspect.signature(spec.builder).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "seed"]
    unknown = sorted(set(hyperparameters) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r} does not take {unknown}; its hyperparameters are "
                         f"{accepted or 'none'} (see tff_ser.models.{spec.builder.__name__})")
    shape = spec.input_shape if input_shape is None else tuple(input_shape)
    return spec.builder(shape, int(num_classes), seed=seed, **hyperparameters)


def count_params(name: str, *, input_shape: Optional[Sequence[int]] = None, num_classes: int = 4,
                 **hyperparameters) -> int:
    """Number of trainable + non-trainable weights of ``build_model(name, ...)``.

    Examples
    --------
    >>> count_params("conv1d")
    1832004
    """
    model = build_model(name, input_shape=input_shape, num_classes=num_classes, **hyperparameters)
    return int(model.count_params())


# --------------------------------------------------------------------------
# models as values
# --------------------------------------------------------------------------

def _default_loss():
    return keras.losses.SparseCategoricalCrossentropy()


class KerasModel:
    """A model as a value: a builder with its loss and metrics.

    What training needs of a model, without any registry: every trainer
    (centralized, every federated engine, evaluation) calls :meth:`build`
    for a fresh uncompiled Keras model, :meth:`make_loss` for its loss and
    :meth:`make_metrics` for extra metrics.  Processes and evaluation models
    are cached *by this object* (identity), never by its name, so a second
    ``KerasModel`` -- even one with the same name -- can never reuse the
    first one's compiled process.

    Parameters
    ----------
    builder : callable
        ``builder(input_shape, num_classes)`` (optionally ``seed=``) returning
        a fresh, uncompiled ``keras.Model`` whose outputs are class
        probabilities (or logits, with a matching ``loss``).  A builder that
        takes ``seed`` gets the run's seed; one that does not is built
        under ``keras.utils.set_random_seed(seed)`` with Python's and
        NumPy's global random states restored afterwards.
    name : str, optional
        Label in tables, progress bars and ``result.config["model"]``;
        defaults to the builder's ``__name__``.
    loss : callable, optional
        Zero-argument factory of the Keras loss (TFF wants a fresh one per
        model); default ``SparseCategoricalCrossentropy()`` (softmax outputs).
    metrics : callable, optional
        Zero-argument factory of a list of extra Keras metrics.  Accuracy is
        always computed; these are added to the per-round history on the
        TFF engine (``train_<metric name>``).
    feature_kind : str, optional
        The features it reads, for the experiment layer; ``None`` for a
        model of the user's own task.

    Examples
    --------
    >>> def small(input_shape, num_classes):
    ...     return keras.Sequential([keras.Input(input_shape),
    ...                                 keras.layers.Dense(num_classes, "softmax")])
    >>> KerasModel(small).build((136,), 4, seed=0).output_shape
    (None, 4)
    """

    def __init__(self, builder: Callable[..., keras.Model], *, name: Optional[str] = None,
                 loss: Optional[Callable[[], object]] = None,
                 metrics: Optional[Callable[[], list]] = None,
                 feature_kind: Optional[str] = None, hyperparameters: Optional[dict] = None):
        if not callable(builder):
            raise TypeError(f"a KerasModel needs a callable builder(input_shape, num_classes); "
                            f"got {type(builder).__name__}")
        for label, fn in (("loss", loss), ("metrics", metrics)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{label} must be a zero-argument factory (e.g. "
                                f"lambda: keras.losses.Huber()), got {type(fn).__name__}")
        self.builder = builder
        self.name = str(name or getattr(builder, "__name__", type(builder).__name__))
        self.loss = loss
        self.metrics = metrics
        self.feature_kind = feature_kind
        self.hyperparameters = dict(hyperparameters or {})
        try:
            params = inspect.signature(builder).parameters
            self._takes_seed = "seed" in params or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            self._takes_seed = False

    def __repr__(self) -> str:
        return f"KerasModel({self.name!r})"

    @property
    def default_loss(self) -> bool:
        """True when the loss is the default softmax cross-entropy (what the fast engines implement)."""
        return self.loss is None

    def build(self, input_shape: Sequence[int], num_classes: int,
              seed: Optional[int] = None) -> keras.Model:
        """A fresh, uncompiled model (seeded: the same seed gives the same weights)."""
        shape = tuple(int(d) for d in input_shape)
        if self._takes_seed:
            model = self.builder(shape, int(num_classes), seed=seed, **self.hyperparameters)
        elif seed is None:
            model = self.builder(shape, int(num_classes), **self.hyperparameters)
        else:
            import random
            py_state, np_state = random.getstate(), np.random.get_state()
            keras.utils.set_random_seed(int(seed))
            try:
                model = self.builder(shape, int(num_classes), **self.hyperparameters)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
        if not isinstance(model, keras.Model):
            raise TypeError(f"model builder {self.name!r} returned {type(model).__name__}, "
                            "not a keras.Model")
        if not model.built:
            model.build((None,) + shape)
        return model

    def make_loss(self):
        return _default_loss() if self.loss is None else self.loss()

    def make_metrics(self) -> list:
        return [] if self.metrics is None else list(self.metrics())


_PRESETS: Dict[tuple, KerasModel] = {}


def as_model(model) -> KerasModel:
    """The :class:`KerasModel` behind ``model``.

    ``model`` may be a :class:`KerasModel`, a registry name of
    :data:`MODELS` (a preset), or a bare builder callable (wrapped with the
    default loss).  A preset is keyed by its registered :class:`ModelSpec`,
    so a name re-registered with another builder is another model.
    """
    if isinstance(model, KerasModel):
        return model
    if isinstance(model, str):
        spec = get_spec(model)
        key = (model, spec)
        if key not in _PRESETS:
            _PRESETS[key] = KerasModel(spec.builder, name=spec.name,
                                       feature_kind=spec.feature_kind)
        return _PRESETS[key]
    if callable(model):
        return KerasModel(model)
    raise TypeError(f"a model is a preset name ({', '.join(sorted(MODELS))}), a KerasModel or "
                    f"a builder(input_shape, num_classes); got {type(model).__name__}")


def model_label(model) -> str:
    """The name tables and results use for ``model`` (preset name or ``KerasModel.name``)."""
    return model if isinstance(model, str) else as_model(model).name
