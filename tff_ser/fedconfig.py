"""What one federated run is, independent of who computes it.

:class:`FederatedConfig` holds the knobs of FedAvg in the papers' words
(rounds = NGE, local_epochs = NLE, batch_size = BS, client_fraction = CD,
client and server learning rates and optimizers, seed), and the two
functions here fix which clients train in a round (:func:`sample_clients`)
and in which order each walks its clips (:func:`client_order`).  Every
engine under :mod:`tff_ser.engines` reads them from here, so all engines
train the very same rounds; this module imports no engine and no
TensorFlow.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tff_ser.algorithms import ALGORITHMS, get_algorithm  # noqa: F401  (ALGORITHMS: the registry)

#: Client / server optimizers by name: TFF 0.87's ``tff.learning.optimizers``
#: builders, each with the keyword arguments it takes (besides the learning rate).
OPTIMIZER_KWARGS: Dict[str, Tuple[str, ...]] = {
    "adam": ("beta_1", "beta_2", "epsilon"),
    "sgd": (),                                  # build_sgdm without momentum
    "sgdm": ("momentum",),                      # build_sgdm, momentum 0.9 unless given
    "yogi": ("beta_1", "beta_2", "epsilon", "initial_preconditioner_value"),
    "adagrad": ("initial_preconditioner_value", "epsilon"),
    "rmsprop": ("decay", "epsilon"),
}
OPTIMIZERS = tuple(OPTIMIZER_KWARGS)


#: Named aggregators (``None`` is TFF's default mean); any ``tff.aggregators`` factory is accepted too.
AGGREGATORS = ("mean", "dp", "compression", "robust")


def _freeze_kwargs(kwargs) -> Tuple[Tuple[str, object], ...]:
    items = kwargs.items() if isinstance(kwargs, Mapping) else kwargs
    return tuple(sorted((str(k), v) for k, v in items))


def describe(value) -> object:
    """``value`` as JSON can hold it: names stay, objects become ``module.Class``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclasses.dataclass(frozen=True)
