"""RunResult: save/load round trip, the history table and the summary row."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from tff_ser.metrics import classification_metrics
from tff_ser.results import HISTORY_FILE, RESULT_FILE, RunResult, results_table, to_jsonable


def _result():
    history = [
        {"round": np.int64(r), "train_loss": np.float32(1.4 - 0.1 * r),
         "train_accuracy": np.float64(0.3 + 0.05 * r), "seconds": 0.25 * r,
         "validation": {"accuracy": np.float32(0.3 + 0.04 * r), "loss": 1.3}}
        for r in (1, 2, 3)
    ]
    metrics = classification_metrics([0, 1, 2, 3, 3], np.array([0, 1, 2, 2, 3]),
                                      class_names=("NEU", "HAP", "SAD", "ANG"))
    return RunResult(
        config={"model": "mlp", "rounds": np.int64(3), "client_lr": np.float32(0.01),
                "partition": {"name": "by_speaker", "val_speakers": ("1001", "1002")},
                "use_gpu": np.bool_(False), "clients_per_round": None},
        history=history,
        final_metrics={"validation": metrics, "federated_eval": {"accuracy": 0.5, "loss": np.nan}},
        times={"total_seconds": 1.5, "per_round_seconds": np.array([0.25, 0.5, 0.75])},
        extra={"client_sizes": {np.str_("1001"): np.int32(54)}, 7: "int key"},
    )


def test_save_then_load_round_trips_exactly(tmp_path):
    original = _result()
    original.save(tmp_path / "run")
    loaded = RunResult.load(tmp_path / "run")
    assert loaded.config == original.config
    assert loaded.history == original.history
    assert loaded.times == original.times
    assert loaded.extra == original.extra
    assert loaded.final_metrics["validation"] == original.final_metrics["validation"]
    assert math.isnan(loaded.final_metrics["federated_eval"]["loss"])
    assert loaded.final_metrics["federated_eval"]["accuracy"] == 0.5


def test_numpy_types_become_python_types_when_the_result_is_made():
    result = _result()
    assert type(result.config["rounds"]) is int
    assert type(result.config["client_lr"]) is float
    assert result.config["client_lr"] == float(np.float32(0.01))
    assert type(result.config["use_gpu"]) is bool
    assert result.config["partition"]["val_speakers"] == ["1001", "1002"]
    assert result.times["per_round_seconds"] == [0.25, 0.5, 0.75]
    assert type(result.history[0]["train_loss"]) is float
    assert result.extra == {"client_sizes": {"1001": 54}, "7": "int key"}


def test_a_result_without_nan_compares_equal_after_loading(tmp_path):
    result = RunResult(config={"model": "dense", "seed": 0}, history=[{"round": 1, "train_loss": 0.1}],
                       final_metrics={"accuracy": 1 / 3}, times={"total_seconds": 2.0})
    result.save(tmp_path)
    assert RunResult.load(tmp_path) == result


def test_save_writes_result_json_and_history_csv(tmp_path):
    _result().save(tmp_path)
    document = json.loads((tmp_path / RESULT_FILE).read_text())
    assert document["format"] == "tff_ser.RunResult" and document["version"] == 2
    frame = pd.read_csv(tmp_path / HISTORY_FILE)
    assert list(frame.columns) == ["round", "train_loss", "train_accuracy", "seconds",
                                   "validation.accuracy", "validation.loss"]
    assert frame["round"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(frame["seconds"], [0.25, 0.5, 0.75])
    assert not (tmp_path / (RESULT_FILE + ".tmp")).exists()


def test_history_frame_has_one_row_per_round_with_flattened_columns():
    frame = _result().history_frame()
    assert len(frame) == 3
    np.testing.assert_allclose(frame["validation.accuracy"],
                               [float(np.float32(0.3 + 0.04 * r)) for r in (1, 2, 3)])


def test_history_frame_of_rows_with_different_keys_keeps_every_column():
    result = RunResult(history=[{"round": 1, "train_loss": 1.0},
                                {"round": 2, "train_loss": 0.9, "validation": {"accuracy": 0.4}}])
    frame = result.history_frame()
    assert list(frame.columns) == ["round", "train_loss", "validation.accuracy"]
    assert math.isnan(frame.loc[0, "validation.accuracy"])


def test_summary_row_is_flat_and_holds_config_metrics_and_times():
    row = _result().summary_row()
    assert row["model"] == "mlp" and row["rounds"] == 3
    assert row["partition.name"] == "by_speaker"
    assert row["validation.accuracy"] == pytest.approx(0.8)
    assert row["validation.per_class.SAD.recall"] == 1.0
    assert row["federated_eval.accuracy"] == 0.5
    assert row["total_seconds"] == 1.5
    assert row["mean_round_seconds"] == pytest.approx(0.5)
    assert row["rounds_completed"] == 3
    assert not any(isinstance(v, (dict, list)) for v in row.values())


def test_summary_row_prefixes_a_key_that_would_repeat():
    row = RunResult(config={"accuracy": "target"}, final_metrics={"accuracy": 0.7}).summary_row()
    assert row["accuracy"] == "target" and row["final_metrics.accuracy"] == 0.7


def test_results_table_stacks_summary_rows():
    table = results_table([_result(), RunResult(config={"model": "lstm"})])
    assert table["model"].tolist() == ["mlp", "lstm"]
    assert table["rounds_completed"].tolist() == [3, 0]


def test_empty_result_saves_and_loads(tmp_path):
    RunResult().save(tmp_path)
    assert RunResult.load(tmp_path) == RunResult()
    assert len(pd.read_csv(tmp_path / HISTORY_FILE)) == 0


def test_loading_a_folder_without_a_result_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="result.json"):
        RunResult.load(tmp_path)


def test_loading_a_foreign_json_is_refused(tmp_path):
    (tmp_path / RESULT_FILE).write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match="not a saved RunResult"):
        RunResult.load(tmp_path)


def test_unstorable_values_are_refused_naming_where_they_are():
    with pytest.raises(TypeError, match=r"config\['model'\] is a object"):
        RunResult(config={"model": object()})
    with pytest.raises(TypeError, match="history must be a list of dicts"):
        RunResult(history=[1.0, 2.0])
    with pytest.raises(TypeError, match="final_metrics must be a dict"):
        RunResult(final_metrics=[0.5])


def test_to_jsonable_converts_nested_numpy_structures():
    value = {"a": (np.int8(1), np.array([[1.5, 2.0]], dtype=np.float32)), "b": [np.bool_(True)]}
    assert to_jsonable(value) == {"a": [1, [[1.5, 2.0]]], "b": [True]}


# -- a run whose final model predicts one class (training collapsed) is flagged, never silent

def _scored(y_pred, losses=(12.5, 1.386)):
    y_true = [0, 1, 2, 3, 0, 1, 2, 3]
    validation = classification_metrics(y_true, y_pred, num_classes=4)
    return RunResult(history=[{"round": i + 1, "train_loss": v} for i, v in enumerate(losses)],
                     final_metrics={"validation": validation})


def test_a_run_predicting_one_class_is_flagged_with_its_losses_and_what_to_try():
    from tff_ser.experiments.report import collapse_note, predicted_classes
    collapsed = _scored([3] * 8)
    assert predicted_classes(collapsed) == 1
    note = collapse_note("conv1d-pooled-s0", collapsed)
    assert "conv1d-pooled-s0 predicts one class" in note
    assert "12.5" in note and "1.39" in note and "learning rate" in note
    healthy = _scored([0, 1, 2, 2, 0, 1, 2, 2])
    assert predicted_classes(healthy) == 3 and collapse_note("ok", healthy) == ""
    assert predicted_classes(RunResult()) is None and collapse_note("unscored", RunResult()) == ""
    # held-out clips of one class, every one right: one class predicted, nothing collapsed
    one_class = RunResult(final_metrics={"validation": classification_metrics(
        [2, 2, 2], [2, 2, 2], num_classes=4)})
    assert predicted_classes(one_class) == 1 and collapse_note("one-class", one_class) == ""


def test_the_summary_names_collapsed_runs_and_says_their_scores_are_chance():
    from tff_ser.experiments.report import collapse_section, predicted_classes
    table = pd.DataFrame({"run_id": ["a-s0", "a-s1", "b-s0", "one-class-s0"],
                          "predicted_classes": [predicted_classes(_scored([3] * 8)),
                                                predicted_classes(_scored([0, 1, 2, 3] * 2)),
                                                predicted_classes(_scored([1] * 8)), 1],
                          "uar": [0.25, 1.0, 0.25, 1.0]})
    text = "\n".join(collapse_section(table))
    assert "## Collapsed runs" in text and "2 runs of 4 predict one class" in text
    assert "`a-s0`, `b-s0`" in text and "a-s1" not in text and "chance" in text
    assert "one-class" not in text
    assert collapse_section(table[table["run_id"] == "a-s1"]) == []
    assert collapse_section(pd.DataFrame({"run_id": ["x"]})) == []  # older results.csv


def test_predicted_class_count_reads_the_confusion_matrix_columns():
    from tff_ser.metrics import predicted_class_count
    assert predicted_class_count([[2, 0, 1], [0, 0, 4], [1, 0, 0]]) == 2
    with pytest.raises(ValueError, match="square"):
        predicted_class_count([[1, 2, 3]])


def test_compare_results_pairs_two_folders_condition_by_condition_over_their_seeds(tmp_path):
    from tff_ser.experiments import compare_results

    def table(shift, conditions=("x-pooled", "x-per_client")):
        return pd.DataFrame([{"condition": c, "seed": s, "uar": 0.6 + 0.01 * s + 0.1 * k * shift}
                             for k, c in enumerate(conditions) for s in (0, 1, 2)])

    noisy, clean = table(-1.0), table(0.0, ("x-pooled", "x-per_client", "y-only-here"))
    out = compare_results(noisy, clean, labels=("noisy", "clean"))
    assert list(out["condition"]) == ["x-pooled", "x-per_client"]  # shared conditions only
    assert list(out["noisy - clean"]) == ["+0.000", "-0.100"]
    assert list(out["verdict"]) == ["no difference shown", "a difference"]
    assert out.loc[0, "noisy"] == "0.610 ± 0.010"
    clean.to_csv(tmp_path / "results.csv", index=False)
    assert compare_results(noisy, tmp_path, conditions=["x-per_client"]).shape[0] == 1
    with pytest.raises(ValueError, match="not in both tables"):
        compare_results(noisy, clean, conditions=["y-only-here"])
    with pytest.raises(FileNotFoundError, match="finished results folder"):
        compare_results(noisy, tmp_path / "unfinished")
    with pytest.raises(ValueError, match="no column 'f1'"):
        compare_results(noisy, clean, metric="f1")
