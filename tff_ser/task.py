"""A task bundles what training needs, from partitioner to process.

Following TFF's ``tff.simulation.baselines`` idea: one object carries the
model name, the (normalised) feature array, labels and the client partition,
so the centralized and federated trainers never guess input shapes or touch
clips, paths or normalisation again.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tff_ser.corpus.records import EMOTIONS_4

Partition = Dict[str, np.ndarray]


@dataclasses.dataclass
class Task:
    """Features, labels and clients for one experiment.

    Parameters
    ----------
    model : str or KerasModel or callable
        A preset name of :data:`tff_ser.models.MODELS`, a
        :class:`tff_ser.models.KerasModel` (builder, loss, metrics), or a bare
        ``builder(input_shape, num_classes)`` (wrapped once into a
        ``KerasModel`` with the default loss).
    x : ndarray, float32, shape (n_clips, ...)
        Features of every clip, already normalised with statistics of the
        training clients only.
    y : ndarray, int32, shape (n_clips,)
        Class index of every clip (order of ``class_names``).
    train_clients, val_clients : dict
        Client id -> indices into ``x``/``y``.  Validation clients are never
        trained on; paper 000 averages accuracy over them.
    class_names : tuple of str
        Emotion codes, e.g. ``("NEU", "HAP", "SAD", "ANG")``.
    info : dict
        Free-form provenance (corpus name, partition, seed) copied into results.
    normalizer : Standardizer, optional
        The standardization fitted on the training clients' clips (set by
        :func:`make_task`): apply it to new inputs of a model trained on this task
        (``tff_ser.stream.score_stream(..., normalize=task.normalizer.transform)``).
    """

    model: object
    x: np.ndarray
    y: np.ndarray
    train_clients: Partition
    val_clients: Partition
    class_names: Sequence[str] = EMOTIONS_4
    info: dict = dataclasses.field(default_factory=dict)
    normalizer: Optional[object] = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.model, str):
            from tff_ser.models import as_model
            self.model = as_model(self.model)  # once: caches key on this object
        self.x = np.asarray(self.x, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int32)
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")
        if not self.train_clients:
            raise ValueError("the task has no training clients")
        for name, part in (("train", self.train_clients), ("validation", self.val_clients)):
            for cid, idx in part.items():
                if len(idx) == 0:
                    raise ValueError(f"{name} client {cid!r} holds no clips; drop it "
                                     "or choose fewer clients")
        overlap = set(self.train_indices) & set(self.val_indices)
        if overlap:
            raise ValueError(f"{len(overlap)} clips are in both training and validation clients")

    def save(self, path) -> None:
        """Write the task's arrays to one ``.npz`` file (atomically), for :meth:`load`.

        Features, labels, clients, class names, provenance and the fitted
        normalizer; the model only by name (a preset), so a saved task can be
        trained where the features cannot be computed -- e.g. ``engine="jax"``
        in an environment without TensorFlow or librosa.
        """
        import io
        import json
        from tff_ser.rundir import atomic_write_bytes
        arrays = {"x": self.x, "y": self.y, "meta": np.asarray(json.dumps({
            "format": "tff_ser.task/1", "class_names": list(self.class_names),
            "model": self.model if isinstance(self.model, str) else None,
            "info": self.info, "train_clients": sorted(self.train_clients),
            "val_clients": sorted(self.val_clients),
            "normalizer": (self.normalizer.to_dict()
                           if getattr(self.normalizer, "fitted", False) else None),
        }, default=str))}
        for group in ("train", "val"):
            for i, cid in enumerate(sorted(getattr(self, f"{group}_clients"))):
                arrays[f"{group}/{i}"] = np.asarray(getattr(self, f"{group}_clients")[cid])
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(str(path), buffer.getvalue())

    @classmethod
    def load(cls, path, model=None) -> "Task":
        """A task written by :meth:`save`; ``model`` replaces the saved model name.

        Raises ``ValueError`` naming the file when it is not such a task, or
        when it saved no model name and ``model`` is not given.
        """
        import json
        import zipfile
        try:
            with np.load(str(path), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != "tff_ser.task/1":
                    raise KeyError("format")
                clients = {group: {cid: data[f"{group}/{i}"]
                                   for i, cid in enumerate(meta[f"{group}_clients"])}
                           for group in ("train", "val")}
                x, y = data["x"], data["y"]
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path} is not a task saved by Task.save ({type(exc).__name__}: "
                             f"{exc}); write one with task.save(path)") from None
        model = model if model is not None else meta["model"]
        if model is None:
            raise ValueError(f"{path} holds a task of a model of the user's own (saved without "
                             "a name); pass model=... to Task.load")
        normalizer = None
        if meta.get("normalizer"):
            from tff_ser.features.normalize import Standardizer
            normalizer = Standardizer.from_dict(meta["normalizer"])
        return cls(model, x, y, clients["train"], clients["val"],
                   class_names=tuple(meta["class_names"]), info=meta["info"],
                   normalizer=normalizer)

    @property
    def model_def(self):
        """The :class:`tff_ser.models.KerasModel` every trainer builds from."""
        from tff_ser.models import as_model
        return as_model(self.model)

    @property
    def model_name(self) -> str:
        """Label of the model in results and tables."""
        return self.model if isinstance(self.model, str) else self.model.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x.shape[1:])

    @property
    def train_indices(self) -> np.ndarray:
        return np.sort(np.concatenate([np.asarray(v) for v in self.train_clients.values()]))

    @property
    def val_indices(self) -> np.ndarray:
        if not self.val_clients:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate([np.asarray(v) for v in self.val_clients.values()]))


def make_task(features, model, train_clients: Mapping[str, np.ndarray],
              val_clients: Optional[Mapping[str, np.ndarray]] = None, *,
              emotions: Sequence[str] = EMOTIONS_4, standardize: bool = True,
              info: Optional[dict] = None, normalization: str = "pooled",
              enroll: Optional[int] = None) -> Task:
    """Build a :class:`Task` from a :class:`~tff_ser.features.pipeline.FeatureSet`.

    Features are standardized per feature (:mod:`tff_ser.features.normalize`),
    as ``normalization`` says:

    * ``"pooled"`` (default, the papers' reproduction): statistics of the
      training clients' clips pooled -- data a real federation could not pool;
    * ``"federated"``: the same statistics from each training client's count,
      sums and sums of squares added up (only aggregates leave a client;
      equal to pooled up to rounding, and to TFF's ``federated_sum`` of them:
      ``tests/integration/test_normalization.py``);
    * ``"per_client"``: every client with its own statistics, a held-out
      speaker too: from its own unlabeled clips (transductive), or with
      ``enroll=k`` from its first k clips, which are then not scored.

    Statistics never come from a held-out speaker's clips except that
    speaker's own (``per_client``).
    """
    from tff_ser.features.normalize import NORMALIZATIONS, Standardizer, moments
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                         f"{normalization!r}")
    if enroll is not None and normalization != "per_client":
        raise ValueError("enroll=k takes a held-out speaker's first k clips for its own "
                         "statistics: it needs normalization='per_client'")
    x = features.x.astype(np.float32)
    y = features.labels(emotions)
    train_clients = {k: np.asarray(v) for k, v in train_clients.items()}
    val_clients = {k: np.asarray(v) for k, v in (val_clients or {}).items()}
    normalizer = None
    if standardize and normalization == "pooled":
        train_idx = np.sort(np.concatenate(list(train_clients.values())))
        normalizer = Standardizer().fit(x[train_idx])
        x = normalizer.transform(x).astype(np.float32)
    elif standardize and normalization == "federated":
        sums = [moments(x[idx]) for idx in train_clients.values()]
        normalizer = Standardizer().fit_moments(*(sum(part) for part in zip(*sums)))
        x = normalizer.transform(x).astype(np.float32)
    elif standardize:
        x, val_clients = _per_client_standardized(x, train_clients, val_clients, enroll)
    info = dict(info or {})
    if normalization != "pooled":  # (pooled runs' records stay as they were)
        info["normalization"] = normalization
        if normalization == "per_client":
            info["enroll"] = enroll
            info["held_out_statistics"] = (f"first {enroll} clips (not scored)" if enroll
                                           else "its own unlabeled clips (transductive)")
            if enroll:
                scored = int(sum(len(v) for v in val_clients.values()))
                info["val_clips"] = scored
                if "description" in info:
                    info["description"] += (f"; each held-out speaker's first {enroll} clips "
                                            f"give its statistics and are not scored ({scored} "
                                            "scored)")
    corpora = sorted({c.corpus for c in features.clips})
    info.setdefault("corpus", corpora[0] if len(corpora) == 1 else corpora)
    info.setdefault("feature_kind", features.kind)
    return Task(model=model, x=x, y=y, train_clients=train_clients,
                val_clients=val_clients, class_names=tuple(emotions), info=info,
                normalizer=normalizer)


def with_label_noise(task: Task, rate: float, *, clients: Optional[Sequence[str]] = None,
                     seed: int = 0) -> Task:
    """``task`` with a fraction ``rate`` of the chosen training clients' labels flipped.

    Noisy clients (FedAudio's label-noise challenge): in each of ``clients``
    (default every training client) ``round(rate * n)`` of its clips, drawn
    with ``seed``, get another class, uniformly among the others.  Held-out
    labels are never touched (the scores stay honest).  The flips are recorded
    in ``task.info["label_noise"]`` (rate, seed, clients, clips flipped).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate is a fraction of each client's clips, in [0, 1]; got {rate}")
    chosen = sorted(task.train_clients) if clients is None else list(clients)
    unknown = sorted(set(chosen) - set(task.train_clients))
    if unknown:
        raise ValueError(f"{unknown} are not training clients of this task (held-out labels "
                         "are never made noisy)")
    y = task.y.copy()
    flipped = 0
    for i, cid in enumerate(chosen):
        idx = np.asarray(task.train_clients[cid])
        rng = np.random.default_rng([int(seed), i, 0x1AB])
        pick = rng.choice(idx, size=int(round(rate * len(idx))), replace=False)
        y[pick] = (y[pick] + rng.integers(1, task.num_classes, size=len(pick))) % task.num_classes
        flipped += len(pick)
    info = {**task.info, "label_noise": {"rate": rate, "seed": seed, "clients": chosen,
                                         "flipped": int(flipped)}}
    return dataclasses.replace(task, y=y, info=info)


def stratified_first(idx: np.ndarray, y: np.ndarray, k: int, seed) -> np.ndarray:
    """``k`` of ``idx`` spread over the classes present (round robin over shuffled classes)."""
    rng = np.random.default_rng(seed)
    by_class = {c: list(rng.permutation(idx[y[idx] == c])) for c in np.unique(y[idx])}
    order = []
    while len(order) < min(k, len(idx)):
        for c in sorted(by_class):
            if by_class[c] and len(order) < k:
                order.append(by_class[c].pop(0))
    return np.asarray(order, dtype=np.int64)


def split_client_clips(task: Task, fraction: float, *, seed: int = 0,
                       purpose: str = "held-back part") -> Tuple[Partition, Partition]:
    """Each training client's clips in two: what it keeps, and ``round(fraction * n)`` held back.

    The held-back clips are spread over the emotions the client has (round
    robin over its shuffled classes, seeded per client), so both parts see
    every emotion where the counts allow.  Personalization holds back each
    client's personal-test clips so (:func:`tff_ser.personalization.personal_split`),
    and an architecture search its validation clips (:func:`tff_ser.nas.search_task`).

    Returns
    -------
    kept, held : dict
        Client id -> sorted clip indices; the two are disjoint and together
        the client's clips.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the {purpose} fraction must be in (0, 1); got {fraction}")
    kept, held = {}, {}
    for i, (cid, idx) in enumerate(sorted(task.train_clients.items())):
        idx = np.asarray(idx)
        n_held = int(round(fraction * len(idx)))
        if n_held < 1 or n_held >= len(idx):
            raise ValueError(f"client {cid!r} has {len(idx)} clips: too few to keep "
                             f"{fraction:.0%} for its {purpose} and train on the rest")
        chosen = stratified_first(idx, task.y, n_held, seed=[seed, i, 1])
        held[cid] = np.sort(chosen)
        kept[cid] = np.setdiff1d(idx, chosen)
    return kept, held


def choose_clients(task: Task, fraction: float, *, seed: int = 0) -> List[str]:
    """``round(fraction * n)`` of the task's training clients (at least one), drawn with ``seed``
    (sorted): which clients an experiment makes noisy."""
    return choose_share(task.train_clients, fraction, seed=seed)


def choose_share(ids: Sequence[str], fraction: float, *, seed: int = 0) -> List[str]:
    """``round(fraction * len(ids))`` of ``ids`` (at least one), drawn with ``seed``, sorted
    (:func:`choose_clients`; ``tff-ser data noisy`` draws its noisy speakers the same way)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction of clients must be in (0, 1]; got {fraction}")
    ids = sorted(str(c) for c in ids)
    n = max(1, int(round(fraction * len(ids))))
    rng = np.random.default_rng([int(seed), 0x401])
    return sorted(str(c) for c in rng.choice(ids, size=n, replace=False))


def _per_client_standardized(x, train_clients, val_clients, enroll):
    """``x`` with every client's clips standardized by that client's own statistics."""
    from tff_ser.features.normalize import Standardizer
    x = x.copy()
    for idx in train_clients.values():
        x[idx] = Standardizer().fit(x[idx]).transform(x[idx])
    scored = {}
    for cid, idx in val_clients.items():
        stats_idx, keep = idx, idx
        if enroll:
            if len(idx) <= enroll:
                raise ValueError(f"held-out speaker {cid!r} has {len(idx)} clips: enroll={enroll} "
                                 "would leave none to score; use a smaller enroll")
            stats_idx, keep = idx[:enroll], idx[enroll:]
        scaler = Standardizer().fit(x[stats_idx])
        x[idx] = scaler.transform(x[idx])
        scored[cid] = keep
    return x, scored


# --------------------------------------------------------------------------
# building a Task: corpus -> features -> speaker split -> clients
# --------------------------------------------------------------------------

#: Partitions of the training speakers' clips into clients (validation
#: clients are always the held-out speakers, one client each): the names
#: registered in :data:`tff_ser.partition.PARTITIONERS`.
PARTITION_CHOICES = ("by_speaker", "iid", "single_emotion", "class_balanced", "dirichlet")


def limit_speakers(clips: Sequence, max_speakers: Optional[int]) -> list:
    """The clips of the first ``max_speakers`` speakers (sorted ids); all if None."""
    if max_speakers is None:
        return list(clips)
    keep = set(sorted({c.speaker for c in clips})[:max_speakers])
    return [c for c in clips if c.speaker in keep]


def load_features(model, *, data_dir: Optional[str] = None, size: str = "full",
                  corpus_seed: int = 0, emotions: Sequence[str] = EMOTIONS_4,
                  progress: bool = True, corpus_name: Optional[str] = None,
                  cache_dir: Optional[str] = None, max_speakers: Optional[int] = None,
                  n_jobs: Optional[int] = None, feature_kind: Optional[str] = None):
    """(CorpusLoad, FeatureSet) of the corpus in the feature kind ``model`` needs.

    ``model``: a preset name or a :class:`tff_ser.models.KerasModel`;
    ``feature_kind`` overrides (or, for a model of your own without one,
    supplies) the features: ``"clip_stats"``, ``"paper001"``, ``"logmel"``,
    ``"egemaps"``, ``"compare"``.

    ``corpus_seed`` picks the generated corpus (see :func:`tff_ser.corpus.resolve_corpus`);
    it has nothing to do with the training seed.  ``corpus_name`` labels a real
    corpus (see :func:`tff_ser.corpus.resolve_corpus`); ``cache_dir`` is the
    feature cache (default: see :func:`tff_ser.features.pipeline.extract`);
    ``max_speakers`` keeps the first that many speakers (sorted ids).
    """
    from tff_ser.corpus import resolve_corpus
    from tff_ser.features.pipeline import extract
    kind = model_feature_kind(model, feature_kind)
    load = resolve_corpus(data_dir, size=size, corpus_seed=corpus_seed, emotions=emotions,
                          progress=progress, corpus_name=corpus_name)
    clips = load.clips
    if max_speakers is not None:
        clips = limit_speakers(clips, max_speakers)
    features = extract(clips, kind, progress=progress,
                       cache_dir=cache_dir, n_jobs=n_jobs)
    return load, features


def model_feature_kind(model, feature_kind: Optional[str] = None) -> str:
    """The feature kind ``model`` reads (``feature_kind`` wins when given)."""
    from tff_ser.models import FEATURE_SHAPES, MODELS, KerasModel
    if feature_kind is None:
        if isinstance(model, str):
            if model not in MODELS:
                raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODELS)}")
            feature_kind = MODELS[model].feature_kind
        elif isinstance(model, KerasModel) and model.feature_kind:
            feature_kind = model.feature_kind
        else:
            raise ValueError(f"model {getattr(model, 'name', model)!r} does not say which "
                             f"features it reads; pass feature_kind= one of {sorted(FEATURE_SHAPES)}")
    if feature_kind not in FEATURE_SHAPES:
        raise ValueError(f"unknown feature_kind {feature_kind!r}; choose one of {sorted(FEATURE_SHAPES)}")
    return feature_kind


