"""The papers' experiments as declared configs: one per table or figure.

Each experiment is a frozen dataclass whose fields are the paper's settings,
with a full-size instance (the paper's numbers of rounds, clients and
models) and a ``quick`` instance (the small generated corpus and a couple of
rounds, for CI and a first look).  :meth:`runs` expands a config into the
list of single runs it consists of, so "how is Table 1 reproduced" has a
one-line answer: ``EXP1_BASELINE_VS_FEDERATED.runs()``.

* :class:`BaselineVsFederated`, paper 001 Exp 1 (Tables 1-3): models dense,
  conv1d, lstm x {centralized baseline, FL with 4 random (IID) clients, FL
  with 4 single-emotion clients}; 20 rounds, BS 20, client and server Adam.
* :class:`ClientCountSweep`, paper 001 Exp 2 (Fig 7): k = 1..8 IID clients,
  dense and conv1d, 10 rounds; macro F1 against k.
* ``EXP3_PER_SPEAKER_001`` (a :class:`BaselineVsFederated`), paper 001's
  future work: dense, conv1d and lstm with one client per speaker (73
  training speakers, the 18 held-out speakers of Exp 1 and paper 000), Exp 1's
  knobs, on the fastest engine (TFF's worker is OOM-killed by the dense model
  at 73 clients on a 24 GB machine).  Its baselines are Exp 1's centralized
  and IID runs: same held-out speakers, seed and knobs.
* :class:`PerSpeakerFederation`, paper 000 section IV.A: one client per
  speaker (73 training, 18 held out), the MLP at paper 000's best point
  (NGE 50, NLE 5, LR 0.01, BS 16, CD 0.5), against the centralized MLP.

Every experiment scores on the same held-out speakers (20 %, one validation
client each, chosen by ``split_seed``), so paper 001's random and
single-emotion clients are split from the training speakers' clips only.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from tff_ser.fedconfig import FederatedConfig

#: The FL knobs (NGE, NLE, BS, CD, learning rates, optimizers, seed, eval_every):
#: declared once, in :class:`~tff_ser.fedconfig.FederatedConfig`.  Experiments
#: and runs hold one (their ``fl`` field) and read these names through it.
FL_KNOBS = tuple(f.name for f in dataclasses.fields(FederatedConfig))

#: The FL knobs every paper-001 experiment starts from: 20 rounds, BS 20, NLE 1,
#: CD 1.0, client and server Adam at 1e-3 ("Adam optimizers with different
#: learning rates for the client and server"; the paper gives neither rate:
#: Keras' Adam default is this package's choice for both), a score every round.
EXPERIMENT_FL = FederatedConfig(rounds=20, local_epochs=1, batch_size=20, client_fraction=1.0,
                                client_lr=0.001, server_lr=0.001, client_optimizer="adam",
                                server_optimizer="adam", seed=0, eval_every=1)


class _ReadsFlKnobs:
    """``config.rounds`` etc. read from ``config.fl`` (the knobs are declared once)."""

    def __getattr__(self, name):
        if name in FL_KNOBS:
            return getattr(object.__getattribute__(self, "fl"), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict:
        """Flat settings: the config's own fields and the FL knobs side by side."""
        # fl.to_dict(): the knobs added after the committed runs appear only where they
        # differ from their default, so the keys of earlier saved runs still match,
        # and in their JSON form (kwargs as dicts), as a saved key reads back.
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "fl"}
        d = {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v) for k, v in d.items()}
        d.update(self.fl.to_dict())
        return d

#: RunSpec fields that name a run or say who computed it, not what it computes.
RUN_KEY_IGNORES = ("run_id", "condition", "engine")

#: Run modes: the pooled-data baseline or FedAvg on TFF.
CENTRALIZED = "centralized"
FEDERATED = "federated"

#: Paper 001's column names for the Exp 1 setups (Tables 1-3).
SETUP_LABELS = {
    "centralized": "Centralized baseline",
    "iid": "Random Assignment",
    "single_emotion": "Single Emotion",
    "by_speaker": "One client per speaker",
}

