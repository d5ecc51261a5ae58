"""The round-engine protocol: what :func:`tff_ser.federated.train_federated` asks of an engine.

An engine computes FedAvg rounds for one (task, config).  The loop in
``train_federated`` owns everything else (history, evaluation, checkpoint
side files, wall time); an engine only has to

* ``start()``        -- put the seeded initial model (``initial_model_weights``) in its state;
* ``resume(dir)``    -- load the last state saved under ``dir``, return its round (0: none);
* ``round(r)``       -- train round ``r`` and return its history row (``round``, ``clients``,
  ``seconds``, ``train_loss``, ``train_accuracy``, ``train_examples``);
* ``save(r)``        -- save the state after round ``r`` under the ``resume`` directory;
* ``weights()``      -- ``(trainable, non_trainable)`` NumPy arrays of the server model;
* ``federated_eval()`` -- TFF's federated evaluation (``{}`` where an engine has none).

Which rounds are trained is fixed outside the engines, in
:mod:`tff_ser.fedconfig` (client sampling, clip order), so every engine
trains the same clients on the same batches, and a test proves each fast
engine equal to the TFF process (``tests/integration/test_engine_equivalence.py``,
``tests/integration/test_plain_tf_engine.py``).

Each engine class also answers ``unsupported_reason(task, config)``: ``None``
when it implements the model and configuration, else the reason in words,
which :func:`choose_engine` uses to pick (``"auto"``) or to refuse.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Protocol, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class EngineEntry:
    """A registered engine: where its class lives, and whether ``"auto"`` may pick it.

    ``target`` is ``"module:Class"`` (imported on first use, so registering
    costs no TensorFlow import); the class follows :class:`RoundEngine` and has
    a ``unsupported_reason(task, config)`` classmethod.
    """

    target: str
    auto: bool = True
    needs_tff: bool = False

    def load(self):
        import importlib
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


#: Engine name -> entry, in the order ``engine="auto"`` tries them (TFF's process, the
#: reference, is auto's last resort and is not tried in this loop).  One registration
#: (:func:`register_engine`) adds an engine to ``train_federated``, the CLI and the configs.
ENGINES: Dict[str, EngineEntry] = {
    "batched": EngineEntry("tff_ser.engines.batched:BatchedEngine"),
    "tf": EngineEntry("tff_ser.engines.plain_tf:PlainTFEngine"),
    "tff": EngineEntry("tff_ser.engines.tff_process:TffEngine", auto=False, needs_tff=True),
    "jax": EngineEntry("tff_ser.engines.jax_fedavg:JaxEngine"),
}

#: Engine names ``train_federated(engine=...)`` accepts; "auto" picks one (:func:`choose_engine`).
ENGINE_NAMES = ("auto", "tff", "batched", "tf", "jax")


def register_engine(name: str, target: str, *, auto: bool = True,
                    needs_tff: bool = False) -> None:
    """Register an engine: ``train_federated(engine=name)`` then runs it.

    Parameters
    ----------
    name : str
        The engine's name (not ``"auto"``).
    target : str
        ``"module:Class"`` of a class implementing :class:`RoundEngine` and
        ``unsupported_reason(task, config)``.
    auto : bool
        Whether ``engine="auto"`` may pick it (tried after the built-in fast
        engines).  An engine must be proven equal to TFF's process by a test
        before it is allowed here.
    needs_tff : bool
        Whether it needs TensorFlow Federated installed.
    """
    global ENGINE_NAMES
    if name == "auto" or not name:
        raise ValueError(f"{name!r} cannot name an engine")
    if ":" not in target:
        raise ValueError(f"target must be 'module:Class', got {target!r}")
    ENGINES[name] = EngineEntry(target, auto=auto, needs_tff=needs_tff)
    ENGINE_NAMES = ENGINE_NAMES + (name,) if name not in ENGINE_NAMES else ENGINE_NAMES


class EngineUnsupported(ValueError):
    """An engine was asked for a model or configuration it does not implement."""


class RoundEngine(Protocol):
    """One federated run's rounds (see the module docstring)."""

    name: str

    def start(self) -> None: ...

    def resume(self, checkpoint_dir: str) -> int: ...

    def round(self, round_num: int) -> dict: ...

    def save(self, round_num: int) -> None: ...

    def weights(self) -> Tuple[List[np.ndarray], List[np.ndarray]]: ...

    def federated_eval(self) -> dict: ...


