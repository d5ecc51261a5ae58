"""Federated algorithms by name: one registration makes an algorithm trainable.

An algorithm is the function that builds TFF's learning process from the
pieces tff_ser prepares for every run: the model function, the client and
server optimizers of the :class:`~tff_ser.fedconfig.FederatedConfig`, and
its aggregator (TFF's mean, DP, compression, robust or a factory object).
``FederatedConfig(algorithm=name, algorithm_kwargs={...})`` then trains it
with ``train_federated(engine="tff")`` (``"auto"`` falls back to TFF for
an algorithm no fast engine implements), from the CLI's ``--algorithm`` and
in the experiment configs; checkpoints, resume, DP accounting and the
history work as for FedAvg.

Built in: ``"fedavg"`` (McMahan et al. 2017; TFF's
``build_{weighted,unweighted}_fed_avg``) and ``"fedprox"`` (Li et al. 2020;
``build_*_fed_prox`` with the proximal strength mu).

A user's algorithm, e.g. FedSGD (McMahan et al. 2017's baseline: each
client sends the gradient over its clips, the server optimizer applies the
average)::

    import tff_ser
    from tff_ser.runtime import get_tff

    def build_fedsgd(model_fn, *, client_optimizer_fn, server_optimizer_fn,
                     model_aggregator, weighted, config):
        tff = get_tff()
        return tff.learning.algorithms.build_fed_sgd(
            model_fn, server_optimizer_fn=server_optimizer_fn,
            model_aggregator=model_aggregator)

    tff_ser.register_algorithm("fedsgd", build_fedsgd)
    config = tff_ser.FederatedConfig(algorithm="fedsgd", server_optimizer="sgd",
                                     server_lr=0.1)

The learning rates of a run are written into the process state, so the
returned process must keep them where TFF's composed processes do
(``client_work`` / ``finalizer`` hyperparameters); one without a client
learning rate (FedSGD, FedProx in TFF 0.87) gets only the server's.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple


def _no_key(config) -> tuple:
    return ()


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered federated algorithm.

    Attributes
    ----------
    name : str
    build : callable
        ``build(model_fn, *, client_optimizer_fn, server_optimizer_fn,
        model_aggregator, weighted, config, **algorithm_kwargs)`` returning a
        ``tff.learning.templates.LearningProcess``.
    key : callable
        ``key(config) -> tuple``: config values the built process depends on
        beyond the optimizers, aggregator, weighting and ``algorithm_kwargs``
        (compiled processes are cached by them).
    client_lr_in_computation : bool
        The process holds no client learning rate in its state (TFF 0.87's
        FedProx): the client optimizer is built with ``config.client_lr``
        and a process is compiled per client learning rate.
    uses_proximal_strength : bool
        Whether ``config.proximal_strength`` (mu) means something to it.
    description : str
        One line for ``--help`` and the docs.
    """

    name: str
    build: Callable[..., object]
    key: Callable[[object], tuple] = _no_key
    client_lr_in_computation: bool = False
    uses_proximal_strength: bool = False
    description: str = ""


#: Algorithm name -> :class:`Algorithm`; :func:`register_algorithm` adds one.
ALGORITHMS: Dict[str, Algorithm] = {}


def register_algorithm(name: str, build: Callable[..., object], *,
                       key: Optional[Callable[[object], tuple]] = None,
                       client_lr_in_computation: bool = False,
                       uses_proximal_strength: bool = False, description: str = "",
                       replace: bool = False) -> Algorithm:
    """Register ``build`` as federated algorithm ``name`` (see :class:`Algorithm`).

    ``replace=True`` allows registering a name again (e.g. re-running a
    notebook cell); otherwise a taken name is refused, so two algorithms
    never share one.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an algorithm name is a Python identifier; got {name!r}")
    if not callable(build):
        raise TypeError(f"build must be callable; got {type(build).__name__}")
    if name in ALGORITHMS and not replace:
        raise ValueError(f"algorithm {name!r} is registered already; pass replace=True to "
                         "register it again")
    entry = Algorithm(name, build, key or _no_key, bool(client_lr_in_computation),
                      bool(uses_proximal_strength), description)
    ALGORITHMS[name] = entry
    return entry


def get_algorithm(name: str) -> Algorithm:
    """The registered algorithm ``name``; an unknown name is an error listing the known ones."""
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise ValueError(f"algorithm must be one of {algorithm_names()} (or one registered with "
                         f"tff_ser.register_algorithm), got {name!r}") from None


def algorithm_names() -> Tuple[str, ...]:
    """Names of the registered algorithms, built-in first."""
    return tuple(ALGORITHMS)


def build_process(model_fn, config, *, client_optimizer_fn, server_optimizer_fn,
                  model_aggregator):
    """The learning process of ``config.algorithm`` (called by the TFF engine)."""
    algorithm = get_algorithm(config.algorithm)
    return algorithm.build(model_fn, client_optimizer_fn=client_optimizer_fn,
                           server_optimizer_fn=server_optimizer_fn,
                           model_aggregator=model_aggregator, weighted=config.weighted,
                           config=config, **dict(config.algorithm_kwargs))


def _build_fedavg(model_fn, *, client_optimizer_fn, server_optimizer_fn, model_aggregator,
                  weighted, config):
    from tff_ser.runtime import get_tff
    algorithms = get_tff().learning.algorithms
    build = algorithms.build_weighted_fed_avg if weighted else algorithms.build_unweighted_fed_avg
    return build(model_fn, client_optimizer_fn=client_optimizer_fn,
                 server_optimizer_fn=server_optimizer_fn, model_aggregator=model_aggregator)


def _build_fedprox(model_fn, *, client_optimizer_fn, server_optimizer_fn, model_aggregator,
                   weighted, config):
    from tff_ser.runtime import get_tff
    algorithms = get_tff().learning.algorithms
    build = algorithms.build_weighted_fed_prox if weighted \
        else algorithms.build_unweighted_fed_prox
    return build(model_fn, proximal_strength=float(config.proximal_strength),
                 client_optimizer_fn=client_optimizer_fn,
                 server_optimizer_fn=server_optimizer_fn, model_aggregator=model_aggregator)


register_algorithm("fedavg", _build_fedavg,
                   description="FedAvg (McMahan et al. 2017): TFF's build_*_fed_avg")
register_algorithm("fedprox", _build_fedprox, client_lr_in_computation=True,
                   uses_proximal_strength=True,
                   description="FedProx (Li et al. 2020): TFF's build_*_fed_prox, mu = "
                               "proximal_strength")

