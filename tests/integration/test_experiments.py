"""The declared experiments, the runner's results folder and the ``experiment`` command."""
import dataclasses
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest

from tff_ser.corpus.summary import corpus_fingerprint
from tff_ser.experiments import registry, report, runner
from tff_ser.baselines.paper000.configs import PAPER000_PER_SPEAKER, PAPER000_PER_SPEAKER_QUICK
from tff_ser.baselines.paper001.configs import (PAPER001_EXP1, PAPER001_EXP1_QUICK, PAPER001_EXP2,
                                                PAPER001_EXP2_QUICK, f1_by_clients,
                                                paper001_comparison)
from tff_ser.experiments.configs import with_overrides

REQUIRED_COLUMNS = ["model", "setup", "accuracy", "precision_macro", "recall_macro", "f1_macro",
                    "uar", "train_seconds"]


# ---------------------------------------------------------------------------
# the declared configs say what the papers say
# ---------------------------------------------------------------------------

def test_exp1_is_three_models_by_baseline_iid_and_single_emotion():
    runs = PAPER001_EXP1.runs()
    assert list(dict.fromkeys((r.model, r.setup) for r in runs)) == [
        (m, s) for m in ("dense", "conv1d", "lstm")
        for s in ("centralized", "iid", "single_emotion")]
    for r in runs:
        assert (r.rounds, r.batch_size, r.client_optimizer, r.server_optimizer) == \
            (20, 20, "adam", "adam")
        if r.setup == "centralized":
            assert r.mode == "centralized"
            assert r.centralized_config().epochs == 20
        else:
            assert (r.mode, r.partition, r.clients) == ("federated", r.setup, 4)


def test_exp2_sweeps_one_to_eight_iid_clients_for_dense_and_conv1d_over_10_rounds():
    runs = PAPER001_EXP2.runs()
    assert sorted({r.model for r in runs}) == ["conv1d", "dense"]
    for model in ("dense", "conv1d"):
        assert list(dict.fromkeys(r.clients for r in runs if r.model == model)) == \
            list(range(1, 9))
    assert {(r.partition, r.rounds, r.mode) for r in runs} == {("iid", 10, "federated")}


def test_per_speaker_run_is_paper_000s_optimal_accuracy_point():
    fed, central = PAPER000_PER_SPEAKER.runs()[0], PAPER000_PER_SPEAKER.runs()[-1]
    cfg = fed.federated_config()
    assert (fed.model, fed.partition) == ("mlp", "by_speaker")
    assert (cfg.rounds, cfg.local_epochs, cfg.client_lr, cfg.batch_size, cfg.client_fraction) \
        == (50, 5, 0.01, 16, 0.5)
    assert cfg.eval_every == 1, "learning curves need a score every round"
    assert central.mode == "centralized" and central.centralized_config().epochs == 50


@pytest.mark.parametrize("full,quick", [
    (PAPER001_EXP1, PAPER001_EXP1_QUICK),
    (PAPER001_EXP2, PAPER001_EXP2_QUICK),
    (PAPER000_PER_SPEAKER, PAPER000_PER_SPEAKER_QUICK)])
def test_quick_variants_keep_the_papers_models_on_a_small_corpus(full, quick):
    assert quick.models == full.models
    assert (quick.size, quick.quick, full.size, full.quick) == ("small", True, "full", False)
    assert quick.rounds < full.rounds
    assert {r.setup for r in quick.runs()} == {r.setup for r in full.runs()}


def test_the_fl_knobs_are_declared_once_and_experiments_hold_a_federated_config():
    from tff_ser.experiments.configs import FL_KNOBS, ExperimentConfig, RunSpec
    from tff_ser.fedconfig import FederatedConfig
    own = {f.name for cls in (RunSpec, ExperimentConfig) for f in dataclasses.fields(cls)}
    assert not own & set(FL_KNOBS), "an FL knob is declared again beside FederatedConfig"
    for e in registry.EXPERIMENTS.values():
        for config in (e.full, e.quick):
            assert isinstance(config.fl, FederatedConfig)
            # each run holds the experiment's knobs with its own training seed (and,
            # in paper 004's sweep, its own E and B)
            from tff_ser.baselines.paper000.configs import AlgorithmComparison
            from tff_ser.baselines.paper004.configs import Paper004Sweep
            for run in config.runs():
                swept = {"local_epochs": run.local_epochs, "batch_size": run.batch_size} \
                    if isinstance(config, Paper004Sweep) else {}
                if run.algorithm == "fedprox" and not isinstance(config, AlgorithmComparison):
                    # paper000_personalization's FedProx condition: the proximal term added
                    swept.update(algorithm="fedprox", proximal_strength=run.proximal_strength)
                # paper000_personalization's conv1d: its own learning rates (model_knobs)
                swept.update(dict(dict(getattr(config, "model_knobs", ())).get(run.model, ())))
                if isinstance(config, AlgorithmComparison):
                    # the recipe's own knobs, the experiment's shared ones
                    shared = ("rounds", "local_epochs", "batch_size", "client_fraction",
                              "eval_every")
                    assert all(getattr(run.fl, k) == getattr(config.fl, k) for k in shared)
                    assert run.seed in config.seeds
                    continue
                base = config.fl
                if run.search is not None:  # paper 003: the search's and the fusion's own knobs
                    base = config.search_fl
                elif run.fusion:
                    base = config.fusion_fl if run.federated else dataclasses.replace(
                        config.fl, rounds=config.fusion_fl.rounds)
                assert run.federated_config() == dataclasses.replace(base, seed=run.seed,
                                                                     **swept)
    changed = with_overrides(PAPER001_EXP2, rounds=3, seed=2)
    assert changed.fl == dataclasses.replace(PAPER001_EXP2.fl, rounds=3)
    assert changed.seeds == (2,) and {r.seed for r in changed.runs()} == {2}