#: What the fast engines implement without TFF (the rest needs ``engine="tff"``).
FAST_ENGINE_IMPLEMENTS = {
    "tf": ("FedAvg and FedProx, weighted or uniform client weights, TFF's mean, robust, "
           "8-bit compression and DP-FedAvg aggregators, client and server optimizers adam, "
           "sgd, sgdm, yogi, adagrad, rmsprop with their arguments, any model and loss"),
    "batched": ("weighted FedAvg, TFF's mean aggregator, client and server optimizer 'adam' "
                "or 'sgd' with TFF's default arguments, Sequential Dense/Dropout models with "
                "the default softmax cross-entropy loss"),
}


def optimizer_reason(engine: str, config, supported) -> Optional[str]:
    """Why ``engine`` cannot use ``config``'s client or server optimizer (``None``: it can)."""
    for side in ("client_optimizer", "server_optimizer"):
        if not isinstance(getattr(config, side), str) or getattr(config, side) not in supported:
            return (f"the {engine} engine implements {side} in {tuple(supported)}, "
                    f"not {getattr(config, side)!r}")
    return None


def fast_engine_reason(engine: str, task, config, supported_optimizers, *,
                       algorithms=("fedavg",), unweighted: bool = False,
                       optimizer_arguments: bool = False,
                       any_loss: bool = False,
                       aggregators=(None, "mean")) -> Optional[str]:
    """Why fast engine ``engine`` cannot run ``config`` / ``task.model`` (``None``: it can).

    Each fast engine implements part of what TFF's process computes
    (:data:`FAST_ENGINE_IMPLEMENTS`); ``engine="auto"`` takes the first that
    implements the run, and TFF's process only where neither does.
    """
    reason = optimizer_reason(engine, config, supported_optimizers)
    if reason:
        return reason
    if not optimizer_arguments:
        for side in ("client", "server"):
            if config.optimizer_kwargs(side):
                return (f"the {engine} engine implements TFF's default {side} optimizer "
                        f"arguments, not {config.optimizer_kwargs(side)}")
    if config.algorithm not in algorithms:
        return (f"the {engine} engine implements {' and '.join(algorithms)}, not "
                f"algorithm={config.algorithm!r}")
    if config.algorithm_kwargs:
        return (f"the {engine} engine implements the built-in algorithms' own arguments, not "
                f"algorithm_kwargs={dict(config.algorithm_kwargs)}")
    if not config.weighted and not unweighted:
        return f"the {engine} engine implements weighted FedAvg, not weighted=False"
    if not (config.aggregator is None or isinstance(config.aggregator, str)) \
            or config.aggregator not in aggregators:
        from tff_ser.fedconfig import describe
        named = [a for a in aggregators if a]
        return (f"the {engine} engine implements the aggregators {named}, not "
                f"aggregator={describe(config.aggregator)!r}")
    if not any_loss and not task.model_def.default_loss:
        return (f"the {engine} engine implements the default SparseCategoricalCrossentropy, "
                f"not model {task.model_name!r}'s own loss")
    return None


def tensorflow_backend_reason(engine: str) -> Optional[str]:
    """Why TensorFlow engine ``engine`` cannot run here: Keras 3 runs on another backend."""
    import keras
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return None
    return (f"the {engine} engine runs TensorFlow, but Keras runs on {backend!r} in this "
            "process (KERAS_BACKEND); engine='jax' trains on Keras' JAX backend")


def _engine_class(name: str):
    entry = ENGINES.get(name)
    if entry is None:
        raise EngineUnsupported(f"engine must be one of {ENGINE_NAMES}, got {name!r}")
    if entry.needs_tff:
        from tff_ser.stack import require_tff
        require_tff(f"engine={name!r}" + (" (TFF's own process)" if name == "tff" else ""))
    try:
        return entry.load()
    except ImportError as exc:
        if not exc.name or exc.name.startswith("tff_ser"):
            raise
        raise EngineUnsupported(f"the {name} engine needs {exc.name}, which is not installed "
                                "here") from exc


#: Engines that train a :class:`tff_ser.distillation.DistillationTask` (a teacher-guided loss).
DISTILLING_ENGINES = ("tf",)


def distillation_reason(name: str, task) -> Optional[str]:
    """Why engine ``name`` cannot distil ``task`` (``None``: no distillation, or it can)."""
    if getattr(task, "teacher", None) is None or name in DISTILLING_ENGINES:
        return None
    return (f"the {name} engine has no teacher-guided loss; knowledge distillation "
            f"(paper 002) runs on the {' or '.join(DISTILLING_ENGINES)} engine")


