"""classification_metrics against values worked out by hand."""
import json

import numpy as np
import pytest

from tff_ser.corpus.records import EMOTIONS_4
from tff_ser.metrics import classification_metrics

# 10 clips, class 3 never predicted.  Confusion matrix (rows true, columns predicted):
#   [[2, 1, 0, 0],
#    [0, 2, 0, 0],
#    [1, 0, 2, 0],
#    [2, 0, 0, 0]]
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
Y_PRED = [0, 0, 1, 1, 1, 2, 2, 0, 0, 0]


def test_hand_computed_scores_with_a_class_never_predicted():
    m = classification_metrics(Y_TRUE, Y_PRED)
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [2, 0, 0, 0]]
    assert m["accuracy"] == pytest.approx(6 / 10)
    # precision: 2/5, 2/3, 2/2, 0 (never predicted, zero_division=0)
    assert m["precision_macro"] == pytest.approx((2 / 5 + 2 / 3 + 1 + 0) / 4)
    # recall: 2/3, 2/2, 2/3, 0/2
    assert m["recall_macro"] == pytest.approx((2 / 3 + 1 + 2 / 3 + 0) / 4)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 2 / 3 + 0) / 4)
    # f1: 0.5, 0.8, 0.8, 0
    assert m["f1_macro"] == pytest.approx((0.5 + 0.8 + 0.8 + 0) / 4)
    assert m["f1_weighted"] == pytest.approx((3 * 0.5 + 2 * 0.8 + 3 * 0.8 + 2 * 0) / 10)
    assert m["n"] == 10


def test_per_class_scores_are_named_by_class_names():
    m = classification_metrics(Y_TRUE, Y_PRED, class_names=EMOTIONS_4)
    assert m["class_names"] == list(EMOTIONS_4)
    assert m["per_class"]["ANG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert m["per_class"]["HAP"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["NEU"]["f1"] == pytest.approx(0.5)


def test_a_class_absent_everywhere_keeps_its_confusion_row_but_not_its_zero_score():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], num_classes=4)
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert m["precision_macro"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["recall_macro"] == pytest.approx((0.5 + 1) / 2)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_uar_counts_only_true_classes_while_recall_macro_counts_predicted_ones_too():
    m = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1])
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1) / 2)
    assert m["recall_macro"] == pytest.approx((0.5 + 1 + 0) / 3)


def test_constant_predictions_give_paper_001_single_emotion_pattern():
    # Paper 001, Tables 1-3: a model that always answers one class scores
    # recall 25 % and precision about 6 % on four balanced classes.
    y_true = np.repeat(np.arange(4), 25)
    m = classification_metrics(y_true, np.full(100, 2))
    assert m["recall_macro"] == pytest.approx(0.25)
    assert m["balanced_accuracy"] == pytest.approx(0.25)
    assert m["precision_macro"] == pytest.approx(0.25 / 4)
    assert m["accuracy"] == pytest.approx(0.25)


def test_probabilities_are_scored_by_their_argmax():
    probs = np.eye(4)[Y_PRED] * 0.7 + 0.075
    assert classification_metrics(Y_TRUE, probs) == classification_metrics(Y_TRUE, Y_PRED)


def test_float_labels_holding_integers_are_accepted():
    assert classification_metrics(np.array(Y_TRUE, dtype=float), Y_PRED)["accuracy"] == 0.6


def test_result_is_plain_json():
    m = classification_metrics(np.array(Y_TRUE, dtype=np.int32), np.array(Y_PRED, dtype=np.int64))
    assert json.loads(json.dumps(m)) == m
    assert type(m["accuracy"]) is float and type(m["n"]) is int
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_perfect_predictions_score_one():
    m = classification_metrics([3, 2, 1, 0], [3, 2, 1, 0])
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted",
                "balanced_accuracy"):
        assert m[key] == 1.0


@pytest.mark.parametrize("y_true, y_pred, kwargs, message", [
    ([0, 1], [0], {}, "2 labels but y_pred has 1"),
    ([], [], {}, "empty"),
    ([0, 4], [0, 1], {}, r"outside \[0, 4\)"),
    ([0, 1], [0, -1], {}, r"outside \[0, 4\)"),
    ([0, 1], [[0.5, 0.5], [0.1, 0.9]], {}, "scores for 2 classes"),
    ([[0], [1]], [0, 1], {}, "1-D"),
    ([0, 1], [0, 1], {"class_names": ["a", "b"]}, "2 names"),
    ([0.5, 1], [0, 1], {}, "integer class indices"),
    ([0, 1], [0, 1], {"num_classes": 0}, "positive integer"),
])
def test_bad_inputs_are_refused_with_what_was_wrong(y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y_true, y_pred, **kwargs)