def test_paper001_future_work_runs_dense_conv1d_lstm_with_one_client_per_speaker():
    from tff_ser.baselines.paper001.configs import PAPER001_EXP1, PAPER001_PER_SPEAKER
    runs = PAPER001_PER_SPEAKER.runs()
    assert list(dict.fromkeys((r.model, r.partition, r.mode) for r in runs)) == [
        (m, "by_speaker", "federated") for m in ("dense", "conv1d", "lstm")]
    assert PAPER001_PER_SPEAKER.engine == "auto"
    # the same knobs and held-out speakers as Exp 1, whose runs are its baselines
    assert PAPER001_PER_SPEAKER.fl == PAPER001_EXP1.fl
    assert PAPER001_PER_SPEAKER.split_seed == PAPER001_EXP1.split_seed


def test_every_registered_experiment_has_a_full_and_a_quick_config():
    assert set(registry.EXPERIMENTS) == {"paper001_exp1", "paper001_exp2",
                                         "paper001_per_speaker", "paper004_fedavg",
                                         "paper000_per_speaker", "paper000_algorithms",
                                         "paper000_personalization",
                                         "paper002_kd", "paper002_kd_dense",
                                         "paper002_kd_sensitivity", "paper003_nas"}
    for name, e in registry.EXPERIMENTS.items():
        assert e.config(False).name == e.config(True).name == name
        assert not e.config(False).quick and e.config(True).quick


def test_a_bad_setting_is_refused_where_the_config_is_declared():
    with pytest.raises(ValueError, match="client_lr"):
        with_overrides(PAPER001_EXP1, client_lr=0.0)
    with pytest.raises(ValueError, match="no field"):
        with_overrides(PAPER001_EXP1, learning_rate=0.1)
    with pytest.raises(ValueError, match="size"):
        with_overrides(PAPER001_EXP2, size="medium")


def test_an_unknown_experiment_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="paper001_exp2"):
        registry.get_experiment("table_9")


# ---------------------------------------------------------------------------
# running: the results folder
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_root(small_corpus_dir):
    """The session's small generated corpus, where ``resolve_corpus(size="small")`` finds it
    (conftest points TFF_SER_DATA at a temporary directory)."""
    return pathlib.Path(small_corpus_dir).parent


@pytest.fixture(scope="module")
def per_speaker_out(data_root, tmp_path_factory):
    """``tff-ser experiment paper000_per_speaker --quick`` run once through the CLI."""
    from tff_ser import cli
    out = tmp_path_factory.mktemp("per_speaker") / "out"
    assert cli.main(["experiment", "paper000_per_speaker", "--quick", "--out", str(out),
                     "--no-progress"]) == 0
    return out


def test_the_experiment_command_writes_table_runs_figures_and_summary(per_speaker_out):
    table = pd.read_csv(per_speaker_out / runner.TABLE_FILE)
    assert list(table.columns) == list(runner.TABLE_COLUMNS)
    assert set(REQUIRED_COLUMNS) <= set(table.columns)
    assert list(table["setup"]) == ["by_speaker", "centralized"]
    assert list(table["seed"]) == [0, 0]
    assert table[["accuracy", "f1_macro", "uar", "train_seconds"]].notna().all().all()
    # paper 000's MLP, 136 -> 256 -> 128 -> 4, federated and centralized alike
    assert list(table["parameters"]) == [68_484, 68_484]
    for png in ("confusion_matrices.png", "learning_curves.png", "metrics.png"):
        assert (per_speaker_out / png).stat().st_size > 1000
    assert not (per_speaker_out / runner.FAILED_FILE).exists()


