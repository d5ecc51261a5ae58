"""corpus -> features -> speaker split -> client partition -> Task, in one call.

Every experiment, notebook and the CLI's ``train`` build their tasks here, so
the held-out speakers, the normalisation and the partition are made the same
way everywhere.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tff_ser.corpus.records import EMOTIONS_4

#: Partitions of the training speakers' clips into clients (validation
#: clients are always the held-out speakers, one client each).
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
    """Client id -> indices into ``clips`` for the training speakers' clips."""
    from tff_ser import partition as P
    train_idx = np.array([i for i, c in enumerate(clips) if c.speaker in set(train_speakers)])
    sub = [clips[i] for i in train_idx]
    if partition == "by_speaker":
        part = P.by_speaker(sub)
    elif partition == "iid":
        part = P.iid(sub, k, seed=seed)
    elif partition == "single_emotion":
        part = P.single_emotion(sub, k, emotions=emotions, seed=seed)
    elif partition == "class_balanced":
        part = P.class_balanced(sub, k, emotions=emotions, seed=seed)
    elif partition == "dirichlet":
        part = P.dirichlet(sub, k, alpha, emotions=emotions, seed=seed)
    else:
        raise ValueError(f"unknown partition {partition!r}; choose one of {PARTITION_CHOICES}")
    return {cid: train_idx[np.asarray(idx)] for cid, idx in part.items()}


def task_from_features(features, model, *, partition: str = "by_speaker", k: int = 4,
                       alpha: float = 0.5, seed: int = 0, val_fraction: float = 0.2,
                       split_seed: int = 0, emotions: Sequence[str] = EMOTIONS_4):
    """Split speakers (train / held-out), partition the training clips, build the Task.

    ``split_seed`` fixes the held-out speakers independently of ``seed`` (which
    seeds the client partition and training), so runs with different seeds are
    scored on the same validation speakers.
    """
    from tff_ser import partition as P
    from tff_ser.task import make_task
    clips = features.clips
    train_spk, val_spk = P.split_speakers(clips, val_fraction=val_fraction, seed=split_seed)
    train_clients = partition_train_clips(clips, train_spk, partition, k=k, alpha=alpha,
                                          seed=seed, emotions=emotions)
    val_clients = P.by_speaker(clips, speakers=val_spk)
    corpora = sorted({c.corpus for c in clips})
    corpus = corpora[0] if len(corpora) == 1 else "+".join(corpora)
    info = {"corpus": corpus, "partition": partition, "k": len(train_clients),
            "alpha": alpha if partition == "dirichlet" else None, "seed": seed,
            "split_seed": split_seed,
            "train_speakers": len(train_spk), "val_speakers": len(val_spk),
            "train_clips": int(sum(len(v) for v in train_clients.values())),
            "val_clips": int(sum(len(v) for v in val_clients.values())),
            "feature_kind": features.kind}
    info["description"] = (
        f"{_label(model)} on the {corpus} corpus: {info['train_speakers']} training speakers in "
        f"{info['k']} {partition} clients ({info['train_clips']} clips), "
        f"{info['val_speakers']} held-out speakers ({info['val_clips']} clips)")
    return make_task(features, model, train_clients, val_clients, emotions=emotions, info=info)


def prepare_task(model, *, partition: str = "by_speaker", k: int = 4, alpha: float = 0.5,
                 data_dir: Optional[str] = None, size: str = "full", seed: int = 0,
                 val_fraction: float = 0.2, split_seed: int = 0,
                 emotions: Sequence[str] = EMOTIONS_4, progress: bool = True,
                 corpus_seed: int = 0, feature_kind: Optional[str] = None):
    """Load, featurise and partition a corpus for ``model``: the one-call path to a Task.

    ``model`` is a preset name or a :class:`tff_ser.models.KerasModel` of your
    own (then say which features it reads with ``feature_kind``, unless the
    model carries one).

    ``seed`` seeds the client partition (and is the training seed callers
    pass on); ``corpus_seed`` picks the generated corpus.  The two are apart:
    building a task with any training seed never touches the corpus on disk.
    """
    _, features = load_features(model, data_dir=data_dir, size=size, corpus_seed=corpus_seed,
                                emotions=emotions, progress=progress, feature_kind=feature_kind)
    return task_from_features(features, model, partition=partition, k=k, alpha=alpha,
                              seed=seed, val_fraction=val_fraction, split_seed=split_seed,
                              emotions=emotions)