#: Paper 001 Tables 1-3, as printed: accuracy, recall, precision (fractions),
#: macro F1 and training time in seconds, per model and setup.  The paper's
#: own corpus and split, so a guide to the direction of the comparison, not a
#: number to match run for run.
PAPER_001_TABLES = {
    "dense": {
        "centralized": {"accuracy": 0.26, "recall": 0.23, "precision": 0.23, "f1": 0.22,
                        "train_seconds": 480},
        "iid": {"accuracy": 0.51, "recall": 0.49, "precision": 0.51, "f1": 0.49,
                "train_seconds": 627},
        "single_emotion": {"accuracy": 0.21, "recall": 0.25, "precision": 0.05, "f1": 0.09,
                           "train_seconds": 480},
    },
    "conv1d": {
        "centralized": {"accuracy": 0.32, "recall": 0.25, "precision": 0.24, "f1": 0.16,
                        "train_seconds": 460},
        "iid": {"accuracy": 0.41, "recall": 0.38, "precision": 0.41, "f1": 0.37,
                "train_seconds": 316},
        "single_emotion": {"accuracy": 0.23, "recall": 0.25, "precision": 0.06, "f1": 0.09,
                           "train_seconds": 277},
    },
    "lstm": {
        "centralized": {"accuracy": 0.41, "recall": 0.35, "precision": 0.44, "f1": 0.31,
                        "train_seconds": 5740},
        "iid": {"accuracy": 0.43, "recall": 0.40, "precision": 0.43, "f1": 0.35,
                "train_seconds": 5407},
        "single_emotion": {"accuracy": 0.22, "recall": 0.25, "precision": 0.06, "f1": 0.09,
                           "train_seconds": 4645},
    },
}

#: Paper 000 Table I, "Optimal Accuracy" row: mean accuracy of the 18
#: held-out clients and the FL training time (CT) in seconds.
PAPER_000_BEST = {"client_mean_accuracy": 0.771, "train_seconds": 97,
                  "rounds": 50, "local_epochs": 5, "client_lr": 0.01, "batch_size": 16,
                  "client_fraction": 0.5}