def test_the_csv_holds_the_numbers_of_each_saved_run(per_speaker_out):
    from tff_ser.results import RunResult
    table = pd.read_csv(per_speaker_out / runner.TABLE_FILE).set_index("run_id")
    for run_id in table.index:
        result = RunResult.load(per_speaker_out / runner.RUNS_DIR / run_id)
        val = result.final_metrics["validation"]
        assert table.loc[run_id, "accuracy"] == pytest.approx(val["accuracy"])
        assert table.loc[run_id, "f1_macro"] == pytest.approx(val["f1_macro"])
        assert table.loc[run_id, "uar"] == pytest.approx(val["balanced_accuracy"])
        assert "weights" not in result.extra


def test_per_speaker_runs_have_one_client_per_training_speaker_and_a_curve(per_speaker_out):
    table = pd.read_csv(per_speaker_out / runner.TABLE_FILE).set_index("run_id")
    fed = table.loc["mlp-by_speaker-s0"]
    assert fed["clients"] == fed["train_speakers"]
    assert fed["val_speakers"] >= 1
    history = pd.read_csv(per_speaker_out / "runs" / "mlp-by_speaker-s0" / "history.csv")
    assert list(history["round"]) == [1, 2, 3]
    assert history["val_accuracy"].between(0, 1).all()


def test_the_summary_names_the_generated_corpus_and_the_exact_command(per_speaker_out):
    import tff_ser
    text = (per_speaker_out / runner.SUMMARY_FILE).read_text()
    assert "Read back" not in text
    assert "generated stand-in corpus, not CREMA-D" in text
    assert f"tff-ser experiment paper000_per_speaker --quick --out {per_speaker_out}" in text
    assert f"tff_ser** {tff_ser.__version__}" in text
    assert "wall time" in text
    assert "![learning_curves](learning_curves.png)" in text
    # one machine trained every run here, and the summary names it
    from tff_ser.runtime import describe_machine, machine_info
    assert f"**Trained on**: {describe_machine(machine_info())} (every run)" in text


def test_runs_trained_two_at_a_time_in_processes_give_the_same_metrics(per_speaker_out,
                                                                       tmp_path):
    # the main job trains with jobs=-1; a job is a spawned process with cores/jobs threads
    from tff_ser import cli
    out = tmp_path / "jobs2"
    assert cli.main(["experiment", "paper000_per_speaker", "--quick", "--out", str(out),
                     "--no-progress", "--jobs", "2"]) == 0
    one = pd.read_csv(per_speaker_out / runner.TABLE_FILE)
    two = pd.read_csv(out / runner.TABLE_FILE)
    assert list(two["run_id"]) == list(one["run_id"])  # the config's order, not finish order
    metrics = ["accuracy", "f1_macro", "uar", "client_mean_accuracy"]
    pd.testing.assert_frame_equal(two[metrics], one[metrics])
    assert (out / runner.SUMMARY_FILE).is_file()


def test_jobs_must_be_a_positive_number_or_minus_one(tmp_path):
    from tff_ser.experiments.registry import get_experiment
    with pytest.raises(ValueError, match="jobs must be"):
        runner.run_experiment(get_experiment("paper000_per_speaker").quick, tmp_path, jobs=0)


def test_the_machines_line_groups_runs_by_machine_and_names_unrecorded_ones():
    from tff_ser.results import RunResult
    a = {"cpu": "CPU A", "cpu_flags": ["avx2"], "cores": 2, "onednn": False,
         "tensorflow": "2.14.1"}
    b = dict(a, cpu="CPU B", cpu_flags=["avx2", "avx512_vnni"], onednn=True)
    results = {"r0": RunResult(extra={"machine": a}), "r1": RunResult(extra={"machine": b}),
               "r2": RunResult(extra={"machine": a}), "old": RunResult()}
    line = report.machines_line(results)
    assert "CPU A (avx2), 2 cores, oneDNN kernels off, TensorFlow 2.14.1: `r0`, `r2`" in line
    assert "CPU B (avx2/avx512_vnni), 2 cores, oneDNN kernels on" in line
    assert "not recorded" in line and "`old`" in line


def test_a_finished_run_with_the_same_settings_is_read_back_not_retrained(
        per_speaker_out, data_root, tmp_path, monkeypatch):
    out = tmp_path / "again"
    shutil.copytree(per_speaker_out, out)

    def no_training(*args, **kwargs):
        raise AssertionError("a saved run was trained again")

    monkeypatch.setattr(runner, "train_run", no_training)
    outcome = runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False)
    before = pd.read_csv(per_speaker_out / runner.TABLE_FILE)
    pd.testing.assert_frame_equal(outcome.table.reset_index(drop=True), before,
                                  check_dtype=False)
    assert outcome.reused == ["mlp-by_speaker-s0", "mlp-centralized-s0"]
    # the summary must not pass read-back times off as this invocation's
    assert "Read back, not retrained" in (out / runner.SUMMARY_FILE).read_text()


