"""A task bundles what training needs, from partitioner to process.

Following TFF's ``tff.simulation.baselines`` idea: one object carries the
model name, the (normalised) feature array, labels and the client partition,
so the centralized and federated trainers never guess input shapes or touch
clips, paths or normalisation again.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Optional, Sequence

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
    """

    model: object
    x: np.ndarray
    y: np.ndarray
    train_clients: Partition
    val_clients: Partition
    class_names: Sequence[str] = EMOTIONS_4
    info: dict = dataclasses.field(default_factory=dict)

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
              info: Optional[dict] = None) -> Task:
    """Build a :class:`Task` from a :class:`~tff_ser.features.pipeline.FeatureSet`.

    Normalisation statistics come from the training clients' clips only, so
    nothing about the validation speakers leaks into training.
    """
    x = features.x.astype(np.float32)
    y = features.labels(emotions)
    train_clients = {k: np.asarray(v) for k, v in train_clients.items()}
    val_clients = {k: np.asarray(v) for k, v in (val_clients or {}).items()}
    if standardize:
        from tff_ser.features.normalize import Standardizer
        train_idx = np.sort(np.concatenate(list(train_clients.values())))
        x = Standardizer().fit(x[train_idx]).transform(x).astype(np.float32)
    info = dict(info or {})
    corpora = sorted({c.corpus for c in features.clips})
    info.setdefault("corpus", corpora[0] if len(corpora) == 1 else corpora)
    info.setdefault("feature_kind", features.kind)
    return Task(model=model, x=x, y=y, train_clients=train_clients,
                val_clients=val_clients, class_names=tuple(emotions), info=info)
