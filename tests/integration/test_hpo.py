"""Paper 000's grid at speed: every point once, across workers, kills and reruns.

The quick grid (NGE {2, 4} x NLE {1} x LR {0.01, 0.001} x BS {16} x CD
{0.5, 1.0} = 8 points in 4 trajectories) runs on the 12-speaker generated
corpus; worker subprocesses inherit ``TFF_SER_DATA`` from conftest.
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import portpicker
import pytest

from tff_ser.hpo import report as R
from tff_ser.hpo.space import (PAPER_000_DEFAULT, PAPER_000_GRID, QUICK_GRID, VARIABLES,
                               GridSpace, point_key, trajectory_key)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --------------------------------------------------------------------------
# the grid itself
# --------------------------------------------------------------------------

def test_paper_grid_has_576_points_in_144_trajectories():
    points = PAPER_000_GRID.points()
    assert len(points) == len(PAPER_000_GRID) == 576
    assert len({point_key(p) for p in points}) == 576
    assert len(PAPER_000_GRID.trajectories()) == 144
    assert PAPER_000_GRID.levels["client_lr"] == (0.001, 0.01, 0.1)
    assert PAPER_000_GRID.levels["client_fraction"] == (0.1, 0.5, 0.75, 1.0)
    assert PAPER_000_GRID.milestones == (50, 100, 150, 200)
    assert PAPER_000_GRID.contains(PAPER_000_DEFAULT | {"rounds": 200})


def test_points_differing_only_in_rounds_share_a_trajectory():
    keys = {}
    for p in PAPER_000_GRID.points():
        keys.setdefault(trajectory_key(p), set()).add(p["rounds"])
    assert all(rounds == {50, 100, 150, 200} for rounds in keys.values())


def test_grid_without_a_variable_is_refused_with_its_name():
    with pytest.raises(ValueError, match="client_fraction"):
        GridSpace("broken", {v: (1,) for v in VARIABLES if v != "client_fraction"})


# --------------------------------------------------------------------------
# SOO, Pareto, hypervolume, sensitivity on hand-made tables
# --------------------------------------------------------------------------

def _hand_table():
    base = {"local_epochs": 1, "client_lr": 0.01, "batch_size": 16}
    rows = [  # (NGE, CD, Acc, CT)
        (50, 0.1, 0.70, 10.0),    # fastest: Pareto
        (50, 0.5, 0.75, 20.0),    # Pareto
        (100, 0.5, 0.74, 30.0),   # dominated by (50, 0.5)
        (200, 1.0, 0.80, 90.0),   # most accurate: Pareto
        (150, 1.0, 0.80, 95.0),   # same Acc, slower: dominated
        (100, 1.0, 0.60, 15.0),   # Pareto? no: (50, 0.1) is faster and more accurate
    ]
    return pd.DataFrame([{**base, "rounds": n, "client_fraction": cd, "accuracy": a,
                          "computation_time": t} for n, cd, a, t in rows])


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    front = R.pareto_front(_hand_table())
    assert list(zip(front["rounds"], front["client_fraction"])) == [(50, 0.1), (50, 0.5),
                                                                     (200, 1.0)]


def test_identical_points_do_not_dominate_each_other():
    assert R.pareto_mask([0.7, 0.7, 0.6], [1.0, 1.0, 2.0]).tolist() == [True, True, False]


def test_table_i_picks_the_default_the_most_accurate_and_the_fastest_point():
    table = _hand_table()
    default = {**PAPER_000_DEFAULT, "accuracy": 0.77, "computation_time": 350.0}
    table = pd.concat([table, pd.DataFrame([default])], ignore_index=True)
    t1 = R.soo_table(table)
    assert t1["Results"].tolist() == ["Default setup", "Optimal accuracy", "Optimal comp. time"]
    assert t1["Acc"].tolist() == [0.77, 0.80, 0.70]
    # Two points reach 0.80; the faster one is optimal.
    assert t1.loc[1, "NGE"] == 200 and t1.loc[1, "Time (s)"] == 90.0
    assert t1.loc[2, "Time (s)"] == 10.0


def test_hypervolume_of_a_two_step_staircase_by_hand():
    # (0.2, 0.5) and (0.5, 0.2) under (1, 1): 0.3 * 0.5 + 0.5 * 0.8 = 0.55
    assert R.hypervolume_2d([(0.2, 0.5), (0.5, 0.2)]) == pytest.approx(0.55)
    # A dominated point and one outside the reference box add nothing.
    assert R.hypervolume_2d([(0.2, 0.5), (0.5, 0.2), (0.6, 0.6), (1.2, 0.0)]) == \
        pytest.approx(0.55)
    assert R.hypervolume_2d([]) == 0.0


def test_the_grid_front_has_hypervolume_ratio_one_and_a_subset_less():
    table = _hand_table()
    assert R.hypervolume_ratio(table["accuracy"], table["computation_time"],
                               grid=table) == pytest.approx(1.0)
    part = table.iloc[[0, 2]]
    assert R.hypervolume_ratio(part["accuracy"], part["computation_time"], grid=table) < 1.0


def test_evaluations_to_best_counts_from_one_and_says_never():
    assert R.evaluations_to_best([0.5, 0.7, 0.9, 0.9], 0.9) == 3
    assert R.evaluations_to_best([0.5, 0.7], 0.9) is None


def test_main_effects_explain_all_variance_of_an_additive_objective():
    rows = [{"rounds": n, "local_epochs": e, "client_lr": 0.01, "batch_size": 16,
             "client_fraction": 1.0, "accuracy": 0.01 * n / 50 + 0.1 * e,
             "computation_time": float(n * e)}
            for n in (50, 100, 150, 200) for e in (1, 3, 5)]
    table = pd.DataFrame(rows)
    shares = {v: R.main_effect_share(table, v, "accuracy") for v in VARIABLES}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["batch_size"] == pytest.approx(0.0, abs=1e-12)
    assert shares["local_epochs"] > shares["rounds"]
    # log CT = log NGE + log NLE is additive too
    sens = R.sensitivity_table(table)
    ct_shares = sens.groupby("variable")["ct_share"].first()
    assert ct_shares.sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------
# the study: enqueueing and stale trials (no training)
# --------------------------------------------------------------------------

FAKE_TASK = {"model": "mlp", "labels_and_clients_sha256": "0" * 64, "x_shape": [10, 136],
             "x_sum": 0.0, "x_abs_sum": 1.0}


def _fake_study(tmp_path, space=QUICK_GRID):
    from tff_ser.hpo.objective import RunSettings
    from tff_ser.hpo.storage import create_grid_study
    return create_grid_study(str(tmp_path / "study.journal"), "s", space=space,
                             settings=RunSettings(), corpus="test", fingerprint=FAKE_TASK)


def test_every_grid_point_is_enqueued_once_even_when_created_twice(tmp_path):
    study, added = _fake_study(tmp_path, PAPER_000_GRID)
    again, added_again = _fake_study(tmp_path, PAPER_000_GRID)
    assert (added, added_again) == (576, 0)
    trials = again.get_trials(deepcopy=False)
    assert len(trials) == 576
    assert {point_key(t.user_attrs["tff_ser:point"]) for t in trials} == \
        {point_key(p) for p in PAPER_000_GRID.points()}


def test_a_study_with_other_settings_is_refused(tmp_path):
    from tff_ser.hpo.objective import RunSettings
    from tff_ser.hpo.storage import create_grid_study
    _fake_study(tmp_path)
    with pytest.raises(ValueError, match="other settings"):
        create_grid_study(str(tmp_path / "study.journal"), "s", space=QUICK_GRID,
                          settings=RunSettings(server_lr=0.1), corpus="test",
                          fingerprint=FAKE_TASK)


def test_running_trial_of_a_dead_process_is_failed_once_and_its_point_requeued(tmp_path):
    import optuna
    from tff_ser.hpo.storage import WORKER_ATTR
    from tff_ser.hpo.recovery import machine_identity, recover_stale_trials
    study, _ = _fake_study(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial = study.ask()  # pops the first queued point, as a worker's optimize() does
    trial.set_user_attr(WORKER_ATTR, {"machine": machine_identity(), "pid": dead.pid,
                                      "started": 0.0})
    point = study.trials[trial.number].user_attrs["tff_ser:point"]

    assert recover_stale_trials(study) == [trial.number]
    assert recover_stale_trials(study) == []
    trials = study.get_trials(deepcopy=False)
    assert trials[trial.number].state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") is not None]
    assert len(retries) == 1 and retries[0].state == optuna.trial.TrialState.WAITING
    assert point_key(retries[0].user_attrs["tff_ser:point"]) == point_key(point)
    assert len(trials) == len(QUICK_GRID) + 1


def test_running_trial_of_a_live_process_is_left_alone(tmp_path):
    import psutil
    from tff_ser.hpo.storage import WORKER_ATTR
    from tff_ser.hpo.recovery import machine_identity, recover_stale_trials
    study, _ = _fake_study(tmp_path)
    trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, {"machine": machine_identity(), "pid": os.getpid(),
                                      "started": psutil.Process().create_time()})
    assert recover_stale_trials(study) == []


# --------------------------------------------------------------------------
# trajectories (training on the small corpus)
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_task(small_corpus_dir):
    from tff_ser.hpo.workers import load_study_task
    task, fingerprint, _ = load_study_task({"size": "small"})
    return task, fingerprint


def test_nge_4_after_nge_2_trains_only_2_more_rounds_and_matches_a_straight_run(
        small_task, tmp_path):
    from tff_ser.engines import EngineState
    from tff_ser.evaluation import evaluate_weights
    from tff_ser.hpo.objective import (STATE_FILE, RunSettings, engine_for, evaluate_point,
                                       read_computations, read_progress)
    task, fingerprint = small_task
    settings = RunSettings()
    point = {"local_epochs": 1, "client_lr": 0.01, "batch_size": 16, "client_fraction": 0.5}
    kw = dict(trajectory_root=str(tmp_path), milestones=(2, 4), final_round=6,
              fingerprint=fingerprint)
    at2 = evaluate_point(task, {**point, "rounds": 2}, settings, **kw)
    at4 = evaluate_point(task, {**point, "rounds": 4}, settings, **kw)
    again2 = evaluate_point(task, {**point, "rounds": 2}, settings, **kw)
    assert (at2.rounds_computed, at4.rounds_computed, again2.rounds_computed) == (2, 2, 0)
    directory = tmp_path / trajectory_key(point)
    assert [(c["start"], c["end"]) for c in read_computations(str(directory))] == [(1, 2), (3, 4)]

    straight, rows = engine_for(task).run_rounds(task, settings.federated_config(
        {**point, "rounds": 4}))
    saved = EngineState.load(str(directory / STATE_FILE))
    assert saved.round_num == 4
    for a, b in zip(saved.trainable, straight.trainable):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert at4.accuracy == pytest.approx(
        evaluate_weights(task, straight.model_weights)["client_mean_accuracy"], abs=1e-9)
    progress = read_progress(str(directory))
    assert at2.computation_time == pytest.approx(sum(r["seconds"] for r in progress["rows"][:2]))
    assert again2.accuracy == at2.accuracy and again2.computation_time == at2.computation_time


def test_a_milestone_a_kill_lost_is_evaluated_before_a_larger_nge_passes_it(
        small_task, tmp_path):
    """Killed after the state's save at NGE 2, before the milestone's write (CI, stop 40).

    NGE 4 used to train past round 2 without evaluating it and delete the state;
    the retried NGE 2 point then retrained rounds 1-2 and overwrote rounds 3-4.
    """
    from tff_ser.hpo.objective import (PROGRESS_FILE, RunSettings, evaluate_point,
                                       read_computations, read_progress)
    from tff_ser.rundir import atomic_write_json
    task, fingerprint = small_task
    point = {"local_epochs": 1, "client_lr": 0.01, "batch_size": 16, "client_fraction": 0.5}
    kw = dict(trajectory_root=str(tmp_path), milestones=(2, 4), final_round=4,
              fingerprint=fingerprint)
    at2 = evaluate_point(task, {**point, "rounds": 2}, RunSettings(), **kw)
    directory = str(tmp_path / trajectory_key(point))
    progress = read_progress(directory)
    del progress["milestones"]["2"]  # the write the kill lost
    atomic_write_json(os.path.join(directory, PROGRESS_FILE), progress)

    at4 = evaluate_point(task, {**point, "rounds": 4}, RunSettings(), **kw)
    again2 = evaluate_point(task, {**point, "rounds": 2}, RunSettings(), **kw)
    assert (at4.rounds_computed, again2.rounds_computed) == (2, 0)
    assert again2.accuracy == at2.accuracy and again2.metrics == at2.metrics
    assert [(c["start"], c["end"]) for c in read_computations(directory)] == [(1, 2), (3, 4)]
    progress = read_progress(directory)
    assert [(s["start"], s["end"]) for s in progress["segments"]] == [(1, 2), (3, 4)]
    assert sorted(progress["milestones"]) == ["2", "4"]
    assert [r["round"] for r in progress["rows"]] == [1, 2, 3, 4]


def test_a_finished_trajectory_missing_a_milestone_is_refused_not_overwritten(
        small_task, tmp_path):
    from tff_ser.hpo.objective import (PROGRESS_FILE, RunSettings, evaluate_point,
                                       read_progress)
    from tff_ser.rundir import atomic_write_json
    task, fingerprint = small_task
    point = {"local_epochs": 1, "client_lr": 0.01, "batch_size": 16, "client_fraction": 0.5}
    kw = dict(trajectory_root=str(tmp_path), milestones=(2, 4), final_round=4,
              fingerprint=fingerprint)
    evaluate_point(task, {**point, "rounds": 4}, RunSettings(), **kw)
    directory = str(tmp_path / trajectory_key(point))
    progress = read_progress(directory)
    del progress["milestones"]["2"]  # a folder an older tff_ser left
    atomic_write_json(os.path.join(directory, PROGRESS_FILE), progress)
    with pytest.raises(RuntimeError, match="is finished but holds no evaluation at round 2"):
        evaluate_point(task, {**point, "rounds": 2}, RunSettings(), **kw)
    assert [r["round"] for r in read_progress(directory)["rows"]] == [1, 2, 3, 4]


def test_trajectory_folder_of_another_run_is_refused(small_task, tmp_path):
    from tff_ser.hpo.objective import RunSettings, evaluate_point
    task, fingerprint = small_task
    point = {"rounds": 2, "local_epochs": 1, "client_lr": 0.01, "batch_size": 16,
             "client_fraction": 1.0}
    kw = dict(trajectory_root=str(tmp_path), milestones=(2,), final_round=2,
              fingerprint=fingerprint)
    evaluate_point(task, point, RunSettings(), **kw)
    with pytest.raises(ValueError, match="holds a different run"):
        evaluate_point(task, point, RunSettings(seed=1), **kw)


# --------------------------------------------------------------------------
# worker processes
# --------------------------------------------------------------------------

def _trajectory_dirs(directory):
    root = os.path.join(directory, "trajectories")
    (digest,) = os.listdir(root)
    return [os.path.join(root, digest, k) for k in sorted(os.listdir(os.path.join(root, digest)))]


def _complete_points(study):
    import optuna
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [point_key(t.params) for t in done]


@pytest.fixture(scope="module")
def quick_grid_by_two_workers(small_corpus_dir, tmp_path_factory):
    """The quick grid finished by two `tff-ser hpo worker` subprocesses at once."""
    from tff_ser.hpo.workers import run_grid
    directory = str(tmp_path_factory.mktemp("hpo_two_workers"))
    outcome = run_grid(quick=True, directory=directory, workers=2, progress=False,
                       poll_seconds=0.5)
    return outcome


def test_two_workers_finish_every_quick_point_exactly_once(quick_grid_by_two_workers):
    import optuna
    outcome = quick_grid_by_two_workers
    assert outcome.worker_returncodes == [0, 0]
    points = _complete_points(outcome.study)
    assert sorted(points) == sorted(point_key(p) for p in QUICK_GRID.points())
    assert not outcome.study.get_trials(states=(optuna.trial.TrialState.FAIL,
                                                optuna.trial.TrialState.RUNNING,
                                                optuna.trial.TrialState.WAITING))
    # No round of any trajectory was trained twice, and every trajectory reached NGE 4.
    from tff_ser.hpo.objective import read_computations
    for directory in _trajectory_dirs(outcome.directory):
        rounds = [r for c in read_computations(directory) for r in range(c["start"], c["end"] + 1)]
        assert sorted(rounds) == [1, 2, 3, 4], directory
    assert outcome.table["rounds_computed"].sum() == 4 * len(QUICK_GRID.trajectories())
    pids = {t.user_attrs["tff_ser:worker"]["pid"] for t in outcome.study.trials}
    assert os.getpid() not in pids


def test_report_writes_tables_figures_and_an_honest_summary(quick_grid_by_two_workers, tmp_path):
    from tff_ser import cli
    outcome = quick_grid_by_two_workers
    out = tmp_path / "report"
    assert cli.main(["hpo", "report", "--quick", "--dir", outcome.directory, "--out", str(out),
                     "--sampler-seeds", "2"]) == 0
    for name in ("grid.csv", "table_i_soo.md", "table_ii_pareto.md", "sensitivity.md",
                 "sampler_comparison.md", "fig2_accuracy_by_lr.png",
                 "fig3_time_by_nge_cd_nle.png", "fig4_pareto_front.png", "fig_samplers.png",
                 "summary.md"):
        assert (out / name).is_file(), name
    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == len(QUICK_GRID)
    assert grid["accuracy"].between(0, 1).all() and (grid["computation_time"] > 0).all()
    summary = (out / "summary.md").read_text()
    assert "generated stand-in corpus, not CREMA-D" in summary
    assert "LOOKING UP the grid's recorded" in summary
    traces = pd.read_csv(out / "sampler_traces.csv")
    assert set(traces["sampler"]) == {"random", "tpe", "nsga2"}
    assert traces["hv_ratio"].max() == pytest.approx(1.0)


# --------------------------------------------------------------------------
# the held-out test protocol (tff_ser.hpo.confirm)
# --------------------------------------------------------------------------

def test_heldout_speakers_split_into_disjoint_halves_by_a_seeded_draw():
    from tff_ser.hpo.confirm import split_heldout_speakers
    speakers = [str(1001 + i) for i in range(18)]
    split = split_heldout_speakers(speakers, seed=0)
    assert len(split.selection) == len(split.test) == 9
    assert not set(split.selection) & set(split.test)
    assert sorted(split.selection + split.test) == sorted(speakers)
    assert split == split_heldout_speakers(list(reversed(speakers)), seed=0)
    assert split != split_heldout_speakers(speakers, seed=1)
    with pytest.raises(ValueError, match="at least 2 held-out speakers"):
        split_heldout_speakers(["1001"])


def _scored_grid(seed=0):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame([{"trial": i, **p} for i, p in enumerate(QUICK_GRID.points())])
    speakers = ["s1", "s2", "s3", "s4"]
    per = pd.DataFrame(rng.uniform(0.2, 0.8, (len(table), 4)), columns=speakers,
                       index=table["trial"])
    table["accuracy"] = per.mean(axis=1).to_numpy()
    table["computation_time"] = rng.uniform(1, 10, len(table))
    return table, per


def test_the_selection_never_reads_the_test_speakers():
    from tff_ser.hpo.confirm import SpeakerSplit, candidates, rescore
    table, per = _scored_grid()
    split = SpeakerSplit(selection=("s1", "s2"), test=("s3", "s4"), seed=0)
    picked = candidates(rescore(table, per, split), top=3)
    # other test-speaker scores (and so another all-speaker Acc) change no selection reason
    per2 = per.copy()
    per2[["s3", "s4"]] = np.random.default_rng(9).uniform(0, 1, (len(per), 2))
    table2 = table.assign(accuracy=per2.mean(axis=1).to_numpy())
    picked2 = candidates(rescore(table2, per2, split), top=3)

    def by_selection(frame):
        return sorted(point_key(r) for _, r in frame.iterrows() if "selection" in r["why"])
    assert by_selection(picked) == by_selection(picked2) and len(by_selection(picked)) >= 3
    scored = rescore(table, per, split)
    assert np.allclose(scored["accuracy_selection"], per[["s1", "s2"]].mean(axis=1))
    assert np.allclose(scored["accuracy_test"], per[["s3", "s4"]].mean(axis=1))
    with pytest.raises(ValueError, match="from another run"):
        rescore(table.assign(accuracy=table["accuracy"] + 0.1), per, split)
    with pytest.raises(ValueError, match="no per-speaker scores"):
        rescore(table, pd.DataFrame(), split)


def test_confirm_retrains_the_candidates_per_seed_resumably_and_labels_the_protocol(
        quick_grid_by_two_workers, tmp_path, capsys):
    from tff_ser import cli
    outcome = quick_grid_by_two_workers
    out = tmp_path / "confirm"
    args = ["hpo", "confirm", "--quick", "--dir", outcome.directory, "--out", str(out),
            "--seeds", "0", "1", "--top", "2"]
    assert cli.main(args) == 0
    runs = pd.read_csv(out / "runs.csv")
    cands = pd.read_csv(out / "candidates.csv")
    assert len(runs) == 2 * len(cands) and sorted(set(runs["seed"])) == [0, 1]
    # seed 0 is the grid's own seed: its runs recompute the grid's scores exactly
    grid = {point_key(r): r["accuracy"] for _, r in outcome.table.iterrows()}
    for _, r in runs[runs["seed"] == 0].iterrows():
        assert r["accuracy"] == pytest.approx(grid[point_key(r)], abs=1e-9)
    summary = (out / "summary.md").read_text()
    assert "held-out test protocol" in summary and "not CREMA-D" in summary
    assert "Paper 000's own protocol" in summary
    capsys.readouterr()
    assert cli.main(args) == 0  # resumed: nothing left to train
    assert "0 runs left" in capsys.readouterr().out
    assert len(pd.read_csv(out / "runs.csv")) == len(runs)


def test_sigkilled_worker_loses_no_finished_point_and_recomputes_none(small_corpus_dir,
                                                                      tmp_path):
    import optuna
    from tff_ser.hpo.objective import read_computations, read_progress
    from tff_ser.hpo.storage import load_study
    from tff_ser.hpo.workers import prepare_grid_study, run_worker, worker_command
    study, storage, directory, _, _ = prepare_grid_study(quick=True, directory=str(tmp_path),
                                                         progress=False)
    cmd = worker_command(storage, study.study_name, directory) + ["--checkpoint-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if len(_complete_points(load_study(storage, study.study_name))) >= 1:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = load_study(storage, study.study_name)
    finished_before = {t.number: (point_key(t.params), t.values) for t in
                       before.get_trials(states=(optuna.trial.TrialState.COMPLETE,))}
    running_at_kill = [t.number for t in before.get_trials(
        states=(optuna.trial.TrialState.RUNNING,))]
    assert finished_before, "the worker finished no point within the deadline"

    # A short grace period covers a kill between popping a trial and naming its worker.
    summary = run_worker(storage, study.study_name, directory=directory, progress=False,
                         poll_seconds=0.1, heartbeat_interval=1, grace_period=5)
    after = load_study(storage, study.study_name)
    points = _complete_points(after)
    assert sorted(points) == sorted(point_key(p) for p in QUICK_GRID.points())
    for number, (key, values) in finished_before.items():
        trial = after.trials[number]
        assert trial.state == optuna.trial.TrialState.COMPLETE and trial.values == values
    assert sorted(summary.recovered) == sorted(running_at_kill)
    for number in running_at_kill:
        assert after.trials[number].state == optuna.trial.TrialState.FAIL
    # Saved rounds tile 1..4 once; at most the one round in flight was trained again.
    for trajectory in _trajectory_dirs(directory):
        segments = read_progress(trajectory)["segments"]
        assert [r for s in segments for r in range(s["start"], s["end"] + 1)] == [1, 2, 3, 4]
        computed = [r for c in read_computations(trajectory)
                    for r in range(c["start"], c["end"] + 1)]
        assert len(computed) - len(set(computed)) <= 1, trajectory


def test_hpo_commands_are_registered_on_the_main_parser():
    from tff_ser.cli import build_parser
    parser = build_parser()
    for argv in (["hpo", "run", "--quick", "--workers", "2"],
                 ["hpo", "worker", "--storage", "postgresql://u:p@host/db"],
                 ["hpo", "report", "--dir", "x"]):
        args = parser.parse_args(argv)
        assert callable(args.handler)


@pytest.mark.slow
def test_full_size_point_trains_73_clients_and_scores_18_held_out_speakers(tmp_path):
    """Paper 000's setting on the full generated corpus: the fastest Table I point, NGE 50."""
    from tff_ser.hpo.objective import RunSettings, evaluate_point
    from tff_ser.hpo.workers import load_study_task
    task, fingerprint, corpus = load_study_task({"size": "full"})
    assert (len(task.train_clients), len(task.val_clients)) == (73, 18)
    point = {"rounds": 50, "local_epochs": 1, "client_lr": 0.001, "batch_size": 16,
             "client_fraction": 0.1}
    result = evaluate_point(task, point, RunSettings(), trajectory_root=str(tmp_path),
                            milestones=(50,), final_round=50, fingerprint=fingerprint)
    assert result.rounds_computed == 50 and result.computation_time > 0
    assert result.accuracy > 0.4, "4 classes: chance is 0.25"