class FederatedConfig:
    """Knobs of one federated run, named as in the papers.

    Parameters
    ----------
    rounds : int
        NGE, number of global epochs (communication rounds).
    local_epochs : int
        NLE, passes over its own clips each sampled client makes per round.
    batch_size : int
        BS, client mini-batch size.
    client_fraction : float
        CD, fraction of the training clients sampled each round: CD x clients
        rounded half up (73 clients at CD 0.5 sample 37), at least one; see
        :func:`sampled_per_round`.
    client_lr : float
        Learning rate of the client optimizer (paper 000's LR, "set by the
        server for the clients").
    server_lr : float
        Learning rate of the server optimizer applied to the averaged update.
        The default 0.01 is this class's (and ``tff-ser train``'s); the
        paper-001 experiments declare 0.001 in their own ``fl``
        (:data:`tff_ser.experiments.configs.EXPERIMENT_FL`), paper 000's
        per-speaker experiment 0.01.
    client_optimizer, server_optimizer : str or tff.learning.optimizers.Optimizer
        A name of :data:`OPTIMIZERS` (TFF's ``build_adam``, ``build_sgdm``
        without (``"sgd"``) or with (``"sgdm"``) momentum, ``build_yogi``,
        ``build_adagrad``, ``build_rmsprop``), or a TFF optimizer object.
        Paper 001 uses Adam on both sides; paper 004 plain SGD on the clients
        (eta = 0.01) with FedAvg's server step (SGD, lr 1.0).  The learning
        rate is always ``client_lr`` / ``server_lr`` (written into the
        process state), also for an optimizer object.
    client_optimizer_kwargs, server_optimizer_kwargs : dict
        Keyword arguments of the named builder (e.g. ``{"beta_2": 0.99,
        "epsilon": 1e-3}`` for Reddi et al.'s FedAdam); names are checked
        against :data:`OPTIMIZER_KWARGS`.
    seed : int
        Seeds initial weights, client sampling and client shuffling.
    eval_every : int
        Evaluate on the validation clients every this many rounds (0: only at
        the end).  Evaluation time is not part of the training time.
    algorithm : str
        A registered algorithm (:mod:`tff_ser.algorithms`): ``"fedavg"``, or
        ``"fedprox"`` (Li et al. 2020; TFF's ``build_*_fed_prox``) with
        proximal strength ``proximal_strength`` (mu), or one a user
        registered with :func:`tff_ser.register_algorithm`.
    algorithm_kwargs : dict
        Keyword arguments of a registered algorithm's builder.
    weighted : bool
        Average client updates weighted by their number of clips (TFF's
        ``NUM_EXAMPLES``, the default) or uniformly (``build_unweighted_*``).
    aggregator : None, str or tff.aggregators factory
        ``None`` / ``"mean"``: TFF's mean; ``"dp"``: DP-FedAvg
        (``tff.learning.dp_aggregator``, adaptive clipping, or a fixed clip
        ``dp_clip`` with ``DifferentiallyPrivateFactory.gaussian_fixed``);
        ``"compression"``: ``tff.learning.compression_aggregator`` (8-bit
        uniform quantization of tensors over 20,000 elements);
        ``"robust"``: ``tff.learning.robust_aggregator`` (adaptive zeroing
        and clipping); or any ``tff.aggregators`` factory object (weighted
        for ``weighted=True``, unweighted otherwise).
    noise_multiplier : float
        DP: std of the Gaussian noise over the clipping norm (z).
    dp_clip : float, optional
        DP: a fixed L2 clip of each client update; ``None``: adaptive clipping.
    dp_delta : float
        DP: the delta of the (epsilon, delta) the run reports.
    dp_clients_per_round : int, optional
        DP: clients per round the noise is calibrated for; ``None`` (default)
        takes the number CD really samples, and any other value is refused.
    """

    rounds: int = 20
    local_epochs: int = 1
    batch_size: int = 20
    client_fraction: float = 1.0
    client_lr: float = 0.001
    server_lr: float = 0.01
    client_optimizer: object = "adam"
    server_optimizer: object = "adam"
    seed: int = 0
    eval_every: int = 0
    client_optimizer_kwargs: object = ()
    server_optimizer_kwargs: object = ()
    algorithm: str = "fedavg"
    algorithm_kwargs: object = ()
    proximal_strength: float = 0.0
    weighted: bool = True
    aggregator: object = None
    noise_multiplier: float = 0.0
    dp_clip: Optional[float] = None
    dp_delta: float = 1e-5
    dp_clients_per_round: Optional[int] = None

    def __post_init__(self):
        if self.rounds < 1:
            raise ValueError(f"rounds (NGE) must be >= 1, got {self.rounds}")
        if self.local_epochs < 1:
            raise ValueError(f"local_epochs (NLE) must be >= 1, got {self.local_epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size (BS) must be >= 1, got {self.batch_size}")
        if not 0.0 < self.client_fraction <= 1.0:
            raise ValueError(f"client_fraction (CD) must be in (0, 1], got {self.client_fraction}")
        for side in ("client", "server"):
            opt = getattr(self, f"{side}_optimizer")
            kwargs = _freeze_kwargs(getattr(self, f"{side}_optimizer_kwargs"))
            object.__setattr__(self, f"{side}_optimizer_kwargs", kwargs)
            if isinstance(opt, str):
                if opt not in OPTIMIZERS:
                    raise ValueError(f"{side}_optimizer must be one of {OPTIMIZERS} or a "
                                     f"tff.learning.optimizers.Optimizer, got {opt!r}")
                unknown = sorted({k for k, _ in kwargs} - set(OPTIMIZER_KWARGS[opt]))
                if unknown:
                    raise ValueError(f"{side}_optimizer_kwargs {unknown} are not arguments of "
                                     f"{opt!r}; it takes {list(OPTIMIZER_KWARGS[opt]) or 'none'}")
            elif not hasattr(opt, "next") or not hasattr(opt, "initialize"):
                raise ValueError(f"{side}_optimizer must be a name in {OPTIMIZERS} or a "
                                 f"tff.learning.optimizers.Optimizer; got {type(opt).__name__}")
            elif kwargs:
                raise ValueError(f"{side}_optimizer_kwargs go with a named optimizer; an "
                                 "optimizer object carries its own arguments")
        for side in ("client_lr", "server_lr"):
            if not 0 < getattr(self, side) < math.inf:
                raise ValueError(f"{side} must be a finite number > 0, got {getattr(self, side)}")
        algorithm = get_algorithm(self.algorithm)
        object.__setattr__(self, "algorithm_kwargs", _freeze_kwargs(self.algorithm_kwargs))
        if not 0 <= self.proximal_strength < math.inf:
            raise ValueError(f"proximal_strength (FedProx mu) must be >= 0, got {self.proximal_strength}")
        if self.proximal_strength and not algorithm.uses_proximal_strength:
            raise ValueError(f"proximal_strength={self.proximal_strength} is FedProx's mu; set "
                             "algorithm='fedprox' (or recipe('fedprox', mu=...))")
        agg = self.aggregator
        if isinstance(agg, str) and agg not in AGGREGATORS:
            raise ValueError(f"aggregator must be None, one of {AGGREGATORS} or a "
                             f"tff.aggregators factory, got {agg!r}")
        if agg is not None and not isinstance(agg, str) and not hasattr(agg, "create"):
            raise ValueError(f"aggregator must be None, one of {AGGREGATORS} or a "
                             f"tff.aggregators factory (with .create); got {type(agg).__name__}")
        if self.is_dp:
            if self.weighted:
                raise ValueError(
                    "DP-FedAvg averages clipped client updates uniformly (TFF's dp_aggregator is "
                    "an unweighted factory); set weighted=False (recipe('dp_fedavg') does)")
            if not 0 <= self.noise_multiplier < math.inf:
                raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")
            if self.dp_clip is not None and not self.dp_clip > 0:
                raise ValueError(f"dp_clip must be > 0 (or None: adaptive clipping), got {self.dp_clip}")
            if not 0.0 < self.dp_delta < 1.0:
                raise ValueError(f"dp_delta must be in (0, 1), got {self.dp_delta}")
        elif self.noise_multiplier or self.dp_clip is not None or self.dp_clients_per_round:
            raise ValueError("noise_multiplier, dp_clip and dp_clients_per_round belong to "
                             "DP-FedAvg; set aggregator='dp' (and weighted=False)")

    @property
    def is_dp(self) -> bool:
        """True for DP-FedAvg (``aggregator="dp"``)."""
        return self.aggregator == "dp"

    @property
    def compresses(self) -> bool:
        """True where client updates are quantized on the way up (``aggregator="compression"``)."""
        return self.aggregator == "compression"

    def optimizer_kwargs(self, side: str) -> dict:
        """``client`` or ``server`` optimizer keyword arguments as a dict."""
        return dict(getattr(self, f"{side}_optimizer_kwargs"))

    def to_dict(self) -> dict:
        """Every knob as JSON can hold it (optimizer and aggregator objects by class name)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_kwargs"):
                value = dict(value)
            elif f.name in ("client_optimizer", "server_optimizer", "aggregator"):
                value = describe(value)
            out[f.name] = value
        return out


# --------------------------------------------------------------------------
# named recipes
# --------------------------------------------------------------------------

#: Named federated recipes: what each sets.  Client SGD at lr 0.01 (paper
#: 004's eta) unless overridden; server sides as in Reddi et al. 2021,
#: "Adaptive Federated Optimization" (adaptivity tau = epsilon = 1e-3,
#: beta_2 = 0.99), Hsu et al. 2019 for FedAvgM (momentum 0.9), Li et al. 2020
#: for FedProx; DP-FedAvg as McMahan et al. 2018 (uniform weights).
RECIPES: Dict[str, dict] = {
    "fedavg": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="sgd", server_lr=1.0),
    "fedavgm": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="sgdm", server_lr=1.0,
                    server_optimizer_kwargs={"momentum": 0.9}),
    "fedadam": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="adam", server_lr=0.01,
                    server_optimizer_kwargs={"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}),
    "fedyogi": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="yogi", server_lr=0.01,
                    server_optimizer_kwargs={"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-3}),
    "fedadagrad": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="adagrad",
                       server_lr=0.1, server_optimizer_kwargs={"epsilon": 1e-3}),
    "fedprox": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="sgd", server_lr=1.0,
                    algorithm="fedprox", proximal_strength=0.01),
    "dp_fedavg": dict(client_optimizer="sgd", client_lr=0.01, server_optimizer="sgd", server_lr=1.0,
                      aggregator="dp", weighted=False, noise_multiplier=1.0),
    # the papers' own: Adam on both sides with separate learning rates (paper 001)
    "paper001": dict(client_optimizer="adam", server_optimizer="adam"),
}


def recipe(name: str, **overrides) -> FederatedConfig:
    """A :class:`FederatedConfig` for a named recipe of :data:`RECIPES`.

    ``mu`` is accepted for FedProx's ``proximal_strength``; every other
    keyword is a :class:`FederatedConfig` field and wins over the recipe.

    Examples
    --------
    >>> recipe("fedyogi", rounds=50).server_optimizer
    'yogi'
    >>> recipe("fedprox", mu=0.1).proximal_strength
    0.1
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    if "mu" in overrides:
        overrides["proximal_strength"] = float(overrides.pop("mu"))
    base = dict(RECIPES[name])
    for side in ("client", "server"):
        # a different optimizer drops the recipe's arguments for the old one
        if f"{side}_optimizer" in overrides and f"{side}_optimizer_kwargs" not in overrides:
            base.pop(f"{side}_optimizer_kwargs", None)
    base.update(overrides)
    return FederatedConfig(**base)