def test_saved_runs_are_read_back_in_another_clone_with_the_corpus_elsewhere(
        per_speaker_out, data_root, tmp_path, monkeypatch):
    # Committed results must be reusable wherever a user clones the repository:
    # runs are matched on the corpus' content, not on its path.
    elsewhere = tmp_path / "other_clone" / "data"
    shutil.copytree(data_root / "generated-small", elsewhere / "generated-small")
    monkeypatch.setenv("TFF_SER_DATA", str(elsewhere))
    out = tmp_path / "other_clone" / "results"
    shutil.copytree(per_speaker_out, out)

    def no_training(*args, **kwargs):
        raise AssertionError("a saved run was trained again after the corpus moved")

    monkeypatch.setattr(runner, "train_run", no_training)
    outcome = runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False)
    assert outcome.reused == ["mlp-by_speaker-s0", "mlp-centralized-s0"]
    assert str(elsewhere) in outcome.corpus


def test_the_corpus_fingerprint_changes_when_a_clip_or_its_label_changes(data_root):
    import dataclasses
    from tff_ser.corpus import load_corpus
    load = load_corpus(str(data_root / "generated-small"))
    base = corpus_fingerprint(load, load.clips)
    assert base["corpus"] == "generated" and base["generator"]["size"] == "small"
    assert corpus_fingerprint(load, load.clips[1:]) != base
    relabelled = [dataclasses.replace(load.clips[0], emotion="SAD" if load.clips[0].emotion
                                      != "SAD" else "ANG")] + list(load.clips[1:])
    assert corpus_fingerprint(load, relabelled) != base


def test_only_trains_the_chosen_runs_and_leaves_partial_until_every_run_is_saved(
        per_speaker_out, data_root, tmp_path, monkeypatch):
    out = tmp_path / "split"
    shutil.copytree(per_speaker_out, out)  # complete, with results.csv and summary.md
    shutil.rmtree(out / runner.RUNS_DIR / "mlp-centralized-s0")
    real_train_run = runner.train_run

    def no_training(*args, **kwargs):
        raise AssertionError("a run outside --only, or a saved one, was trained")

    monkeypatch.setattr(runner, "train_run", no_training)
    first = runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False,
                                  only=["mlp-by_*"])
    assert not first.complete and first.missing == ["mlp-centralized-s0"]
    assert first.reused == ["mlp-by_speaker-s0"]
    # nothing experiment-level that could pass for a finished experiment
    assert not (out / runner.SUMMARY_FILE).exists()
    assert not (out / runner.TABLE_FILE).exists()
    partial = (out / runner.PARTIAL_FILE).read_text()
    assert "1 of 2 runs" in partial and "missing: mlp-centralized-s0" in partial

    monkeypatch.setattr(runner, "train_run", real_train_run)
    second = runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False,
                                   only=["mlp-centralized-s0"])
    assert second.complete and second.reused == ["mlp-by_speaker-s0"]
    assert (out / runner.SUMMARY_FILE).exists() and not (out / runner.PARTIAL_FILE).exists()
    assert list(pd.read_csv(out / runner.TABLE_FILE)["run_id"]) == [
        "mlp-by_speaker-s0", "mlp-centralized-s0"]


def test_an_only_pattern_that_matches_no_run_is_an_error_naming_the_runs(tmp_path):
    with pytest.raises(ValueError, match="matches no run.*mlp-by_speaker-s0, mlp-centralized-s0"):
        runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, tmp_path / "out", progress=False,
                              only=["lstm-*"])


def test_a_checkpointed_federated_run_removes_its_checkpoint_when_done(data_root, tmp_path):
    from tff_ser.task import load_features
    _, features = load_features("mlp", size="small", progress=False)
    spec = PAPER000_PER_SPEAKER_QUICK.runs()[0]
    result = runner.train_run(spec, features, run_dir=tmp_path, checkpoint=True, progress=False)
    assert len(result.history) == spec.rounds
    assert not (tmp_path / "checkpoint").exists()


def test_a_failed_run_leaves_a_failed_marker_and_no_summary(per_speaker_out, data_root,
                                                            tmp_path, monkeypatch):
    out = tmp_path / "failing"
    shutil.copytree(per_speaker_out, out)  # a complete-looking folder from an earlier run
    assert (out / runner.SUMMARY_FILE).exists()

    def boom(*args, **kwargs):
        raise RuntimeError("client 3 ran out of memory")

    monkeypatch.setattr(runner, "train_run", boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False, reuse=False)
    assert not (out / runner.SUMMARY_FILE).exists()
    assert not (out / runner.TABLE_FILE).exists()  # no older table left looking like this run's
    failed = (out / runner.FAILED_FILE).read_text()
    assert "client 3 ran out of memory" in failed and "paper000_per_speaker" in failed


def test_an_interrupted_experiment_leaves_partial_saying_so_not_failed(per_speaker_out, data_root,
                                                                       tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    shutil.copytree(per_speaker_out, out)
    shutil.rmtree(out / runner.RUNS_DIR / "mlp-centralized-s0")

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "train_run", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False)
    assert not (out / runner.FAILED_FILE).exists()
    assert not (out / runner.SUMMARY_FILE).exists() and not (out / runner.TABLE_FILE).exists()
    partial = (out / runner.PARTIAL_FILE).read_text()
    assert "1 of 2 runs saved; not finished (interrupted after" in partial
    assert "saved: mlp-by_speaker-s0" in partial and "missing: mlp-centralized-s0" in partial
    assert "again to resume" in partial