def _label(model) -> str:
    from tff_ser.models import model_label
    return model_label(model)


def partition_train_clips(clips, train_speakers, partition: str, *, k: int = 4,
                          alpha: float = 0.5, seed: int = 0,
                          emotions: Sequence[str] = EMOTIONS_4):
    """Client id -> indices into ``clips`` for the training speakers' clips.

    ``partition`` is a name registered in :data:`tff_ser.partition.PARTITIONERS`
    (:func:`tff_ser.partition.partition_clips`).
    """
    from tff_ser.partition import partition_clips
    keep = set(train_speakers)
    train_idx = np.array([i for i, c in enumerate(clips) if c.speaker in keep])
    part = partition_clips(partition, [clips[i] for i in train_idx], k=k, alpha=alpha,
                           seed=seed, emotions=emotions)
    return {cid: train_idx[np.asarray(idx)] for cid, idx in part.items()}


def task_for_speakers(features, model, train_speakers: Sequence[str],
                      held_out_speakers: Sequence[str], *, partition: str = "by_speaker",
                      k: int = 4, alpha: float = 0.5, seed: int = 0,
                      emotions: Sequence[str] = EMOTIONS_4,
                      info: Optional[dict] = None, normalization: str = "pooled",
                      enroll: Optional[int] = None) -> "Task":
    """The Task of one speaker split: the single split and every fold are built here.

    The training speakers' clips are partitioned into clients
    (:func:`partition_train_clips`); every held-out speaker is one validation
    client; features are standardised on the training clips only
    (:func:`make_task`).  ``info`` adds to (and wins over) the task's record.
    """
    from tff_ser import partition as P
    clips = features.clips
    train_clients = partition_train_clips(clips, train_speakers, partition, k=k, alpha=alpha,
                                          seed=seed, emotions=emotions)
    val_clients = P.by_speaker(clips, speakers=list(held_out_speakers))
    corpora = sorted({c.corpus for c in clips})
    corpus = corpora[0] if len(corpora) == 1 else "+".join(corpora)
    record = {"corpus": corpus, "partition": partition, "k": len(train_clients),
              "alpha": alpha if partition == "dirichlet" else None, "seed": seed,
              "train_speakers": len(train_speakers), "val_speakers": len(held_out_speakers),
              "train_clips": int(sum(len(v) for v in train_clients.values())),
              "val_clips": int(sum(len(v) for v in val_clients.values())),
              "feature_kind": features.kind}
    record.update(info or {})
    record.setdefault("description", (
        f"{_label(model)} on the {corpus} corpus: {record['train_speakers']} training speakers "
        f"in {record['k']} {partition} clients ({record['train_clips']} clips), "
        f"{record['val_speakers']} held-out speakers ({record['val_clips']} clips)"))
    return make_task(features, model, train_clients, val_clients, emotions=emotions,
                     info=record, normalization=normalization, enroll=enroll)