def sampled_per_round(num_clients: int, client_fraction: float) -> int:
    """How many of ``num_clients`` training clients CD samples each round.

    Paper 000 defines CD as "the proportion of clients that are selected" and
    gives no rounding rule; this package rounds CD x clients half up (to the
    nearest integer, .5 upwards: 73 x 0.5 = 36.5 -> 37, 9 x 0.5 = 4.5 -> 5,
    73 x 0.1 = 7.3 -> 7), and samples at least one client.  Python's
    ``round`` (half to even, 36.5 -> 36) is not used.  The product is first
    rounded to 9 decimals so that float error (0.1 x 73 = 7.300000000000001)
    cannot move it across the half.  Every engine samples through this.
    """
    product = round(float(client_fraction) * int(num_clients), 9)
    return min(num_clients, max(1, int(math.floor(product + 0.5))))


def check_config_for_task(config: FederatedConfig, num_train_clients: int) -> None:
    """Refuse, before training, a configuration that cannot hold for this many clients."""
    if config.is_dp:
        m = sampled_per_round(num_train_clients, config.client_fraction)
        if config.dp_clients_per_round is not None and config.dp_clients_per_round != m:
            raise ValueError(
                f"DP noise is calibrated for dp_clients_per_round={config.dp_clients_per_round} "
                f"clients, but CD={config.client_fraction} samples {m} of {num_train_clients} "
                "clients each round, so the noise and the privacy accounting would not match; "
                f"set dp_clients_per_round=None (uses {m}) or choose client_fraction so that "
                f"{config.dp_clients_per_round} clients are sampled")
        if config.dp_clip is None and config.noise_multiplier > 0 \
                and not 2 * 0.05 * m > config.noise_multiplier:
            # TFF's gaussian_adaptive: clipped_count_stddev = 0.05 m must exceed z / 2
            raise ValueError(
                f"adaptive DP clipping with noise_multiplier={config.noise_multiplier} needs more "
                f"than {int(10 * config.noise_multiplier)} clients per round (TFF spends "
                f"clipped-count noise 0.05 x clients on the clip estimate), but CD samples {m}; "
                "sample more clients, lower noise_multiplier, or set dp_clip=<L2 norm> for a "
                "fixed clip")


