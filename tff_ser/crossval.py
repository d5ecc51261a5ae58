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
import inspect
import json
import os
from typing import List, Optional, Sequence, Union

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
        """``folds.csv``, ``predictions.csv``, ``pooled.json`` and ``fold_<i>/`` runs.

        Every file is written atomically and ``COMPLETE.json`` last
        (:mod:`tff_ser.rundir`); ``fold_<i>/`` folders beyond this outcome's
        folds (an earlier run with more folds) are removed.
        """
        import shutil
        from tff_ser.rundir import (atomic_write_csv, atomic_write_json, clear_complete,
                                    mark_complete)
        os.makedirs(out_dir, exist_ok=True)
        clear_complete(out_dir)
        for i, result in enumerate(self.results):
            result.save(os.path.join(out_dir, f"fold_{i}"))
        for name in os.listdir(out_dir):
            if name.startswith("fold_") and name[5:].isdigit() and \
                    int(name[5:]) >= len(self.results):
                shutil.rmtree(os.path.join(out_dir, name))
        atomic_write_csv(os.path.join(out_dir, "folds.csv"), self.per_fold)
        atomic_write_csv(os.path.join(out_dir, "predictions.csv"), self.predictions)
        atomic_write_json(os.path.join(out_dir, "pooled.json"),
                          {"pooled": self.pooled, "settings": self.settings,
                           "folds": self.folds}, default=str)
        mark_complete(out_dir, folds=len(self.results))


def cross_validate(features, model, config, *, folds: Union[int, str] = 5,
                   mode: str = "federated", partition: str = "by_speaker", k: int = 4,
                   alpha: float = 0.5, fold_seed: int = 0, engine: str = "auto",
                   emotions: Sequence[str] = EMOTIONS_4, progress: bool = True,
                   out_dir: Optional[str] = None, workers=None,
                   checkpoint_dir: Optional[str] = None,
                   allow_nonfinite: bool = False, normalization: str = "pooled",
                   enroll: Optional[int] = None) -> CrossValidation:
    """Train and score ``model`` once per speaker fold; pool the held-out predictions.

    Parameters
    ----------
    features : FeatureSet
        Features of the whole corpus in the kind ``model`` reads.
    model : str or KerasModel or TaskRecipe
        A preset name or a model of your own (:class:`tff_ser.models.KerasModel`),
        or a whole :class:`tff_ser.task.TaskRecipe` (then the fold tasks take
        its partition, k, alpha, emotions, normalization and enroll, and those
        arguments must be left at their defaults).
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
    checkpoint_dir : str, optional
        Make the folds resumable: fold ``i`` checkpoints every round under
        ``checkpoint_dir/fold_<i>/`` (federated) and keeps its finished result
        there; a rerun with the same arguments loads the finished folds
        without training and resumes the interrupted one from its last round.
        A checkpoint folder made with other folds or settings is refused.
    allow_nonfinite : bool
        See :func:`tff_ser.federated.train_federated`.
    normalization, enroll
        How each fold standardizes its features (:func:`tff_ser.task.make_task`):
        ``"pooled"``, ``"federated"`` or ``"per_client"`` (``enroll=k``: a held-out
        speaker's first k clips give its statistics and are not scored).
    """
    from tff_ser.metrics import classification_metrics
    from tff_ser.task import TaskRecipe
    if mode not in ("federated", "centralized"):
        raise ValueError(f"mode must be 'federated' or 'centralized', got {mode!r}")
    given = dict(partition=partition, k=k, alpha=alpha, emotions=tuple(emotions),
                 normalization=normalization, enroll=enroll)
    if isinstance(model, TaskRecipe):
        recipe = model
        changed = sorted(name for name, value in given.items()
                         if value != _RECIPE_DEFAULTS[name])
        if changed:
            raise ValueError(f"cross_validate got a TaskRecipe and also {', '.join(changed)}: "
                             "set them on the recipe (dataclasses.replace(recipe, ...))")
    else:
        recipe = TaskRecipe(model, **given)
    model, partition, k, alpha = recipe.model, recipe.partition, recipe.k, recipe.alpha
    normalization, enroll = recipe.normalization, recipe.enroll
    clips = features.clips
    held_out = speaker_folds(clips, folds, seed=fold_seed)
    from tff_ser.models import model_label
    settings = {"model": model_label(model),
                "mode": mode, "folds": folds, "fold_seed": fold_seed, "partition": partition,
                "k": k, "alpha": alpha, "engine": engine, **config.to_dict()}
    if normalization != "pooled":  # (pooled folds' checkpoints stay valid)
        settings.update(normalization=normalization, enroll=enroll)
    if checkpoint_dir:
        _check_fold_checkpoints(checkpoint_dir, settings, held_out)
    rows, predictions, results = [], [], []
    y_true: List[int] = []
    y_pred: List[int] = []
    class_names = None
    for i, val_speakers in enumerate(held_out):
        train_speakers = sorted({c.speaker for c in clips} - set(val_speakers))
        task = recipe.task_for_speakers(features, train_speakers, val_speakers, seed=config.seed,
                                        info={"fold": i, "folds": folds, "fold_seed": fold_seed,
                                              "val_speaker_ids": list(val_speakers)})
        fold_dir = os.path.join(checkpoint_dir, f"fold_{i}") if checkpoint_dir else None
        result = _finished_fold(fold_dir)
        # a centralized fold keeps its epochs in the same folder as a federated one its rounds
        state_dir = os.path.join(fold_dir, "rounds") if fold_dir else None
        if result is None and mode == "federated":
            from tff_ser.federated import train_federated
            result = train_federated(task, config, progress=progress, federated_eval=False,
                                     engine=engine, workers=workers, checkpoint_dir=state_dir,
                                     allow_nonfinite=allow_nonfinite)
        elif result is None:
            from tff_ser.centralized import CentralizedConfig, train_centralized
            result = train_centralized(task, CentralizedConfig.matching(config),
                                       progress=progress, checkpoint_dir=state_dir)
        result.extra.pop("weights", None)
        if fold_dir and not os.path.exists(os.path.join(fold_dir, FOLD_RESULT)):
            _keep_finished_fold(fold_dir, result)
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
                     "val_clips": len(pred["index"]), "train_clients": len(task.train_clients),
                     "accuracy": val["accuracy"], "uar": val["balanced_accuracy"],
                     "f1_macro": val["f1_macro"],
                     "client_mean_accuracy": result.final_metrics.get(
                         "validation_client_mean_accuracy"),
                     "train_seconds": result.times.get("train_seconds")})
    pooled = classification_metrics(np.array(y_true), np.array(y_pred),
                                    num_classes=len(class_names), class_names=class_names)
    outcome = CrossValidation(held_out, pd.DataFrame(rows), pooled, pd.DataFrame(predictions),
                              results, settings)
    if out_dir:
        outcome.save(out_dir)
    return outcome