def task_from_features(features, model, *, partition: str = "by_speaker", k: int = 4,
                       alpha: float = 0.5, seed: int = 0, val_fraction: float = 0.2,
                       split_seed: int = 0, emotions: Sequence[str] = EMOTIONS_4,
                       normalization: str = "pooled", enroll: Optional[int] = None):
    """Split speakers into train/validation and build the :class:`Task`.

    ``split_seed`` fixes the held-out speakers independently of ``seed`` (which
    seeds the client partition and training), so runs with different seeds are
    scored on the same validation speakers.  The same as
    ``TaskRecipe(model, ...).task(features, seed)`` (:class:`TaskRecipe`).
    """
    return TaskRecipe(model, partition=partition, k=k, alpha=alpha, val_fraction=val_fraction,
                      split_seed=split_seed, emotions=tuple(emotions),
                      normalization=normalization, enroll=enroll).task(features, seed=seed)


@dataclasses.dataclass(frozen=True)
class TaskRecipe:
    """How a corpus's features become a :class:`Task`: one description for every front door.

    The CLI (``tff-ser train``), an experiment's runs
    (:meth:`tff_ser.experiments.RunSpec.recipe`), cross-validation's folds
    (:func:`tff_ser.crossval.cross_validate`) and both HPO studies
    (:meth:`tff_ser.hpo.space.GridSpace.recipe`) build their tasks from one of
    these, so a new knob of the task is added here once.

    The training seed is not part of the recipe: it seeds the client
    partition and the training, and is passed to :meth:`task`;
    ``split_seed`` (which speakers are held out) is, so runs of one recipe
    with different seeds are scored on the same speakers.

    Parameters
    ----------
    model : str or KerasModel
        A preset name of :data:`tff_ser.models.MODELS` or a model of your own.
    partition : str
        How the training speakers' clips become clients: a name registered in
        :data:`tff_ser.partition.PARTITIONERS` (``"by_speaker"``, ``"iid"``,
        ``"single_emotion"``, ``"dirichlet"``, ...).
    k : int
        Clients, for the partitions that take a count.
    alpha : float
        Dirichlet concentration (``partition="dirichlet"`` only).
    val_fraction : float
        Share of the speakers held out for validation (single split).
    split_seed : int
        Seeds which speakers are held out.
    emotions : tuple of str
        The classes, e.g. ``EMOTIONS_4``.
    normalization : {"pooled", "federated", "per_client"}
        Where the feature statistics come from (:func:`make_task`).
    enroll : int, optional
        With ``per_client``: a held-out speaker's first ``enroll`` clips fit its
        statistics and are not scored.

    Examples
    --------
    >>> recipe = TaskRecipe("mlp", partition="iid", k=8)           # doctest: +SKIP
    >>> task = recipe.task(features, seed=1)                       # doctest: +SKIP
    >>> fold = recipe.task_for_speakers(features, train, held_out)  # doctest: +SKIP
    """

    model: object = "mlp"
    partition: str = "by_speaker"
    k: int = 4
    alpha: float = 0.5
    val_fraction: float = 0.2
    split_seed: int = 0
    emotions: Tuple[str, ...] = EMOTIONS_4
    normalization: str = "pooled"
    enroll: Optional[int] = None

    def __post_init__(self):
        from tff_ser.features.normalize import NORMALIZATIONS
        from tff_ser.partition import get_partitioner
        get_partitioner(self.partition)  # a clear error naming the registered ones
        object.__setattr__(self, "emotions", tuple(self.emotions))
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or (
                self.k < 1 and self.partition != "by_speaker"):  # by_speaker takes no count
            raise ValueError(f"k (clients) must be a positive integer for partition "
                             f"{self.partition!r}, got {self.k!r}")
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got "
                             f"{self.val_fraction!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                             f"{self.normalization!r}")
        if self.enroll is not None and self.normalization != "per_client":
            raise ValueError("enroll=k takes a held-out speaker's first k clips for its own "
                             "statistics; it needs normalization='per_client'")

    def task(self, features, seed: int = 0) -> Task:
        """The single split: ``val_fraction`` of the speakers held out (``split_seed``)."""
        from tff_ser import partition as P
        train_spk, val_spk = P.split_speakers(features.clips, val_fraction=self.val_fraction,
                                              seed=self.split_seed)
        return self.task_for_speakers(features, train_spk, val_spk, seed=seed,
                                      info=_split_info(self.split_seed))

    def task_for_speakers(self, features, train_speakers: Sequence[str],
                          held_out_speakers: Sequence[str], *, seed: int = 0,
                          info: Optional[dict] = None) -> Task:
        """The task of given training and held-out speakers (a fold, a chosen split)."""
        return task_for_speakers(features, self.model, train_speakers, held_out_speakers,
                                 partition=self.partition, k=self.k, alpha=self.alpha,
                                 seed=seed, emotions=self.emotions, info=info,
                                 normalization=self.normalization, enroll=self.enroll)

    def prepare(self, *, seed: int = 0, data_dir: Optional[str] = None, size: str = "full",
                corpus_seed: int = 0, progress: bool = True,
                feature_kind: Optional[str] = None) -> Task:
        """Load the corpus's features (:func:`load_features`) and build :meth:`task`."""
        _, features = load_features(self.model, data_dir=data_dir, size=size,
                                    corpus_seed=corpus_seed, emotions=self.emotions,
                                    progress=progress, feature_kind=feature_kind)
        return self.task(features, seed=seed)


