"""Experiments as declared configs: the machinery every baseline's experiments share.

An experiment is a frozen dataclass (:class:`ExperimentConfig`) whose fields
are a paper's settings, with a full-size instance and a ``quick`` one (the
small generated corpus and a couple of rounds, for CI and a first look).
:meth:`~ExperimentConfig.runs` expands a config into the single runs
(:class:`RunSpec`) it consists of, so "how is Table 1 reproduced" has a
one-line answer: ``PAPER001_EXP1.runs()``.  The papers' own configs live in
their baselines (:mod:`tff_ser.baselines`).

Every experiment scores on the same held-out speakers (20 %, one validation
client each, chosen by ``split_seed``), so client partitions are split from
the training speakers' clips only.
"""
from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from tff_ser.distillation import KDConfig
from tff_ser.fedconfig import FederatedConfig
from tff_ser.personalization import PersonalPlan

if TYPE_CHECKING:  # declaring an experiment loads nothing under tff_ser.engines but its base
    from tff_ser.engines.search_spec import SearchSpec

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
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "fl"}
        d = {k: (dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v) for k, v in d.items()}
        d.update(self.fl.to_dict())
        return d

#: RunSpec fields that name a run or say who computed it, not what it computes.
RUN_KEY_IGNORES = ("run_id", "condition", "engine")
#: RunSpec fields left out of a run's key at their default (added after runs were saved).
RUN_KEY_DEFAULTS = (("teacher", ""), ("kd", None), ("keep_weights", False),
                    ("normalization", "pooled"), ("enroll", None), ("personal", None),
                    ("label_noise", 0.0), ("noisy_clients", 0.5), ("model_kwargs", ()),
                    ("feature_kind", ""), ("search", None), ("genotype_from", ""),
                    ("branches", ()), ("fusion", ""))