#: A finished fold's result, kept in its checkpoint folder.
FOLD_RESULT = "result"
_FOLDS_FILE = "folds.json"


#: cross_validate's task arguments at their defaults: a TaskRecipe given instead
#: must not be contradicted by them.
_RECIPE_DEFAULTS = {name: (tuple(p.default) if name == "emotions" else p.default)
                    for name, p in inspect.signature(cross_validate).parameters.items()
                    if name in ("partition", "k", "alpha", "emotions", "normalization", "enroll")}


def _check_fold_checkpoints(checkpoint_dir: str, settings: dict, held_out) -> None:
    """Record (or compare) the folds and settings a checkpoint folder belongs to."""
    from tff_ser.rundir import atomic_write_json, check_writable, read_json
    check_writable(checkpoint_dir, what="checkpoint folder")
    path = os.path.join(checkpoint_dir, _FOLDS_FILE)
    wanted = json.loads(json.dumps({"settings": settings, "folds": held_out}, default=str))
    if os.path.exists(path):
        saved = read_json(path, what="fold checkpoint file",
                          remedy=f"delete the folder {checkpoint_dir} to start the folds over")
        if saved != wanted:
            differs = sorted(k for k in set(saved["settings"]) | set(wanted["settings"])
                             if saved["settings"].get(k) != wanted["settings"].get(k))
            if saved["folds"] != wanted["folds"]:
                differs.append("the speakers of each fold")
            raise ValueError(
                f"{checkpoint_dir} holds the folds of another cross-validation (differs in "
                f"{differs}); use another checkpoint folder or delete it to start over")
    else:
        atomic_write_json(path, wanted)


def _finished_fold(fold_dir: Optional[str]):
    """The saved result of a finished fold, or None."""
    from tff_ser.results import RunResult
    from tff_ser.rundir import is_complete
    if not fold_dir:
        return None
    where = os.path.join(fold_dir, FOLD_RESULT)
    return RunResult.load(where) if is_complete(where) else None


def _keep_finished_fold(fold_dir: str, result) -> None:
    import shutil
    from tff_ser.rundir import mark_complete
    where = os.path.join(fold_dir, FOLD_RESULT)
    result.save(where)
    mark_complete(where)
    # the fold's round (epoch) checkpoints are no longer needed once its result is kept
    shutil.rmtree(os.path.join(fold_dir, "rounds"), ignore_errors=True)


# ---------------------------------------------------------------------------
# several settings on the same folds
# ---------------------------------------------------------------------------