# --------------------------------------------------------------------------
# client sampling and clip order
# --------------------------------------------------------------------------

def sample_clients(client_ids: Sequence[str], client_fraction: float, round_num: int,
                   seed: int) -> List[str]:
    """The clients that train in ``round_num`` (CD of them, at least one).

    Depends only on (seed, round), never on earlier rounds, so a run resumed
    at round r samples exactly what an uninterrupted run samples there.
    """
    ids = sorted(client_ids)
    m = sampled_per_round(len(ids), client_fraction)
    if m >= len(ids):
        return ids
    rng = np.random.default_rng([seed, round_num])
    return sorted(rng.choice(ids, size=m, replace=False).tolist())


def client_order(n: int, local_epochs: int, seed: int, round_num: int, client_index: int) -> np.ndarray:
    """Clip order a client trains in during one round: one fresh shuffle per local epoch."""
    rng = np.random.default_rng([seed, round_num, client_index, 7])
    return np.concatenate([rng.permutation(n) for _ in range(local_epochs)])


def round_clip_rows(train_clients, config: "FederatedConfig", round_num: int):
    """``[(client id, rows of task.x in training order)]`` for one round.

    The sampled clients in sorted order; each client's rows are its clips in
    :func:`client_order` (NLE shuffles, concatenated).  Cut into batches of
    BS, the last one partial, they are exactly the batches TFF's process is
    given (``tf.data.Dataset.from_tensor_slices(...).batch(BS)``).
    """
    ids = sorted(train_clients)
    position = {cid: i for i, cid in enumerate(ids)}
    out = []
    for cid in sample_clients(ids, config.client_fraction, round_num, config.seed):
        idx = np.asarray(train_clients[cid])
        order = client_order(len(idx), config.local_epochs, config.seed, round_num, position[cid])
        out.append((cid, idx[order]))
    return out


def initial_model_weights(model, input_shape: tuple, num_classes: int, seed: int):
    """Trainable and non-trainable weights of the seeded initial model (every engine starts here).

    ``model``: a preset name, a :class:`tff_ser.models.KerasModel` or a builder.
    """
    from tff_ser.models import as_model
    m = as_model(model).build(tuple(input_shape), num_classes, seed=seed)
    return ([w.numpy() for w in m.trainable_weights],
            [w.numpy() for w in m.non_trainable_weights])