def _split_info(split_seed: int) -> dict:
    # key order of the record the single split has always written (run configs compare it)
    return {"split_seed": split_seed}


def prepare_task(model, *, partition: str = "by_speaker", k: int = 4, alpha: float = 0.5,
                 data_dir: Optional[str] = None, size: str = "full", seed: int = 0,
                 val_fraction: float = 0.2, split_seed: int = 0,
                 emotions: Sequence[str] = EMOTIONS_4, progress: bool = True,
                 corpus_seed: int = 0, feature_kind: Optional[str] = None,
                 normalization: str = "pooled", enroll: Optional[int] = None):
    """Load, featurise and partition a corpus for ``model``: the one-call path to a Task.

    ``model`` is a preset name or a :class:`tff_ser.models.KerasModel` of your
    own (then say which features it reads with ``feature_kind``, unless the
    model carries one).

    ``seed`` seeds the client partition (and is the training seed callers
    pass on); ``corpus_seed`` picks the generated corpus.  The two are apart:
    building a task with any training seed never touches the corpus on disk.
    """
    recipe = TaskRecipe(model, partition=partition, k=k, alpha=alpha, val_fraction=val_fraction,
                        split_seed=split_seed, emotions=tuple(emotions),
                        normalization=normalization, enroll=enroll)
    return recipe.prepare(seed=seed, data_dir=data_dir, size=size, corpus_seed=corpus_seed,
                          progress=progress, feature_kind=feature_kind)