#: The long table of :func:`cross_validate_settings`: one row per setting, seed and fold.
SETTINGS_FILE = "folds.csv"


def cross_validate_settings(features, recipes, config, *, seeds: Sequence[int] = (0,),
                            folds: Union[int, str] = 5, fold_seed: int = 0,
                            engine: str = "auto", out_dir: Optional[str] = None,
                            progress: bool = True) -> pd.DataFrame:
    """Cross-validate several settings on the same speaker folds, once per seed.

    The deal of speakers to folds depends on ``fold_seed`` alone, so fold i
    holds out the same speakers for every setting and seed: the settings are
    paired fold by fold (:func:`compare_settings`).

    Parameters
    ----------
    features : FeatureSet
    recipes : mapping of str to TaskRecipe
        The settings, by label (e.g. one :class:`tff_ser.task.TaskRecipe` per
        normalization).
    config : FederatedConfig
        The FL knobs; its seed is replaced by each of ``seeds``.
    seeds, folds, fold_seed, engine, progress
        As :func:`cross_validate`.
    out_dir : str, optional
        ``out_dir/<label>-s<seed>/`` checkpoints each cross-validation (a rerun
        reads finished folds back and resumes the interrupted one), and
        ``out_dir/folds.csv`` receives the table once every setting is done.

    Returns
    -------
    DataFrame
        One row per (setting, seed, fold): held-out speakers and clips,
        accuracy, UAR, macro F1, and the UAR and macro F1 pooled over every
        held-out clip of that setting and seed (``pooled_uar``, ``pooled_f1``).
    """
    import dataclasses
    from tff_ser.rundir import atomic_write_csv, clear_complete, mark_complete
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        clear_complete(out_dir)
    frames = []
    for label, recipe in recipes.items():
        for seed in seeds:
            cv = cross_validate(
                features, recipe, dataclasses.replace(config, seed=int(seed)), folds=folds,
                fold_seed=fold_seed, engine=engine, progress=progress,
                checkpoint_dir=os.path.join(out_dir, f"{label}-s{seed}") if out_dir else None)
            frames.append(cv.per_fold.assign(
                setting=label, seed=int(seed), pooled_uar=cv.pooled["balanced_accuracy"],
                pooled_f1=cv.pooled["f1_macro"]))
    table = pd.concat(frames, ignore_index=True)
    first = ["setting", "seed", "fold"]
    table = table[first + [c for c in table.columns if c not in first]]
    if out_dir:
        atomic_write_csv(os.path.join(out_dir, SETTINGS_FILE), table)
        mark_complete(out_dir, settings=list(recipes), seeds=[int(s) for s in seeds],
                      folds=int(table["fold"].max()) + 1)
    return table


def compare_settings(table: pd.DataFrame, baseline: str, metric: str = "uar") -> pd.DataFrame:
    """Each setting of :func:`cross_validate_settings` against ``baseline``.

    One row per setting: the fold scores' mean ± sd and 95 % t-interval over
    every (seed, fold) cell, the pooled score's mean ± sd over seeds, and the
    difference from ``baseline`` with a paired t-test over the cells both
    ran (the same held-out speakers on both sides).  Folds share training
    speakers, so fold scores are not independent and their t-interval is
    narrower than the truth (Nadeau & Bengio, 2003); the pooled score over
    seeds is the stricter view.
    """
    from tff_ser.stats import compare, mean_interval
    if baseline not in set(table["setting"]):
        raise ValueError(f"baseline {baseline!r} is not a setting of the table; its settings "
                         f"are {', '.join(dict.fromkeys(table['setting']))}")
    pooled_col = {"uar": "pooled_uar", "f1_macro": "pooled_f1"}.get(metric)

    def cells(rows):
        return {f"s{s}-f{f}": v for s, f, v in zip(rows["seed"], rows["fold"], rows[metric])}

    base = cells(table[table["setting"] == baseline])
    out = []
    for setting, rows in table.groupby("setting", sort=False):
        iv = mean_interval(list(rows[metric]))
        row = {"setting": setting, "seeds": rows["seed"].nunique(), "folds": rows["fold"].nunique(),
               f"fold {metric} mean ± sd": iv.format(), "95 % CI": iv.format_interval()}
        if pooled_col:
            pooled = rows.drop_duplicates("seed")[pooled_col]
            row[f"pooled {metric} (mean ± sd over seeds)"] = mean_interval(list(pooled)).format()
        if setting != baseline:
            c = compare(cells(rows), base)
            row[f"- {baseline} (paired over folds)"] = \
                f"{c.diff:+.3f}" + (f", p = {c.paired_p:.3g}" if c.paired_p is not None else "")
        out.append(row)
    return pd.DataFrame(out)