@dataclasses.dataclass(frozen=True)
class RunSpec(_ReadsFlKnobs):
    """One training run of an experiment: what to train, on which clients, how.

    Parameters
    ----------
    run_id : str
        Folder name of the run under ``<out>/runs/`` (``"dense-iid"``).
    model : str
        Name in :data:`tff_ser.models.MODELS`.
    mode : {"centralized", "federated"}
    partition : str
        How the training speakers' clips are split into clients (see
        :data:`tff_ser.experiments.common.PARTITION_CHOICES`).  A centralized
        run pools them, so its partition only names the task it shares with
        its federated siblings.
    clients : int
        k, the number of training clients (ignored by ``"by_speaker"``, which
        makes one client per training speaker).
    setup : str
        The column this run fills in the paper's table (``"centralized"``,
        ``"iid"``, ``"single_emotion"``, ``"by_speaker"``).
    fl : FederatedConfig
        NGE (federated; epochs for a centralized run), NLE, BS, CD, client and
        server learning rates and optimizers, seed, ``eval_every``; a
        centralized run uses ``client_lr`` (see :meth:`centralized_config`).
        Readable as ``spec.rounds``, ``spec.client_lr``, ...
    federated_eval : bool
        Also run TFF's federated evaluation at the end.
    split_seed : int
        Seed of the held-out speakers (``fl.seed`` seeds weights, partition and sampling).
    engine : {"tff", "auto", "batched", "tf"}
        Who computes the FedAvg rounds: TFF's process (the papers' tool) or one
        of tff_ser's engines, each proven to compute the same rounds (see
        :func:`tff_ser.federated.train_federated`).  Not part of what a saved
        run must match; ``results.csv`` says which engine computed each row.
    condition : str
        The run's setting without its seed (``"dense-iid"``); every seed of it
        shares this, and tables aggregate over it.  Defaults to ``run_id``.
    """

    run_id: str
    model: str
    mode: str
    partition: str
    clients: int
    setup: str
    fl: FederatedConfig = EXPERIMENT_FL
    federated_eval: bool = True
    split_seed: int = 0
    engine: str = "tff"
    condition: str = ""

    def __post_init__(self):
        from tff_ser.engines.base import ENGINE_NAMES as ENGINES
        if not self.condition:
            object.__setattr__(self, "condition", self.run_id)
        if self.mode not in (CENTRALIZED, FEDERATED):
            raise ValueError(f"mode must be {CENTRALIZED!r} or {FEDERATED!r}, got {self.mode!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if not isinstance(self.fl, FederatedConfig):
            raise TypeError(f"fl must be a tff_ser.fedconfig.FederatedConfig, got {self.fl!r}")

    @property
    def federated(self) -> bool:
        return self.mode == FEDERATED

    def key_dict(self) -> dict:
        """The settings a saved run must match to be read back: :meth:`to_dict`
        without the run's name (``run_id``, ``condition``) and ``engine``
        (engines compute the same rounds, see ``tests/test_plain_tf_engine.py``)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUN_KEY_IGNORES}

    def federated_config(self) -> FederatedConfig:
        """The :class:`tff_ser.fedconfig.FederatedConfig` of this run."""
        return self.fl

    def centralized_config(self):
        """The baseline matched to this run: epochs = rounds, same BS, client LR and seed."""
        from tff_ser.centralized import CentralizedConfig
        return CentralizedConfig.matching(self.federated_config(), eval_every=self.eval_every)


@dataclasses.dataclass(frozen=True)
class _Experiment(_ReadsFlKnobs):
    """Settings every experiment has: corpus size, split seed, engine, and its FL knobs (``fl``)."""

    #: Registry name and results folder.
    name: str = ""
    #: Where in which paper, for summaries.
    paper: str = ""
    #: "full" = the 91-speaker generated corpus (ignored with real data);
    #: "small" = the 12-speaker test corpus.
    size: str = "full"
    #: Keep only the first this many speakers (sorted ids) of whatever corpus
    #: is found, so a quick run stays quick on real CREMA-D too.
    max_speakers: Optional[int] = None
    split_seed: int = 0
    #: The FL knobs of every run (NGE, NLE, BS, CD, LRs, optimizers, seed, eval_every).
    fl: FederatedConfig = EXPERIMENT_FL
    federated_eval: bool = True
    #: "tff" (TFF's FedAvg process, the papers' tool), "auto", "batched"
    #: (Dense/Dropout models) or "tf" (plain TensorFlow, any model).
    engine: str = "tff"
    #: The quick variant (summaries say its numbers are a smoke run).
    quick: bool = False
    #: Training seeds (initial weights, partition, client sampling, shuffling,
    #: dropout; never the corpus): every run is repeated once per seed, its id
    #: ending in ``-s<seed>``, and tables give mean ± sd and a 95 % t-interval.
    seeds: Tuple[int, ...] = (0, 1, 2)
    #: Fewer seeds for some models, as ``((model, n), ...)``: that model runs the
    #: first ``n`` of :attr:`seeds` (a full-size LSTM run costs over an hour).
    seed_counts: Tuple[Tuple[str, int], ...] = ()

    def __post_init__(self):
        seeds = tuple(self.seeds)
        if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0
                            for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct integers >= 0, at least one; got "
                             f"{self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        for model, n in self.seed_counts:
            if not 1 <= int(n) <= len(seeds):
                raise ValueError(f"seed_counts gives {model!r} {n} seed(s); it must be 1.."
                                 f"{len(seeds)} (the number of seeds)")
        if self.size not in ("full", "small"):
            raise ValueError(f"size must be 'full' or 'small', got {self.size!r}")
        if self.max_speakers is not None and self.max_speakers < 2:
            raise ValueError(f"max_speakers must be None or >= 2 (training and held-out "
                             f"speakers are both needed), got {self.max_speakers}")
        self.runs()  # every run's knobs are validated when the config is made

    def seeds_for(self, model: str) -> Tuple[int, ...]:
        """The seeds ``model`` runs with: :attr:`seeds`, or its first n by :attr:`seed_counts`."""
        counts = dict(self.seed_counts)
        return self.seeds[:int(counts[model])] if model in counts else self.seeds

    def _spec(self, condition: str, model: str, mode: str, partition: str, clients: int,
              setup: str, fl: Optional[FederatedConfig] = None) -> Tuple[RunSpec, ...]:
        """One RunSpec per seed of ``model``; ids ``<condition>-s<seed>``; ``fl``
        overrides the experiment's knobs for this condition (a swept knob)."""
        return tuple(
            RunSpec(run_id=f"{condition}-s{seed}", condition=condition, model=model, mode=mode,
                    partition=partition, clients=clients, setup=setup,
                    fl=dataclasses.replace(fl or self.fl, seed=seed),
                    federated_eval=self.federated_eval, split_seed=self.split_seed,
                    engine=self.engine)
            for seed in self.seeds_for(model))

    def conditions(self) -> Tuple[RunSpec, ...]:
        """The settings this experiment compares, without the seeds (each subclass declares them)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its runs")

    def runs(self) -> Tuple[RunSpec, ...]:
        """Every single run: each of :meth:`conditions` once per seed."""
        return tuple(spec for specs in self.conditions() for spec in specs)


@dataclasses.dataclass(frozen=True)
class BaselineVsFederated(_Experiment):
    """Paper 001 Exp 1 (Tables 1-3): centralized baseline vs FL, IID vs single emotion.

    Parameters
    ----------
    models : tuple of str
        Paper 001's three architectures (Figs 4-6).
    setups : tuple of str
        ``"centralized"`` (the paper's "Baseline"), ``"iid"`` ("Random
        Assignment") and ``"single_emotion"`` ("Single Emotion").
    clients : int
        k = 4 clients in both federated setups.
    rounds : int
        20 rounds (federated) and 20 epochs (baseline): "We train each
        architecture for each setup for 20 epochs (or 20 rounds)".
    batch_size : int
        20, "4 clients and 20 rounds with a batch-size of 20".
    client_lr, server_lr : float
        "Adam optimizers with different learning rates for the client and
        server"; the paper gives neither rate, 1e-3 (Keras' Adam default) is
        this package's choice for both.
    """

    name: str = "exp1_baseline_vs_federated"
    paper: str = "paper 001, Experiment 1 (Tables 1-3)"
    models: Tuple[str, ...] = ("dense", "conv1d", "lstm")
    setups: Tuple[str, ...] = ("centralized", "iid", "single_emotion")
    clients: int = 4

    def conditions(self):
        from tff_ser.experiments.common import PARTITION_CHOICES
        unknown = [s for s in self.setups if s != CENTRALIZED and s not in PARTITION_CHOICES]
        if unknown:
            raise ValueError(f"unknown setup(s) {unknown}; use {CENTRALIZED!r} or a partition "
                             f"of {PARTITION_CHOICES}")
        specs = []
        for model in self.models:
            for setup in self.setups:
                if setup == CENTRALIZED:
                    specs.append(self._spec(f"{model}-{setup}", model, CENTRALIZED, "iid",
                                            self.clients, setup))
                else:
                    specs.append(self._spec(f"{model}-{setup}", model, FEDERATED, setup,
                                            self.clients, setup))
        return tuple(specs)


@dataclasses.dataclass(frozen=True)
class ClientCountSweep(_Experiment):
    """Paper 001 Exp 2 (Fig 7): macro F1 against the number of IID clients.

    Parameters
    ----------
    models : tuple of str
        "the Deep and Conv models".
    client_counts : tuple of int
        k = 1 ... 8.
    rounds : int
        10 rounds.
    """

    name: str = "exp2_client_count"
    paper: str = "paper 001, Experiment 2 (Fig 7)"
    models: Tuple[str, ...] = ("dense", "conv1d")
    client_counts: Tuple[int, ...] = tuple(range(1, 9))
    fl: FederatedConfig = dataclasses.replace(EXPERIMENT_FL, rounds=10)

    def conditions(self):
        if not self.client_counts or min(self.client_counts) < 1:
            raise ValueError(f"client_counts must be numbers of clients >= 1, got "
                             f"{self.client_counts}")
        return tuple(self._spec(f"{model}-k{k}", model, FEDERATED, "iid", k, "iid")
                     for model in self.models for k in self.client_counts)


@dataclasses.dataclass(frozen=True)
class PerSpeakerFederation(_Experiment):
    """Paper 000 section IV.A: one client per speaker, the MLP, against the centralized MLP.

    Parameters
    ----------
    models : tuple of str
        Paper 000's MLP (136-d clip statistics -> 256 -> 128 -> 4).
    rounds : int
        NGE = 50.
    local_epochs : int
        NLE = 5.
    client_lr : float
        LR = 0.01, on the clients' Adam (paper 000 does not name its
        optimizer; Adam is paper 001's and this package's default).
    server_optimizer, server_lr : str, float
        Server Adam at 0.01, the package's choice for paper 000's setting and
        the one its HPO grid uses (paper 000 names no server optimizer; a sweep
        on the generated corpus is in the README).  ``server_optimizer="sgd",
        server_lr=1.0`` gives plain FedAvg.
    batch_size : int
        BS = 16.
    client_fraction : float
        CD = 0.5 of the 73 training clients per round.
    centralized : bool
        Also train the centralized MLP on the pooled training speakers
        (same features, epochs = NGE, BS, LR).
    """

    name: str = "per_speaker_mlp"
    paper: str = "paper 000, section IV.A (Table I, optimal-accuracy point)"
    models: Tuple[str, ...] = ("mlp",)
    fl: FederatedConfig = dataclasses.replace(
        EXPERIMENT_FL, rounds=50, local_epochs=5, batch_size=16, client_fraction=0.5,
        client_lr=0.01, server_optimizer="adam", server_lr=0.01)
    centralized: bool = True

    def conditions(self):
        specs = []
        for model in self.models:
            specs.append(self._spec(f"{model}-by_speaker", model, FEDERATED, "by_speaker", 0,
                                    "by_speaker"))
            if self.centralized:
                specs.append(self._spec(f"{model}-centralized", model, CENTRALIZED,
                                        "by_speaker", 0, CENTRALIZED))
        return tuple(specs)


#: The per-speaker algorithm comparison's settings: (condition, recipe, its own knobs).
ALGORITHM_SETTINGS: Tuple[Tuple[str, str, Tuple[Tuple[str, object], ...]], ...] = (
    ("adam", "paper001", (("client_lr", 0.01), ("server_lr", 0.01))),  # per_speaker_mlp's
    ("fedavg", "fedavg", ()),
    ("fedadam", "fedadam", ()),
    ("fedyogi", "fedyogi", ()),
    ("fedprox", "fedprox", (("proximal_strength", 0.01),)),
    ("fedavg_compressed", "fedavg", (("aggregator", "compression"),)),
    ("dp_z0.3", "dp_fedavg", (("noise_multiplier", 0.3),)),
    ("dp_z1.0", "dp_fedavg", (("noise_multiplier", 1.0),)),
    ("dp_z3.0", "dp_fedavg", (("noise_multiplier", 3.0),)),
)


@dataclasses.dataclass(frozen=True)
class AlgorithmComparison(_Experiment):
    """Paper 000's per-speaker setting across TFF's algorithms, compression and DP noise.

    Beyond the papers: paper 000 names differential privacy and
    communication as the next objectives.  One client per training speaker
    (73 on a full corpus), the MLP, the shared knobs of
    :class:`PerSpeakerFederation` (NGE 50, NLE 5, BS 16, CD 0.5), and per
    condition a named recipe of :data:`tff_ser.fedconfig.RECIPES`
    (:data:`ALGORITHM_SETTINGS`): the package's Adam/Adam (what
    ``per_speaker_mlp`` trains), FedAvg, FedAdam, FedYogi, FedProx, FedAvg
    with 8-bit compressed updates, and DP-FedAvg at three noise levels
    (adaptive clipping; epsilon at delta = 1e-5 from the RDP accountant).
    Every recipe but the first runs on TFF's process.

    Parameters
    ----------
    settings : tuple
        ``(condition, recipe name, ((knob, value), ...))``; the shared
        knobs come from ``fl`` (``with_overrides(rounds=3)`` shortens them all).
    """

    name: str = "per_speaker_algorithms"
    paper: str = ("paper 000's per-speaker setting (IV.A) across TFF's algorithms, "
                  "compression and DP (beyond the papers)")
    models: Tuple[str, ...] = ("mlp",)
    fl: FederatedConfig = dataclasses.replace(
        EXPERIMENT_FL, rounds=50, local_epochs=5, batch_size=16, client_fraction=0.5,
        client_lr=0.01, server_optimizer="adam", server_lr=0.01, eval_every=5)
    settings: Tuple[Tuple[str, str, Tuple[Tuple[str, object], ...]], ...] = ALGORITHM_SETTINGS

    def condition_config(self, recipe_name: str, knobs) -> FederatedConfig:
        """The FederatedConfig of one condition: the recipe, the shared knobs, its own knobs."""
        from tff_ser.fedconfig import recipe
        shared = {k: getattr(self.fl, k) for k in
                  ("rounds", "local_epochs", "batch_size", "client_fraction", "eval_every")}
        return recipe(recipe_name, **shared, **dict(knobs))

    def conditions(self):
        return tuple(
            self._spec(f"{model}-{label}", model, FEDERATED, "by_speaker", 0, label,
                       fl=self.condition_config(recipe_name, knobs))
            for model in self.models for label, recipe_name, knobs in self.settings)


@dataclasses.dataclass(frozen=True)
class Paper004Sweep(_Experiment):
    """Paper 004 (Latif et al.) Fig 2: FedAvg with SGD, CNN and LSTM on 40-d log-Mel, UAR.

    Parameters
    ----------
    models : tuple of str
        ``cnn_logmel`` (1 conv, 1 max-pool, 2 FC) and ``lstm_logmel`` (1 LSTM,
        2 FC) on 40-d log-Mel filterbanks (25 ms Hamming, 10 ms step).
    client_counts : tuple of int
        K = 5 and 10 clients, "evenly partitioned for four classes into each
        set of clients": the class-balanced partition of the training speakers.
    local_epochs_grid, batch_sizes : tuple of int
        E in {1, 5}, B in {10, 20}.
    fl : FederatedConfig
        200 communication rounds; client SGD eta = 0.01 ("SGD is used for
        optimisation"), server SGD lr 1.0 (FedAvg's plain average, McMahan et
        al.); every client every round (CD 1.0); UAR scored every 10 rounds.
    """

    name: str = "paper004_fedavg"
    paper: str = "paper 004, Fig 2 (FedAvg, SGD, CNN / LSTM on log-Mel, UAR)"
    models: Tuple[str, ...] = ("cnn_logmel", "lstm_logmel")
    client_counts: Tuple[int, ...] = (5, 10)
    local_epochs_grid: Tuple[int, ...] = (1, 5)
    batch_sizes: Tuple[int, ...] = (10, 20)
    fl: FederatedConfig = dataclasses.replace(
        EXPERIMENT_FL, rounds=200, local_epochs=1, batch_size=10, client_fraction=1.0,
        client_optimizer="sgd", client_lr=0.01, server_optimizer="sgd", server_lr=1.0,
        eval_every=10)

    def conditions(self):
        out = []
        for model in self.models:
            for k in self.client_counts:
                for e in self.local_epochs_grid:
                    for b in self.batch_sizes:
                        fl = dataclasses.replace(self.fl, local_epochs=e, batch_size=b)
                        out.append(self._spec(f"{model}-K{k}-E{e}-B{b}", model, FEDERATED,
                                              "class_balanced", k, f"K{k} E{e} B{b}", fl=fl))
        return tuple(out)


#: Paper 004's headline: 54.8 % UAR, LSTM, 200 rounds, IEMOCAP (4 classes; one
#: speaker validates, one tests).  Fig 2 gives the other settings only as curves.
PAPER_004_BEST = {"uar": 0.548, "model": "lstm_logmel", "rounds": 200, "corpus": "IEMOCAP"}


# ---------------------------------------------------------------------------
# the declared experiments: full size (the paper's settings) and quick
# ---------------------------------------------------------------------------

def with_overrides(config: _Experiment, **changes) -> _Experiment:
    """``config`` with some fields replaced (and every run re-validated).

    FL knobs (``rounds``, ``client_lr``, ... :data:`FL_KNOBS`) go into the
    config's ``fl``; everything else is one of the config's own fields.  The
    training seed is the experiment's ``seeds``: ``seed=3`` means ``seeds=(3,)``.

    Examples
    --------
    >>> with_overrides(EXP2_CLIENT_COUNT, client_counts=(2, 4)).client_counts
    (2, 4)
    >>> with_overrides(EXP2_CLIENT_COUNT, rounds=3).fl.rounds
    3
    """
    own = {f.name for f in dataclasses.fields(config)}
    if "seed" in changes:
        if "seeds" in changes:
            raise ValueError("give seed or seeds, not both")
        changes["seeds"] = (changes.pop("seed"),)
        changes.setdefault("seed_counts", ())  # one seed for every model
    fl_changes = {k: changes.pop(k) for k in list(changes) if k in FL_KNOBS}
    unknown = set(changes) - own
    if unknown:
        raise ValueError(f"{type(config).__name__} has no field(s) {sorted(unknown)}; "
                         f"fields: {sorted(own - {'fl'})} and the FL knobs {list(FL_KNOBS)}")
    if fl_changes:
        changes["fl"] = dataclasses.replace(changes.get("fl", config.fl), **fl_changes)
    return dataclasses.replace(config, **changes)


# Seeds: 3 for every conv1d and MLP run; fewer for the dense and LSTM runs, whose
# full-size runs take 15-70 min each on 2 cores (README says how many each row has).
# Seed 0 of Exp 1 and Exp 2 ran on TFF's process; further seeds run on the fastest
# engine (``auto``), which computes the same rounds (tests/test_plain_tf_engine.py).
EXP1_BASELINE_VS_FEDERATED = BaselineVsFederated(
    engine="auto", seeds=(0, 1, 2), seed_counts=(("dense", 2), ("lstm", 1)))
# Quick: the 12-speaker corpus, 1 round (1 epoch for the baselines), evaluation
# only at the end, one seed, on the fastest engine (``auto``: the plain-TF engine
# for these models; the same run on TFF's own process is the slow test
# ``test_exp1_quick_smoke_run_of_all_three_models_on_tff``).  The models stay the paper's, the 26 M-parameter dense one included.
# Rounds, not clips, are what cost: measured on 2 shared CPU cores, a TFF round
# of the dense model on 4 clients of this corpus took 16-28 s while a centralized
# epoch over the same 11-12 batches took 4-7 s, so fewer clips would save little
# and fewer rounds save most.
EXP1_BASELINE_VS_FEDERATED_QUICK = with_overrides(
    EXP1_BASELINE_VS_FEDERATED, size="small", max_speakers=12, rounds=1, eval_every=0,
    federated_eval=False, quick=True, seeds=(0,), seed_counts=(), engine="auto")

EXP2_CLIENT_COUNT = ClientCountSweep(engine="auto", seeds=(0, 1, 2))
# Quick: k = 1, 4, 8 on the small corpus, 1 round each, one seed.
EXP2_CLIENT_COUNT_QUICK = with_overrides(
    EXP2_CLIENT_COUNT, size="small", max_speakers=12, rounds=1, client_counts=(1, 4, 8),
    eval_every=0, federated_eval=False, quick=True, seeds=(0,), seed_counts=())

# Paper 001's future work ("one client per speaker"), run: Exp 1's models and
# knobs, 73 speaker clients; engine "auto" picks the plain-TF engine for all three.
EXP3_PER_SPEAKER_001 = BaselineVsFederated(
    name="exp3_per_speaker_001", paper="paper 001, future work (one client per speaker)",
    setups=("by_speaker",), engine="auto", seeds=(0, 1, 2),
    seed_counts=(("lstm", 1),))
# Quick: conv1d only (Exp 1's quick run already trains all three models; the
# dense and LSTM ones on 10 speaker clients made notebook 02's CI run the
# suite's slowest test), the small corpus, 1 round, one seed.
EXP3_PER_SPEAKER_001_QUICK = with_overrides(
    EXP3_PER_SPEAKER_001, size="small", max_speakers=12, rounds=1, eval_every=0,
    federated_eval=False, quick=True, seeds=(0,), seed_counts=(), models=("conv1d",))

# The main job: paper 000's point on the batched engine, 3 seeds (minutes).
PER_SPEAKER_MLP = PerSpeakerFederation(engine="auto", seeds=(0, 1, 2))
# Quick: the small corpus (10 training speakers, 2 held out), 3 rounds, one seed.
PER_SPEAKER_MLP_QUICK = with_overrides(
    PER_SPEAKER_MLP, size="small", max_speakers=12, rounds=3, federated_eval=False, quick=True,
    seeds=(0,))

# Paper 004: 16 settings x 200 rounds.  Full size is declared, not yet run here
# (README gives its measured cost); the quick variant runs K 5, E 1, B 10.
PAPER004_FEDAVG = Paper004Sweep(engine="auto", seeds=(0, 1, 2))
PAPER004_FEDAVG_QUICK = with_overrides(
    PAPER004_FEDAVG, size="small", max_speakers=12, rounds=2, eval_every=0, client_counts=(5,),
    local_epochs_grid=(1,), batch_sizes=(10,), federated_eval=False, quick=True, seeds=(0,))

PER_SPEAKER_ALGORITHMS = AlgorithmComparison(engine="auto", seeds=(0, 1, 2))
PER_SPEAKER_ALGORITHMS_QUICK = with_overrides(
    PER_SPEAKER_ALGORITHMS, size="small", max_speakers=12, rounds=2, eval_every=1,
    federated_eval=False, quick=True, seeds=(0,),
    settings=tuple(x for x in ALGORITHM_SETTINGS if x[0] in ("adam", "fedyogi", "fedprox",
                                                             "fedavg_compressed", "dp_z0.3")))