# --------------------------------------------------------------------------
# a real PostgreSQL server: 3 workers, one SIGKILLed mid-trial
# --------------------------------------------------------------------------
# The server is Debian's PostgreSQL (``.ci/run`` installs the package when it is
# missing, through ``.ci/install-postgres``); the fixture starts a private
# cluster on a free localhost port, creates a database, and stops and deletes
# the cluster at the end.  Without the server binaries the test is skipped with
# the reason (the install command).


def _pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); "
                    "install them with `bash .ci/install-postgres` (Debian's postgresql "
                    "package; .ci/run does this)")
    pytest.importorskip("psycopg2", reason="psycopg2-binary missing: `make setup` installs it")
    as_pg = []
    root = tempfile.mkdtemp(prefix="tff_ser_pg_")
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        as_pg = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, log = os.path.join(root, "data"), os.path.join(root, "server.log")
    port = portpicker.pick_unused_port()

    def run(*cmd):
        out = subprocess.run(as_pg + list(cmd), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"{cmd[0]} failed: {out.stdout[-2000:]}{out.stderr[-2000:]}"

    try:
        run(os.path.join(bindir, "initdb"), "-D", data, "-U", "tff", "--auth=trust",
            "--no-sync")
        run(os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses=localhost -c fsync=off", "start")
        run(os.path.join(bindir, "createdb"), "-h", "localhost", "-p", str(port), "-U", "tff",
            "tffser")
        yield f"postgresql://tff@localhost:{port}/tffser"
    finally:
        subprocess.run(as_pg + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate",
                                "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _complete(study):
    import optuna
    from tff_ser.hpo.storage import _trial_point
    return [point_key(_trial_point(t)) for t in
            study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]


def test_three_workers_on_postgresql_one_sigkilled_finish_every_point_once(
        postgres_url, quick_grid_by_two_workers, tmp_path):
    import optuna
    from tff_ser.hpo.storage import STUDY_NAMES, WORKER_ATTR, existing_study, load_study, open_storage
    from tff_ser.hpo.readout import grid_table
    name = STUDY_NAMES["quick"]
    cmd = [sys.executable, "-m", "tff_ser.cli", "hpo", "run", "--quick", "--storage",
           postgres_url, "--dir", str(tmp_path / "pg"), "--workers", "3", "--no-report",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    killed = None
    deadline = time.time() + 600
    storage = open_storage(postgres_url)  # one connection pool for the whole poll
    try:
        study = None
        while killed is None and time.time() < deadline and proc.poll() is None:
            study = study or existing_study(storage, name)
            running = [] if study is None else [
                t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if WORKER_ATTR in t.user_attrs]
            if running:
                victim = running[0]
                os.kill(victim.user_attrs[WORKER_ATTR]["pid"], 9)
                killed = victim.number
            time.sleep(0.02)  # a quick-grid point trains in well under a second
        try:
            output, _ = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:  # seen once in a full -n 2 run: keep what it says
            proc.kill()
            output, _ = proc.communicate()
            logs = "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-2000:]}"
                             for log in sorted((tmp_path / "pg" / "logs").glob("*.log")))
            pytest.fail(f"hpo run did not finish in 900 s (killed trial: {killed}); output:\n"
                        f"{output[-3000:]}\nworker logs:\n{logs}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, f"no running trial was seen to kill; output: {output[-3000:]}"
    assert proc.returncode == 0, output[-3000:]  # the study is complete: exit 0 ...
    assert "killed by signal 9" in output          # ... and the dead worker is reported
    study = load_study(postgres_url, name)
    points = _complete(study)
    assert sorted(points) == sorted(point_key(p) for p in QUICK_GRID.points())  # once each
    assert study.trials[killed].state == optuna.trial.TrialState.FAIL
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,
                                        optuna.trial.TrialState.WAITING))

    # The same grid on a journal file (two workers, this module's fixture): the same accuracies.
    journal = quick_grid_by_two_workers
    pg_table = grid_table(study).set_index("trial")
    acc = lambda t: {point_key({v: r[v] for v in QUICK_GRID.levels}): r["accuracy"]  # noqa: E731
                     for _, r in t.iterrows()}
    assert acc(pg_table) == pytest.approx(acc(journal.table))


def test_the_hpo_is_generic_any_model_partition_and_levels_on_the_tf_engine(small_corpus_dir,
                                                                              tmp_path):
    """Paper 000's grid is one configuration: here paper 004's log-Mel LSTM on 3 IID clients."""
    from tff_ser.hpo.objective import RunSettings, read_progress
    from tff_ser.hpo.space import GridSpace
    from tff_ser.hpo.storage import study_settings
    from tff_ser.hpo.workers import run_grid
    space = GridSpace("lstm_iid", {"rounds": (1, 2), "local_epochs": (1,), "client_lr": (0.01,),
                                   "batch_size": (32,), "client_fraction": (1.0,)},
                      size="small", model="lstm_logmel", partition="iid", clients=3)
    run = run_grid(space=space, directory=str(tmp_path), workers=0, progress=False,
                   settings=RunSettings(engine="tf", client_optimizer="sgd",
                                        server_optimizer="sgd", server_lr=1.0))
    assert sorted(run.table["rounds"]) == [1, 2] and run.table["accuracy"].between(0, 1).all()
    saved = study_settings(run.study)
    assert GridSpace.from_dict(saved["space"]) == space and saved["task"]["model"] == "lstm_logmel"
    (trajectory,) = [p for p in (tmp_path / "trajectories").glob("*/*") if p.is_dir()]
    rows = read_progress(str(trajectory))["rows"]
    assert [r["round"] for r in rows] == [1, 2] and {r["clients"] for r in rows} == {3}
    assert run.table["rounds_computed"].sum() == 2  # NGE 2 extended NGE 1's trajectory


def test_a_grid_can_tune_on_per_speaker_normalized_features_as_its_own_study(small_corpus_dir):
    import dataclasses
    from tff_ser.cli import build_parser
    from tff_ser.hpo.cli import _locate
    from tff_ser.hpo.space import QUICK_GRID, GridSpace
    from tff_ser.hpo.workers import load_study_task
    space = dataclasses.replace(QUICK_GRID, normalization="per_client")
    assert space.recipe().normalization == "per_client"
    assert GridSpace.from_dict(space.to_dict()) == space
    # paper 000's grid reads as studies saved before the option did
    assert "normalization" not in QUICK_GRID.to_dict()
    with pytest.raises(ValueError, match="normalization"):
        dataclasses.replace(QUICK_GRID, normalization="global")
    plain, _, _ = load_study_task({"size": "small", "space": QUICK_GRID.to_dict()})
    own, _, _ = load_study_task({"size": "small", "space": space.to_dict()})
    assert own.info["normalization"] == "per_client" and not np.allclose(own.x, plain.x)
    for rows in own.train_clients.values():  # each speaker standardized by its own clips
        np.testing.assert_allclose(own.x[rows].mean(axis=0), 0.0, atol=1e-4)
    args = build_parser().parse_args(["hpo", "run", "--quick", "--normalization", "per_client"])
    located, directory, _, study = _locate(args)
    assert located.normalization == "per_client"
    assert directory.endswith("hpo_grid-quick-per_client") and study.endswith("_per_client")