def test_a_cut_centralized_run_of_an_experiment_resumes_from_its_saved_epochs(
        per_speaker_out, data_root, tmp_path, monkeypatch):
    from tff_ser import errors
    from tff_ser.results import RunResult
    out = tmp_path / "cut"
    shutil.copytree(per_speaker_out, out)
    run = "mlp-centralized-s0"
    shutil.rmtree(out / runner.RUNS_DIR / run)
    calls = []

    def sigterm_before_epoch_2():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(errors, "check_stop_requested", sigterm_before_epoch_2)
    with pytest.raises(errors.TrainingInterrupted, match="epochs 1..1 are saved"):
        runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False, checkpoint=True)
    monkeypatch.undo()
    assert (out / runner.RUNS_DIR / run / "checkpoint" / "centralized_state.npz").is_file()

    runner.run_experiment(PAPER000_PER_SPEAKER_QUICK, out, progress=False, checkpoint=True)
    resumed = RunResult.load(out / runner.RUNS_DIR / run)
    assert resumed.times["resumed_from_round"] == 1
    assert not (out / runner.RUNS_DIR / run / "checkpoint").exists()
    whole = RunResult.load(per_speaker_out / runner.RUNS_DIR / run)
    assert resumed.final_metrics["validation"] == whole.final_metrics["validation"]


def test_an_unknown_model_fails_before_any_data_is_touched(tmp_path):
    config = with_overrides(PAPER001_EXP2_QUICK, models=("resnet50",))
    with pytest.raises(ValueError, match="resnet50"):
        runner.run_experiment(config, tmp_path / "out", data_dir=str(tmp_path / "nowhere"),
                              progress=False)
    assert (tmp_path / "out" / runner.FAILED_FILE).exists()
    assert not (tmp_path / "out" / runner.SUMMARY_FILE).exists()


def test_the_batched_engine_is_refused_for_a_model_it_cannot_train(tmp_path):
    config = with_overrides(PAPER001_EXP1_QUICK, models=("conv1d",),
                            engine="batched")
    with pytest.raises(ValueError, match="engine='batched' cannot train model 'conv1d'"):
        runner.run_experiment(config, tmp_path / "out", data_dir=str(tmp_path / "nowhere"),
                              progress=False)


