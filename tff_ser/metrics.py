"""The one metrics function every trainer, table and notebook uses.

Paper 001 reports accuracy, precision, recall and F1 from scikit-learn;
paper 002 adds balanced accuracy and weighted F1; paper 004 reports UAR
(unweighted average recall), which is scikit-learn's balanced accuracy.
Computing them all in one place keeps baseline and federated numbers
comparable.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
from sklearn import metrics as skm


def _as_labels(y, name: str, num_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape[1] != num_classes:
            raise ValueError(f"{name} holds scores for {y.shape[1]} classes but num_classes="
                             f"{num_classes}")
        y = np.argmax(y, axis=1)
    if y.ndim != 1:
        raise ValueError(f"{name} must be class indices (1-D) or class scores (2-D); "
                         f"got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices; got values such as "
                             f"{y[np.mod(y, 1) != 0][:3].tolist()}")
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} holds class indices outside [0, {num_classes}): "
                         f"min {y.min()}, max {y.max()}")
    return y.astype(np.int64)


def predicted_class_count(confusion_matrix) -> int:
    """How many classes a model predicted at least once (columns of a confusion matrix).

    1 means the model gives every clip the same class: its training collapsed
    or diverged, and its UAR is chance (1 / classes) whatever it learned.

    >>> predicted_class_count([[0, 3], [0, 2]])
    1
    """
    matrix = np.asarray(confusion_matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square (classes x classes); got shape "
                         f"{matrix.shape}")
    return int((matrix.sum(axis=0) > 0).sum())


def classification_metrics(y_true, y_pred, *, num_classes: int = 4,
                           class_names: Optional[Sequence[str]] = None) -> dict:
    """Accuracy, macro/weighted scores, UAR and the confusion matrix of one prediction set.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        True class indices in ``[0, num_classes)``.
    y_pred : array-like, shape (n,) or (n, num_classes)
        Predicted class indices, or class probabilities/scores (argmax taken).
    num_classes : int
        Number of classes; fixes the confusion matrix's size, so a class
        missing from both ``y_true`` and ``y_pred`` still gets its row.
    class_names : sequence of str, optional
        Names of the classes in index order (e.g. ``EMOTIONS_4``); keys of
        ``per_class``.  Default ``"0", "1", ...``.

    Returns
    -------
    dict
        ``accuracy``; ``precision_macro``, ``recall_macro``, ``f1_macro``,
        ``f1_weighted`` (scikit-learn, ``zero_division=0``, averaged over the
        classes occurring in ``y_true`` or ``y_pred``);
        ``balanced_accuracy`` = UAR, the mean recall over the classes in
        ``y_true``; ``confusion_matrix`` (list of lists, rows true, columns
        predicted, ``num_classes`` x ``num_classes``); ``per_class``
        (name -> precision, recall, f1, support); ``class_names``; ``n``;
        ``missing_classes`` (names with no true clip), only when some are.
        Plain Python types only, so the dict can go straight into JSON.

    Notes
    -----
    A class that occurs nowhere (neither true nor predicted) is left out of
    the macro averages instead of counting as 0: its scores are 0/0.  A
    class that is predicted but never true counts with recall 0 in
    ``recall_macro`` but not in ``balanced_accuracy``; that is the only case
    where the two differ.

    Examples
    --------
    >>> m = classification_metrics([0, 1, 2, 3], [0, 1, 2, 2])
    >>> m["accuracy"], m["balanced_accuracy"], m["confusion_matrix"][3]
    (0.75, 0.75, [0, 0, 1, 0])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    num_classes = int(num_classes)
    names = [str(i) for i in range(num_classes)] if class_names is None else [str(c) for c in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names but num_classes={num_classes}")
    if np.ndim(y_true) != 1:
        raise ValueError(f"y_true must be 1-D class indices; got shape {np.shape(y_true)}")
    t = _as_labels(y_true, "y_true", num_classes)
    p = _as_labels(y_pred, "y_pred", num_classes)
    if t.size != p.size:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size} predictions")
    if t.size == 0:
        raise ValueError("no predictions to score (y_true is empty)")

    labels = list(range(num_classes))
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        t, p, labels=labels, zero_division=0)
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected for bad models, and
        # balanced accuracy is defined over the true classes anyway.
        warnings.simplefilter("ignore", UserWarning)
        uar = skm.balanced_accuracy_score(t, p)
    out = {
        "accuracy": float(skm.accuracy_score(t, p)),
        "precision_macro": float(skm.precision_score(t, p, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(t, p, average="macro", zero_division=0)),
        "f1_macro": float(skm.f1_score(t, p, average="macro", zero_division=0)),
        "f1_weighted": float(skm.f1_score(t, p, average="weighted", zero_division=0)),
        "balanced_accuracy": float(uar),
        "confusion_matrix": skm.confusion_matrix(t, p, labels=labels).astype(int).tolist(),
        "per_class": {name: {"precision": float(prec[i]), "recall": float(rec[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(names)},
        "class_names": names,
        "n": int(t.size),
    }
    missing = [name for i, name in enumerate(names) if support[i] == 0]
    if missing:
        # UAR and macro F1 average over the classes present: say so in the result
        out["missing_classes"] = missing
    return out
