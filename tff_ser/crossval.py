"""Speaker-independent evaluation: k folds over speakers, or leave one speaker out.

Each fold holds out a group of speakers that no client of that fold ever
trains on; the remaining speakers are the training clients (one client per
speaker by default, or any partition of their clips), and the features are
standardised with statistics of those training clients only
(:func:`tff_ser.task.make_task`).  Every speaker is held out in exactly one
fold, so pooling the folds' held-out predictions scores every clip of the
corpus once, by a model that never heard its speaker (FedAudio's 5 folds
over speakers; EmoBox's fold files; LOSO is the k = number of speakers case).

corpus -> features -> :func:`speaker_folds` -> per fold: partition -> train
(federated or centralized) -> predictions -> pooled and per-fold metrics.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from tff_ser.corpus.records import EMOTIONS_4

#: ``folds="loso"``: one fold per speaker.
LOSO = "loso"


def speaker_folds(clips: Sequence, folds: Union[int, str] = 5, *,
                  seed: int = 0) -> List[List[str]]:
    """The held-out speakers of each fold: every speaker in exactly one fold.

    Parameters
    ----------
    clips : sequence of Clip
    folds : int or "loso"
        Number of folds (2 .. number of speakers), or ``"loso"`` for one fold
        per speaker (in sorted speaker order).
    seed : int
        Seed of the shuffle that deals speakers to folds.  When every clip's
        ``sex`` is known, speakers are dealt round-robin within each sex, so
        each fold holds both sexes in proportion (as paper 000's split does).

    Returns
    -------
    list of sorted lists of speaker ids, one per fold; fold sizes differ by at most one.
    """
    speakers = sorted({c.speaker for c in clips})
    if folds == LOSO:
        return [[s] for s in speakers]
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)):
        raise ValueError(f"folds must be an int >= 2 or 'loso', got {folds!r}")
    if not 2 <= folds <= len(speakers):
        raise ValueError(f"folds={folds} needs 2..{len(speakers)} (the corpus has "
                         f"{len(speakers)} speakers); use 'loso' for one fold per speaker")
    sex = {}
    for c in clips:
        sex.setdefault(c.speaker, getattr(c, "sex", None))
    rng = np.random.default_rng([seed, 29])
    groups = [speakers]
    if all(sex[s] for s in speakers):
        groups = [[s for s in speakers if sex[s] == v] for v in sorted(set(sex.values()))]
    order = []
    for group in groups:
        order += [group[i] for i in rng.permutation(len(group))]
    out: List[List[str]] = [[] for _ in range(folds)]
    for i, speaker in enumerate(order):
        out[i % folds].append(speaker)
    return [sorted(f) for f in out]


@dataclasses.dataclass
class CrossValidation:
    """What :func:`cross_validate` produced.

    Attributes
    ----------
    folds : list of list of str
        Held-out speakers per fold.
    per_fold : DataFrame
        One row per fold: held-out speakers, clips, accuracy, UAR, macro F1,
        client-mean accuracy, training seconds.
    pooled : dict
        :func:`tff_ser.metrics.classification_metrics` over every held-out clip
        of every fold (UAR, macro F1, confusion matrix, per class).
    predictions : DataFrame
        One row per held-out clip: fold, clip_id, speaker, true, predicted
        (emotion codes).
    results : list of RunResult
        Each fold's run.
    settings : dict
    """

    folds: List[List[str]]
    per_fold: pd.DataFrame
    pooled: dict
    predictions: pd.DataFrame
    results: list
    settings: dict

    def summary(self) -> pd.DataFrame:
        """Pooled scores beside the mean ± sd and 95 % t-interval over folds."""
        from tff_ser.stats import mean_interval
        rows = []
        for metric, pooled_key in (("accuracy", "accuracy"), ("uar", "balanced_accuracy"),
                                   ("f1_macro", "f1_macro")):
            iv = mean_interval(self.per_fold[metric])
            rows.append({"metric": metric, "pooled": self.pooled[pooled_key],
                         "fold mean ± sd": iv.format(), "fold 95 % CI": iv.format_interval(),
                         "folds": iv.n})
        return pd.DataFrame(rows)

    def save(self, out_dir: str) -> None:
        """``folds.csv``, ``predictions.csv``, ``pooled.json`` and ``fold_<i>/`` runs."""
        os.makedirs(out_dir, exist_ok=True)
        self.per_fold.to_csv(os.path.join(out_dir, "folds.csv"), index=False)
        self.predictions.to_csv(os.path.join(out_dir, "predictions.csv"), index=False)
        with open(os.path.join(out_dir, "pooled.json"), "w", encoding="utf-8") as f:
            json.dump({"pooled": self.pooled, "settings": self.settings,
                       "folds": self.folds}, f, indent=1, default=str)
        for i, result in enumerate(self.results):
            result.save(os.path.join(out_dir, f"fold_{i}"))


def cross_validate(features, model: str, config, *, folds: Union[int, str] = 5,
                   mode: str = "federated", partition: str = "by_speaker", k: int = 4,
                   alpha: float = 0.5, fold_seed: int = 0, engine: str = "auto",
                   emotions: Sequence[str] = EMOTIONS_4, progress: bool = True,
                   out_dir: Optional[str] = None, workers=None) -> CrossValidation:
    """Train and score ``model`` once per speaker fold; pool the held-out predictions.

    Parameters
    ----------
    features : FeatureSet
        Features of the whole corpus in the kind ``model`` reads.
    model : str
    config : FederatedConfig
        The FL knobs (a centralized run uses :meth:`CentralizedConfig.matching`).
    folds : int or "loso"
    mode : {"federated", "centralized"}
    partition, k, alpha
        How each fold's training speakers' clips become clients (default one
        client per training speaker).
    fold_seed : int
        Seed of the speaker-to-fold deal (apart from ``config.seed``).
    engine : str
        FedAvg engine (see :func:`tff_ser.federated.train_federated`).
    workers : optional
        TFF workers of each fold's run (``train_federated(workers=)``).
    out_dir : str, optional
        Save the outcome there (see :meth:`CrossValidation.save`).
    """
    from tff_ser import partition as P
    from tff_ser.experiments.common import partition_train_clips
    from tff_ser.metrics import classification_metrics
    from tff_ser.task import make_task
    if mode not in ("federated", "centralized"):
        raise ValueError(f"mode must be 'federated' or 'centralized', got {mode!r}")
    clips = features.clips
    held_out = speaker_folds(clips, folds, seed=fold_seed)
    rows, predictions, results = [], [], []
    y_true: List[int] = []
    y_pred: List[int] = []
    class_names = None
    for i, val_speakers in enumerate(held_out):
        train_speakers = sorted({c.speaker for c in clips} - set(val_speakers))
        train_clients = partition_train_clips(clips, train_speakers, partition, k=k,
                                              alpha=alpha, seed=config.seed, emotions=emotions)
        val_clients = P.by_speaker(clips, speakers=val_speakers)
        info = {"corpus": "+".join(sorted({c.corpus for c in clips})), "partition": partition,
                "k": len(train_clients), "seed": config.seed, "fold": i,
                "folds": folds, "fold_seed": fold_seed, "val_speaker_ids": list(val_speakers),
                "train_speakers": len(train_speakers), "val_speakers": len(val_speakers),
                "feature_kind": features.kind}
        task = make_task(features, model, train_clients, val_clients, emotions=emotions,
                         info=info)
        if mode == "federated":
            from tff_ser.federated import train_federated
            result = train_federated(task, config, progress=progress, federated_eval=False,
                                     engine=engine, workers=workers)
        else:
            from tff_ser.centralized import CentralizedConfig, train_centralized
            result = train_centralized(task, CentralizedConfig.matching(config),
                                       progress=progress)
        result.extra.pop("weights", None)
        results.append(result)
        val = result.final_metrics["validation"]
        class_names = val.get("class_names") or list(task.class_names)
        pred = result.final_metrics["validation_predictions"]
        for index, true, predicted in zip(pred["index"], pred["true"], pred["predicted"]):
            clip = clips[index]
            predictions.append({"fold": i, "clip_id": clip.clip_id, "speaker": clip.speaker,
                                "true": class_names[true], "predicted": class_names[predicted]})
        y_true += pred["true"]
        y_pred += pred["predicted"]
        rows.append({"fold": i, "val_speakers": " ".join(val_speakers),
                     "val_clips": len(pred["index"]), "train_clients": len(train_clients),
                     "accuracy": val["accuracy"], "uar": val["balanced_accuracy"],
                     "f1_macro": val["f1_macro"],
                     "client_mean_accuracy": result.final_metrics.get(
                         "validation_client_mean_accuracy"),
                     "train_seconds": result.times.get("train_seconds")})
    pooled = classification_metrics(np.array(y_true), np.array(y_pred),
                                    num_classes=len(class_names), class_names=class_names)
    settings = {"model": model, "mode": mode, "folds": folds, "fold_seed": fold_seed,
                "partition": partition, "engine": engine, **config.to_dict()}
    outcome = CrossValidation(held_out, pd.DataFrame(rows), pooled, pd.DataFrame(predictions),
                              results, settings)
    if out_dir:
        outcome.save(out_dir)
    return outcome
