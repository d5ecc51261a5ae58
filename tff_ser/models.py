"""Models: the registry, seeded initializers, and models as values.

A model is a builder of a *fresh, uncompiled* Keras model whose last layer is
a softmax (the loss to pair with it is
``keras.losses.SparseCategoricalCrossentropy(from_logits=False)``); TFF's
``model_fn`` must build a new model on every call, which is why registries
hold builders rather than models.  The models are written against the
``keras`` API: Keras 2.14 on the reference stack, Keras 3 on the current one
(:mod:`tff_ser.stack`).

* :data:`MODELS` / :func:`register_model` / :func:`build_model`: models by
  name.  The papers' presets are registered by their baselines
  (:mod:`tff_ser.baselines`): paper 001's ``dense``, ``conv1d``, ``lstm``,
  paper 000's ``mlp`` (and ``mlp_egemaps``, ``mlp_compare`` on openSMILE's
  sets), paper 004's ``cnn_logmel``, ``lstm_logmel``.
* :class:`KerasModel`: a model of your own as a value, no registration.
* :class:`SeededInitializers`, :func:`check_rank`, :func:`check_rate`: what
  builders use to be seeded and to refuse bad shapes.

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
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from tff_ser.plugins import DiscoveredRegistry
from tff_ser.stack import keras_major

if TYPE_CHECKING:
    import keras


def _keras():
    """Keras, imported on first use: the registry and the CLI's --help stay fast (no TF)."""
    import keras
    return keras

#: Input shape of each feature kind (see ``tff_ser.features``).
FEATURE_SHAPES: Dict[str, Tuple[int, ...]] = {
    "paper001": (100, 34),
    "clip_stats": (136,),
    "logmel": (300, 40),
    "egemaps": (88,),
    "compare": (6373,),
    "spectrogram": (140, 140),
    # not computed from audio: two branches' 4 class probabilities (tff_ser.fusion)
    "fusion": (8,),
}


class SeededInitializers:
    """Fresh Keras initializers, each with its own seed derived from one seed.

    Keras 2.14 gives identical values to every variable created from one
    seeded initializer instance, so each variable needs a distinct seed.
    With ``seed=None`` the Keras defaults (unseeded) are returned.

    Keras 3 draws seeded initial weights with another generator, so on the
    current stack the seeded initializers are :class:`~tff_ser.layers.Keras2GlorotUniform`
    and :class:`~tff_ser.layers.Keras2Orthogonal`, which compute Keras 2.14's
    values: the same seed builds the same initial model on both stacks
    (``tests/unit/test_stack.py`` checks them against weights saved on the
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
            return _keras().initializers.GlorotUniform(seed=seed)
        from tff_ser.layers import Keras2GlorotUniform
        return Keras2GlorotUniform(seed)

    def orthogonal(self):
        seed = self._next()
        if seed is None or self._keras_2:
            return _keras().initializers.Orthogonal(seed=seed)
        from tff_ser.layers import Keras2Orthogonal
        return Keras2Orthogonal(seed)

    def dense(self, units: int, activation: Optional[str], name: str) -> keras.layers.Dense:
        return _keras().layers.Dense(units, activation=activation, name=name,
                                     kernel_initializer=self.glorot_uniform())

    def conv1d(self, filters: int, kernel_size: int, name: str) -> keras.layers.Conv1D:
        return _keras().layers.Conv1D(filters, kernel_size, activation="relu", name=name,
                                      kernel_initializer=self.glorot_uniform())

    def lstm(self, units: int, return_sequences: bool, name: str) -> keras.layers.LSTM:
        return _keras().layers.LSTM(units, return_sequences=return_sequences, name=name,
                                    kernel_initializer=self.glorot_uniform(),
                                    recurrent_initializer=self.orthogonal())


def check_rate(dropout_rate: float) -> float:
    """``dropout_rate`` as a float in [0, 1), or a ValueError."""
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate!r}")
    return float(dropout_rate)


def check_rank(name: str, input_shape: Sequence[int], rank: int, meaning: str) -> Tuple[int, ...]:
    """``input_shape`` as positive ints of rank ``rank``, or a ValueError naming the model."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != rank or any(d < 1 for d in shape):
        raise ValueError(f"model {name!r} takes inputs of shape {meaning} (rank {rank}, "
                         f"positive sizes); got input_shape={tuple(input_shape)}")
    return shape


class LazyBuilder:
    """A builder named ``"module:function"``, imported on first use.

    Baselines register their models with it, so finding them (and ``tff-ser
    --help``) imports no Keras.  It calls, has a signature and a name like the
    function it stands for, and compares equal by its target.
    """

    def __init__(self, target: str):
        module, _, name = target.partition(":")
        if not module or not name:
            raise ValueError(f"a lazy builder is 'module:function'; got {target!r}")
        self.target, self.__module__, self.__name__ = target, module, name
        self.__qualname__ = name
        self._function = None

    def resolve(self) -> Callable:
        if self._function is None:
            import importlib
            module, _, name = self.target.partition(":")
            self._function = getattr(importlib.import_module(module), name)
        return self._function

    @property
    def __signature__(self):
        return inspect.signature(self.resolve())

    @property
    def __doc__(self):
        return self.resolve().__doc__

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __eq__(self, other):
        return isinstance(other, LazyBuilder) and other.target == self.target

    def __hash__(self):
        return hash(("LazyBuilder", self.target))

    def __repr__(self):
        return f"LazyBuilder({self.target!r})"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Parameters
    ----------
    name : str
        Registry key (``build_model(name)``).
    builder : callable or str
        ``builder(input_shape, num_classes, *, seed=None, **hyperparameters)``
        returning a fresh uncompiled ``keras.Model`` with softmax output; a
        ``"module:function"`` string is imported on first use (:class:`LazyBuilder`).
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

    def __post_init__(self):
        if isinstance(self.builder, str):
            object.__setattr__(self, "builder", LazyBuilder(self.builder))


#: Registered models by name (the papers' presets come from :mod:`tff_ser.baselines`).
MODELS: Dict[str, ModelSpec] = DiscoveredRegistry()


def register_model(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Register ``spec`` under ``spec.name`` (``build_model(name)``, ``--model name``).

    A taken name is refused unless ``replace=True``, so two builders never
    answer to one name.
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register_model takes a ModelSpec; got {type(spec).__name__}")
    if dict.__contains__(MODELS, spec.name) and not replace \
            and dict.__getitem__(MODELS, spec.name) != spec:
        raise ValueError(f"model {spec.name!r} is registered already; pass replace=True to "
                         "register it again")
    dict.__setitem__(MODELS, spec.name, spec)
    return spec


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
                         f"{accepted or 'none'} (see {spec.builder.__module__}.{spec.builder.__name__})")
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
    return _keras().losses.SparseCategoricalCrossentropy()


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
            _keras().utils.set_random_seed(int(seed))
            try:
                model = self.builder(shape, int(num_classes), **self.hyperparameters)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)
        if not isinstance(model, _keras().Model):
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