#: Fusion levels a run may train (:mod:`tff_ser.fusion`).
FUSION_LEVELS = ("decision", "feature")

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
        :data:`tff_ser.task.PARTITION_CHOICES`).  A centralized
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
    teacher : str
        Knowledge distillation (paper 002): the condition of the run, in the
        same experiment, whose trained model this run's student learns from
        (its seed matched: ``<teacher>-s<seed>``); ``""`` for ordinary training.
    kd : KDConfig, optional
        The distillation loss (:class:`tff_ser.distillation.KDConfig`) with ``teacher``.
    keep_weights : bool
        Save the final weights beside ``result.json`` (``weights.npz``, not
        committed): a teacher's, for the runs that distil from it.
    normalization : {"pooled", "federated", "per_client"}
        How the task standardizes its features (:func:`tff_ser.task.make_task`).
    enroll : int, optional
        With ``"per_client"``: a held-out speaker's first k clips give its
        statistics and are not scored.
    personal : PersonalPlan, optional
        Each training client's own model and number
        (:class:`tff_ser.personalization.PersonalPlan`: fine-tuning after
        FedAvg, FedPer or Ditto, scored on each client's personal-test clips;
        held-out speakers' enrollment); federated runs only.
    label_noise : float
        Noisy clients (FedAudio's challenge): this fraction of each noisy
        client's training labels flipped (:func:`tff_ser.task.with_label_noise`,
        the run's seed); held-out and personal-test labels stay clean.
    noisy_clients : float
        The share of training clients that are noisy (drawn with the run's
        seed, :func:`tff_ser.task.choose_clients`).
    model_kwargs : tuple of (name, value)
        Hyperparameters of the preset ``model`` (``(("input_pool", 2),)``);
        values JSON-able.
    feature_kind : str
        The features the run reads when not its model's own
        (``MODELS[model].feature_kind``): e.g. paper 001's ``conv1d`` on
        paper 003's ``"spectrogram"``.
    search : SearchSpec, optional
        The run is an architecture search of its model (a DARTS search
        network, :mod:`tff_ser.nas`): federated is FedNAS over the run's
        clients, centralized is DARTS on one client holding every training
        clip.  Its result holds the searched genotype.
    genotype_from : str
        The run id of a search run of the same experiment whose genotype
        builds this run's model (``genotype=`` of ``darts_derived``).
    branches : tuple of str
        Fusion (paper 003): the conditions of two or more runs of the same
        experiment (seed matched, each with ``keep_weights``) whose trained
        models' outputs are this run's features; ``fusion`` says which.
    fusion : {"", "decision", "feature"}
        The branches' class probabilities, or their embeddings (the input of
        each branch's output layer), concatenated (:func:`tff_ser.fusion.fusion_task`).
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
    teacher: str = ""
    kd: Optional[KDConfig] = None
    keep_weights: bool = False
    normalization: str = "pooled"
    enroll: Optional[int] = None
    personal: Optional[PersonalPlan] = None
    label_noise: float = 0.0
    noisy_clients: float = 0.5
    model_kwargs: Tuple[Tuple[str, object], ...] = ()
    feature_kind: str = ""
    search: Optional[SearchSpec] = None
    genotype_from: str = ""
    branches: Tuple[str, ...] = ()
    fusion: str = ""

    def __post_init__(self):
        kwargs = tuple((str(k), v) for k, v in self.model_kwargs)
        try:
            json.dumps(dict(kwargs))
        except TypeError:
            raise ValueError(f"run {self.run_id!r}: model_kwargs must be JSON-able "
                             f"(numbers, strings, lists, dicts); got {self.model_kwargs!r}") from None
        object.__setattr__(self, "model_kwargs", kwargs)
        object.__setattr__(self, "branches", tuple(self.branches))
        if self.fusion not in ("",) + FUSION_LEVELS:
            raise ValueError(f"run {self.run_id!r}: fusion must be one of {FUSION_LEVELS} or "
                             f"'', got {self.fusion!r}")
        if bool(self.fusion) != bool(self.branches) or len(self.branches) == 1:
            raise ValueError(f"run {self.run_id!r}: a fusion run names its level and two or more "
                             f"branches (fusion={self.fusion!r}, branches={self.branches!r})")
        if self.search is not None and (self.genotype_from or self.branches or self.teacher):
            raise ValueError(f"run {self.run_id!r}: a search run trains its search network "
                             "alone (no genotype_from, branches or teacher)")
        from tff_ser.engines.base import ENGINE_NAMES as ENGINES
        if self.personal is not None and self.mode != FEDERATED:
            raise ValueError(f"run {self.run_id!r}: personalization (personal=) is for federated "
                             "runs; a centralized run has no clients")
        if not 0.0 <= self.label_noise <= 1.0 or not 0.0 < self.noisy_clients <= 1.0:
            raise ValueError(f"run {self.run_id!r}: label_noise must be in [0, 1] and "
                             f"noisy_clients in (0, 1]; got {self.label_noise}, "
                             f"{self.noisy_clients}")
        if not self.condition:
            object.__setattr__(self, "condition", self.run_id)
        if bool(self.teacher) != (self.kd is not None):
            raise ValueError(f"run {self.run_id!r}: a teacher and a KDConfig go together "
                             f"(teacher={self.teacher!r}, kd={self.kd!r})")
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
        (engines compute the same rounds, see ``tests/integration/test_plain_tf_engine.py``)."""
        key = {k: v for k, v in self.to_dict().items() if k not in RUN_KEY_IGNORES}
        for name, default in RUN_KEY_DEFAULTS:  # so runs saved before these fields still match
            if key.get(name) == default:
                key.pop(name)
        return json.loads(json.dumps(key))  # as result.json reads it back (tuples as lists)

    def upstream(self) -> Tuple[str, ...]:
        """The runs of the same experiment this run reads: its teacher, search and branches."""
        ids = [f"{self.teacher}-s{self.seed}"] if self.teacher else []
        if self.genotype_from:
            ids.append(self.genotype_from)
        return tuple(ids) + self.branch_runs()

    def branch_runs(self) -> Tuple[str, ...]:
        """The run ids a fusion run fuses (its branches at its own seed)."""
        return tuple(f"{b}-s{self.seed}" for b in self.branches)

    def model_def(self, **extra):
        """The run's model: the preset name, or with ``model_kwargs`` (and ``extra``) a
        :class:`tff_ser.models.KerasModel` of the preset's builder with them."""
        kwargs = {**dict(self.model_kwargs), **extra}
        if not kwargs:
            return self.model
        from tff_ser.models import KerasModel, get_spec
        spec = get_spec(self.model)
        return KerasModel(spec.builder, name=self.model, hyperparameters=kwargs,
                          feature_kind=self.feature_kind or spec.feature_kind)

    def recipe(self, model=None):
        """The :class:`tff_ser.task.TaskRecipe` of this run (its task is ``recipe().task(features, seed)``);
        ``model`` replaces :meth:`model_def` (a derived network with its searched genotype)."""
        from tff_ser.task import TaskRecipe
        return TaskRecipe(self.model_def() if model is None else model,
                          partition=self.partition, k=self.clients,
                          split_seed=self.split_seed, normalization=self.normalization,
                          enroll=self.enroll)

    def federated_config(self) -> FederatedConfig:
        """The :class:`tff_ser.fedconfig.FederatedConfig` of this run."""
        return self.fl

    def centralized_config(self):
        """The baseline matched to this run: epochs = rounds, same BS, client LR and seed."""
        from tff_ser.centralized import CentralizedConfig
        return CentralizedConfig.matching(self.federated_config(), eval_every=self.eval_every)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(_ReadsFlKnobs):
    """Settings every experiment has: corpus size, split seed, engine, and its FL knobs (``fl``).

    A baseline subclasses it (:mod:`tff_ser.baselines`): its fields are the
    paper's settings, :meth:`conditions` declares the runs, and four hooks
    shape its report without the runner knowing the paper --
    :meth:`column_label`, :meth:`summary_figures`, :meth:`comparison_pairs`
    and :meth:`paper_section`.
    """

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
    #: Feature standardization of every run: "pooled" (the papers'), "federated" or
    #: "per_client" (with ``enroll``: a held-out speaker's first k clips give its statistics).
    normalization: str = "pooled"
    enroll: Optional[int] = None

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
                    engine=self.engine, normalization=self.normalization, enroll=self.enroll)
            for seed in self.seeds_for(model))

    def conditions(self) -> Tuple[RunSpec, ...]:
        """The settings this experiment compares, without the seeds (each subclass declares them)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its runs")

    def runs(self) -> Tuple[RunSpec, ...]:
        """Every single run: each of :meth:`conditions` once per seed."""
        return tuple(spec for specs in self.conditions() for spec in specs)

    # ---- report hooks (tff_ser.experiments.report) ------------------------

    def column_label(self, spec: RunSpec) -> str:
        """The column / curve a run fills in the figures (default: its setup's label)."""
        return SETUP_LABELS.get(spec.setup, spec.setup)

    def summary_figures(self, table, corpus_note: str) -> List[tuple]:
        """``(name, figure)`` pairs drawn beside the confusion matrices and curves.

        Default: held-out scores as bars, one group per setting.
        """
        from tff_ser import plots
        return [("metrics", plots.plot_metric_bars(
            table.assign(setup=table["setup"].map(lambda s: SETUP_LABELS.get(s, s))),
            title=f"{self.name}: held-out scores ({corpus_note})"))]

    def comparison_pairs(self, conditions: Sequence[str]) -> List[tuple]:
        """``(condition a, condition b)`` differences the summary tests over seeds.

        Default: per model, each setting against the centralized one, and IID
        against single-emotion clients.
        """
        pairs = []
        for model in self.models:
            setups = [c for c in conditions if c.startswith(f"{model}-")]
            if f"{model}-centralized" in setups:
                pairs += [(c, f"{model}-centralized") for c in setups
                          if c != f"{model}-centralized"]
            if f"{model}-iid" in setups and f"{model}-single_emotion" in setups:
                pairs.append((f"{model}-iid", f"{model}-single_emotion"))
        return pairs

    def paper_section(self, table) -> List[str]:
        """Markdown lines of ``summary.md``'s section on the paper's own numbers (default none)."""
        return []


# ---------------------------------------------------------------------------
# the declared experiments: full size (the paper's settings) and quick
# ---------------------------------------------------------------------------

def with_overrides(config: ExperimentConfig, **changes) -> ExperimentConfig:
    """``config`` with some fields replaced (and every run re-validated).

    FL knobs (``rounds``, ``client_lr``, ... :data:`FL_KNOBS`) go into the
    config's ``fl``; everything else is one of the config's own fields.  The
    training seed is the experiment's ``seeds``: ``seed=3`` means ``seeds=(3,)``.

    Examples
    --------
    >>> from tff_ser.baselines.paper001.configs import PAPER001_EXP2
    >>> with_overrides(PAPER001_EXP2, client_counts=(2, 4)).client_counts
    (2, 4)
    >>> with_overrides(PAPER001_EXP2, rounds=3).fl.rounds
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