def test_the_command_refuses_a_missing_data_dir_with_a_message(tmp_path, capsys):
    from tff_ser import cli
    code = cli.main(["experiment", "paper000_per_speaker", "--quick", "--data-dir",
                     str(tmp_path / "CREMA-D"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "is not a directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_exp1_quick_with_one_model_fills_all_three_setups(data_root, tmp_path):
    config = with_overrides(PAPER001_EXP1_QUICK, models=("conv1d",), rounds=1)
    outcome = runner.run_experiment(config, tmp_path / "exp1", progress=False,
                                    command="pytest exp1 conv1d")
    table = outcome.table
    assert list(table["setup"]) == ["centralized", "iid", "single_emotion"]
    assert list(table["clients"].iloc[1:]) == [4, 4]
    single = outcome.results["conv1d-single_emotion-s0"]
    # each single-emotion client holds one emotion: the paper's skewed setup
    assert single.config["task"]["partition"] == "single_emotion"
    assert set(outcome.figures) == {"confusion_matrices", "metrics", "per_speaker"}
    text = outcome.summary_path.read_text()
    assert "Paper 001 Tables 1-3 beside ours" in text and "`pytest exp1 conv1d`" in text
    # each held-out speaker's own number: the spread, the worst decile, the split by sex
    assert "## Per speaker" in text and "worst decile" in text
    row = table.iloc[2]
    per = single.final_metrics["validation_per_client_accuracy"]
    assert row["speaker_acc_min"] == pytest.approx(min(per.values()))
    assert row["speaker_acc_p10"] <= outcome.results["conv1d-iid-s0"].final_metrics[
        "validation_client_mean_accuracy"]
    assert table[["speaker_acc_female", "speaker_acc_male"]].notna().all().all()
    comparison = paper001_comparison(table)
    assert list(comparison["paper F1"]) == [0.16, 0.37, 0.09]


def test_exp2_quick_draws_f1_against_the_number_of_clients(data_root, tmp_path):
    config = with_overrides(PAPER001_EXP2_QUICK, models=("conv1d",), client_counts=(1, 3))
    outcome = runner.run_experiment(config, tmp_path / "exp2", progress=False)
    assert list(outcome.table["clients"]) == [1, 3]
    assert (outcome.out_dir / "f1_vs_clients.png").stat().st_size > 1000


# ---------------------------------------------------------------------------
# plots refuse input they cannot draw
# ---------------------------------------------------------------------------

def test_a_confusion_matrix_of_the_wrong_size_is_refused():
    from tff_ser import plots
    with pytest.raises(ValueError, match="expected 4 x 4"):
        plots.plot_confusion_grid({("dense", "iid"): np.eye(3)},
                                  class_names=["NEU", "HAP", "SAD", "ANG"])


def test_f1_against_clients_needs_the_clients_column():
    from tff_ser import plots
    with pytest.raises(ValueError, match="clients"):
        plots.plot_f1_vs_clients(pd.DataFrame({"model": ["dense"], "f1_macro": [0.4]}))


def test_exp2_table_has_one_row_per_k_and_one_column_per_model_in_config_order():
    table = pd.DataFrame({"model": ["dense", "dense", "conv1d", "conv1d"],
                          "clients": [2.0, 1.0, 1.0, 2.0],
                          "f1_macro": [0.52, 0.51, 0.41, 0.42]})
    wide = f1_by_clients(table)
    assert list(wide.columns) == ["k", "dense F1", "dense CI", "dense seeds", "conv1d F1",
                                  "conv1d CI", "conv1d seeds"]
    assert list(wide["k"]) == [1, 2]
    assert list(wide["dense F1"]) == [0.51, 0.52] and list(wide["conv1d F1"]) == [0.41, 0.42]
    assert list(wide["dense seeds"]) == [1, 1] and list(wide["dense CI"]) == ["n = 1"] * 2


# ---------------------------------------------------------------------------
# seeds: one row per (run, seed), mean ± sd and intervals, one seed rerun alone
# ---------------------------------------------------------------------------

def test_runs_are_repeated_per_seed_with_the_seed_in_the_id():
    config = with_overrides(PAPER000_PER_SPEAKER, seeds=(0, 1, 2), seed_counts=(("mlp", 2),))
    assert [r.run_id for r in config.runs()] == [
        "mlp-by_speaker-s0", "mlp-by_speaker-s1", "mlp-centralized-s0", "mlp-centralized-s1"]
    assert [r.seed for r in config.runs()] == [0, 1, 0, 1]
    assert {r.condition for r in config.runs()} == {"mlp-by_speaker", "mlp-centralized"}
    # the full-size experiments repeat every run of Exp 1 and the MLP's with 3 seeds
    from tff_ser.baselines.paper001.configs import PAPER001_EXP1 as E1
    assert E1.seeds_for("conv1d") == E1.seeds_for("lstm") == E1.seeds_for("dense") == (0, 1, 2)
    assert PAPER000_PER_SPEAKER.seeds_for("mlp") == (0, 1, 2)
    assert PAPER001_EXP2.seeds_for("conv1d") == (0, 1, 2)
    with pytest.raises(ValueError, match="distinct"):
        with_overrides(PAPER000_PER_SPEAKER, seeds=(1, 1))
    with pytest.raises(ValueError, match="seed_counts"):
        with_overrides(PAPER000_PER_SPEAKER, seeds=(0, 1), seed_counts=(("mlp", 3),))


def test_the_engine_is_not_part_of_what_a_saved_run_must_match():
    spec = PAPER000_PER_SPEAKER.runs()[0]
    other = dataclasses.replace(spec, engine="tff")
    assert spec.key_dict() == other.key_dict()
    assert "seed" in spec.key_dict() and "run_id" not in spec.key_dict()
    # every FederatedConfig field is in the key (format 2), at its default too
    assert spec.key_dict()["algorithm"] == "fedavg" and "aggregator" in spec.key_dict()


@pytest.fixture(scope="module")
def two_seeds_out(data_root, tmp_path_factory):
    config = with_overrides(PAPER000_PER_SPEAKER_QUICK, seeds=(0, 1), rounds=2)
    out = tmp_path_factory.mktemp("two_seeds") / "out"
    outcome = runner.run_experiment(config, out, progress=False, command="pytest two seeds")
    return config, out, outcome


def test_two_seeds_give_one_row_each_and_a_summary_with_spread(two_seeds_out):
    config, out, outcome = two_seeds_out
    table = pd.read_csv(out / runner.TABLE_FILE)
    assert list(table["run_id"]) == ["mlp-by_speaker-s0", "mlp-by_speaker-s1",
                                     "mlp-centralized-s0", "mlp-centralized-s1"]
    assert list(table["seed"]) == [0, 1, 0, 1]
    fed = table[table["condition"] == "mlp-by_speaker"]
    # the seed changes weights and sampling: two seeds are two different runs
    assert fed["train_seconds"].notna().all()
    assert not np.allclose(outcome.results["mlp-by_speaker-s0"].history[-1]["train_loss"],
                           outcome.results["mlp-by_speaker-s1"].history[-1]["train_loss"])
    view = report.results_view(outcome.table)
    assert list(view["seeds"]) == [2, 2]
    assert "run" not in view  # model, setup and clients tell the two rows apart
    mean = fed["f1_macro"].mean()
    assert view.loc[0, "F1 (macro)"] == f"{mean:.3f} ± {fed['f1_macro'].std(ddof=1):.3f}"
    assert view.loc[0, "F1 95 % CI"].startswith("[")
    text = (out / runner.SUMMARY_FILE).read_text()
    assert "Differences over seeds" in text and "mlp-by_speaker - mlp-centralized" in text
    assert "seeds 0, 1" in text


def test_one_seed_can_be_rerun_alone(two_seeds_out, tmp_path, monkeypatch):
    config, out, _ = two_seeds_out
    again = tmp_path / "again"
    shutil.copytree(out, again)
    trained = []
    real = runner.train_run

    def spy(spec, *args, **kwargs):
        trained.append(spec.run_id)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "train_run", spy)
    shutil.rmtree(again / runner.RUNS_DIR / "mlp-by_speaker-s1")
    outcome = runner.run_experiment(config, again, progress=False, only=["mlp-by_speaker-s1"])
    assert trained == ["mlp-by_speaker-s1"] and outcome.complete
    before = pd.read_csv(out / runner.TABLE_FILE).set_index("run_id")
    after = pd.read_csv(again / runner.TABLE_FILE).set_index("run_id")
    # same seed, same numbers (the rerun seed), and the others read back unchanged
    pd.testing.assert_series_equal(before["f1_macro"], after["f1_macro"])


def test_the_main_job_prints_a_table_over_seeds_where_its_files_are_and_what_next(
        data_root, tmp_path, monkeypatch, capsys):
    # The real main job is paper000_per_speaker at full size (README measures it); here its
    # quick config with two seeds, to check what it prints and writes.
    quick = with_overrides(PAPER000_PER_SPEAKER_QUICK, seeds=(0, 1), rounds=1)
    monkeypatch.setitem(registry.EXPERIMENTS, registry.MAIN_JOB, dataclasses.replace(
        registry.EXPERIMENTS[registry.MAIN_JOB], full=quick))
    assert registry.MAIN_JOB == "paper000_per_speaker"
    assert registry.run_main_job(out=str(tmp_path / "main")) == 0
    text = capsys.readouterr().out
    assert "F1 95 % CI" in text and "One client per speaker" in text
    assert "mlp-by_speaker - mlp-centralized: F1" in text
    assert str(tmp_path / "main" / "summary.md") in text and "learning_curves.png" in text
    assert "next: `make test`" in text


@pytest.mark.slow
def test_exp1_quick_smoke_run_of_all_three_models_on_tff(data_root, tmp_path):
    """The former main job: paper 001 Exp 1 at quick size on TFF's own process."""
    config = with_overrides(PAPER001_EXP1_QUICK, engine="tff")
    outcome = runner.run_experiment(config, tmp_path / "exp1", progress=False)
    assert outcome.complete and len(outcome.table) == 9
    assert set(outcome.table["engine"].dropna()) == {"tff"}


def test_paper004_is_fedavg_with_sgd_over_k_e_b_on_class_balanced_clients():
    from tff_ser.baselines.paper004.configs import PAPER004_FEDAVG
    grid = with_overrides(PAPER004_FEDAVG, model_settings=(), seed_counts=()).runs()
    settings = {(r.model, r.clients, r.local_epochs, r.batch_size) for r in grid}
    assert settings == {(m, k, e, b) for m in ("cnn_logmel", "lstm_logmel") for k in (5, 10)
                        for e in (1, 5) for b in (10, 20)}
    assert len(grid) == 16 * 3
    runs = PAPER004_FEDAVG.runs()
    for r in runs:
        assert (r.partition, r.rounds, r.client_optimizer, r.client_lr, r.server_optimizer,
                r.server_lr, r.client_fraction) == ("class_balanced", 200, "sgd", 0.01, "sgd",
                                                    1.0, 1.0)
    # declared: the CNN's whole grid with 3 seeds, the LSTM's two E 1 B 10 settings with one
    assert {r.run_id for r in runs if r.model == "cnn_logmel"} \
        == {r.run_id for r in grid if r.model == "cnn_logmel"}
    assert sorted(r.run_id for r in runs if r.model == "lstm_logmel") \
        == ["lstm_logmel-K10-E1-B10-s0", "lstm_logmel-K5-E1-B10-s0"]


def test_paper004_refuses_a_model_setting_outside_its_grid():
    from tff_ser.baselines.paper004.configs import PAPER004_FEDAVG
    with pytest.raises(ValueError, match="each setting one of the grid's"):
        with_overrides(PAPER004_FEDAVG, model_settings=(("lstm_logmel", ("K7 E1 B10",)),))
    with pytest.raises(ValueError, match="must be one of"):
        with_overrides(PAPER004_FEDAVG, model_settings=(("mlp", ("K5 E1 B10",)),))


def test_paper004_quick_trains_both_models_and_compares_them_by_uar(data_root, tmp_path):
    from tff_ser.baselines.paper004.configs import PAPER004_FEDAVG_QUICK
    outcome = runner.run_experiment(PAPER004_FEDAVG_QUICK, tmp_path / "p004", progress=False)
    assert list(outcome.table["model"]) == ["cnn_logmel", "lstm_logmel"]
    assert outcome.table["uar"].between(0, 1).all()
    assert set(outcome.table["engine"]) == {"tf"}
    text = outcome.summary_path.read_text()
    assert "Paper 004 Fig 2" in text and "54.8%" in text
    assert "lstm_logmel-K5-E1-B10 - cnn_logmel-K5-E1-B10" in text


def test_the_experiment_command_takes_seeds(data_root, tmp_path):
    from tff_ser import cli
    out = tmp_path / "seeds"
    assert cli.main(["experiment", "paper000_per_speaker", "--quick", "--seeds", "3", "4", "--out",
                     str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / runner.TABLE_FILE)
    assert list(table["run_id"]) == ["mlp-by_speaker-s3", "mlp-by_speaker-s4",
                                     "mlp-centralized-s3", "mlp-centralized-s4"]
    assert "--seeds 3 4" in (out / runner.SUMMARY_FILE).read_text()


def test_format_1_results_are_refused_naming_the_converter_which_brings_them_to_format_2(
        per_speaker_out, tmp_path):
    """Format 1 left later FederatedConfig fields out of configs and keys; the converter fills
    them in, and refuses a run that sampled another number of clients than CD does now."""
    import json
    import subprocess
    import sys
    from tff_ser.results import RunResult
    run = tmp_path / "run"
    shutil.copytree(per_speaker_out / runner.RUNS_DIR / "mlp-by_speaker-s0", run)
    doc = json.loads((run / "result.json").read_text())
    later = ("algorithm", "aggregator", "weighted", "dp_delta")
    import copy
    v1 = dict(copy.deepcopy(doc), version=1,
              config={k: v for k, v in doc["config"].items() if k not in later})
    key = v1["extra"]["run_key"]
    key["run_spec"] = {**{k: v for k, v in key["run_spec"].items() if k not in later},
                       "run_id": "mlp-by_speaker", "engine": "tff"}
    (run / "result.json").write_text(json.dumps(v1))
    with pytest.raises(ValueError, match="version 1 .*tools/convert_results.py"):
        RunResult.load(run)
    bad = tmp_path / "bad" / "run"
    shutil.copytree(run, bad)
    bad_doc = json.loads((bad / "result.json").read_text())
    bad_doc["history"] = [dict(h, clients=h["clients"] - 1) for h in bad_doc["history"]]
    (bad / "result.json").write_text(json.dumps(bad_doc))
    import os
    root = pathlib.Path(__file__).parents[2]
    done = subprocess.run([sys.executable, str(root / "tools" / "convert_results.py"),
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(root)))
    assert done.returncode == 1 and "retrain" in done.stderr and str(bad) in done.stderr
    assert "converted 1 result(s)" in done.stdout
    converted = RunResult.load(run)
    assert converted.config == doc["config"]
    assert converted.extra["run_key"] == doc["extra"]["run_key"]  # what this code computes


def test_the_recorded_command_keeps_only_so_partial_says_what_was_run():
    from tff_ser.experiments.registry import experiment_command
    assert experiment_command("paper004_fedavg", only=["cnn_logmel-K5-E5-*"]) \
        == "tff-ser experiment paper004_fedavg --only 'cnn_logmel-K5-E5-*'"


def test_models_restricts_an_experiment_to_some_of_its_models_and_refuses_what_it_cannot(
        capsys):
    from tff_ser import cli
    from tff_ser.experiments.registry import experiment_command, get_experiment, only_models
    full = get_experiment("paper000_personalization").full
    some = only_models(full, ["mlp_egemaps", "mlp"])
    assert some.models == ("mlp", "mlp_egemaps")  # the experiment's order
    assert [r.run_id for r in some.runs()] == [r.run_id for r in full.runs()
                                               if r.model in ("mlp", "mlp_egemaps")]
    assert experiment_command("paper000_personalization", models=["mlp"]) \
        == "tff-ser experiment paper000_personalization --models mlp"
    with pytest.raises(ValueError, match="no model 'lstm'; its models are mlp, mlp_egemaps"):
        only_models(full, ["lstm"])
    # an experiment whose runs read each other's (a teacher, a search) runs whole
    with pytest.raises(ValueError, match="run it whole, or pick runs with --only"):
        only_models(get_experiment("paper002_kd").full, ["conv1d"])
    assert cli.main(["experiment", "paper003_nas", "--models", "conv1d", "--no-progress"]) == 2
    assert "--models: paper003_nas declares its runs" in capsys.readouterr().err