#: Engines that train a personalized task (:mod:`tff_ser.engines.personal`: FedPer, FedRep,
#: FedBN, Ditto).
PERSONALIZING_ENGINES = ("tf",)


def personalization_reason(name: str, task) -> Optional[str]:
    """Why engine ``name`` cannot personalize ``task`` (``None``: not personalized, or it can)."""
    if getattr(task, "personal", None) is None or name in PERSONALIZING_ENGINES:
        return None
    return (f"the {name} engine keeps no per-client state; {task.personal.method} "
            f"personalization runs on the {' or '.join(PERSONALIZING_ENGINES)} engine")


#: Engines that run an architecture search (:mod:`tff_ser.engines.fednas`: DARTS, FedNAS).
SEARCHING_ENGINES = ("tf",)


def search_reason(name: str, task) -> Optional[str]:
    """Why engine ``name`` cannot search ``task``'s architecture (``None``: no search, or it can)."""
    if getattr(task, "search", None) is None or name in SEARCHING_ENGINES:
        return None
    return (f"the {name} engine has no architecture step; a DARTS / FedNAS search runs on "
            f"the {' or '.join(SEARCHING_ENGINES)} engine")


def task_reason(name: str, task) -> Optional[str]:
    """Why engine ``name`` cannot train this kind of task (distillation, personalization, search)."""
    return (distillation_reason(name, task) or personalization_reason(name, task)
            or search_reason(name, task))


def availability_reason(name: str) -> Optional[str]:
    """Why engine ``name`` cannot run in this process at all (``None``: it can).

    Not installed (TensorFlow, JAX), or Keras runs on another backend: the
    engine is left out of ``"auto"``'s choice, and of the reasons it gives.
    """
    try:
        engine = _engine_class(name)
    except EngineUnsupported as exc:
        return str(exc)
    check = getattr(engine, "availability_reason", None)
    return check() if check else None


def unsupported_reason(name: str, task, config) -> Optional[str]:
    """Why engine ``name`` cannot train ``task`` with ``config`` (``None``: it can)."""
    return (task_reason(name, task) or availability_reason(name)
            or _engine_class(name).unsupported_reason(task, config))


def choose_engine(task, config, engine: str = "auto") -> str:
    """The engine that trains ``task`` with ``config``.

    ``"auto"`` takes the fastest engine that implements the model and the
    configuration, in this order (measured: ``benchmarks/bench_engines.py``):

    1. ``"batched"`` -- every client in one graph; Sequential Dense/Dropout
       models (paper 000's MLP), 5-45x faster per round than TFF;
    2. ``"tf"`` -- clients one after another in one traced function over one
       Keras model; any model of standard Keras layers, on CPU or GPU;
    3. ``"jax"`` -- Keras 3 on its JAX backend (``KERAS_BACKEND=jax``, where the
       TensorFlow engines cannot run): every sampled client at once, vmapped;
    4. ``"tff"`` -- TFF 0.87's ``build_weighted_fed_avg`` process, the reference.

    An explicit engine that cannot train the task raises
    :class:`EngineUnsupported` naming what and why.
    """
    if engine != "auto" and engine not in ENGINES:
        raise EngineUnsupported(f"engine must be one of {ENGINE_NAMES}, got {engine!r}")
    if engine != "auto":
        reason = unsupported_reason(engine, task, config)
        if reason:
            raise EngineUnsupported(f"engine={engine!r} cannot train this run: {reason}. "
                                    "Use engine='auto' or engine='tff' (the reference).")
        return engine
    reasons, unavailable = [], []
    for name, entry in ENGINES.items():
        if not entry.auto:
            continue
        missing = availability_reason(name)
        if missing:  # not installed here, or Keras runs on another backend
            unavailable.append(missing)
            continue
        reason = unsupported_reason(name, task, config)
        if reason is None:
            return name
        reasons.append(reason)
    reason = task_reason("tff", task)
    if reason:
        raise EngineUnsupported(f"no engine can train this run: "
                                f"{'; '.join(reasons + unavailable)}")
    from tff_ser.stack import require_tff
    require_tff(f"this run ({reasons[-1] if reasons else '; '.join(unavailable)})")
    return "tff"


def make_engine(name: str, task, config) -> RoundEngine:
    """An engine instance for one run (``name`` already chosen by :func:`choose_engine`)."""
    return _engine_class(name)(task, config)
