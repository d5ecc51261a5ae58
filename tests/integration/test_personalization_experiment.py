"""paper000_personalization: each speaker's own model as a declared experiment (issue 26, part 5).

* the full config crosses pooled / federated / per_client normalization with fine-tuning,
  FedPer and Ditto, and adds a noisy block (FedAvg, FedProx, FedPer, Ditto), 3 seeds;
* noise flips only the noisy clients' personal-train labels: personal-test and held-out labels
  stay clean, and the methods of one seed score the same personal-test clips;
* results.csv carries each run's per-client summary and enrollment curve, summary.md the
  personalization and enrollment tables, and a finished run is read back, not retrained.
"""
import dataclasses
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest

from helpers import synthetic_task
from tff_ser.baselines.paper000.personalization import (PAPER000_PERSONALIZATION,
                                                        PAPER000_PERSONALIZATION_QUICK,
                                                        enrollment_curves, personalization_table)
from tff_ser.experiments import runner
from tff_ser.experiments.configs import RunSpec
from tff_ser.personalization import PersonalPlan, parse_enroll_uar, personal_summary
from tff_ser.task import choose_clients, with_label_noise


def test_the_full_experiment_crosses_normalization_with_each_method_and_a_noisy_block():
    runs = PAPER000_PERSONALIZATION.runs()
    conditions = list(dict.fromkeys(r.condition for r in runs))
    assert conditions[:12] == [f"mlp-{n}-{m}" for n in ("pooled", "federated", "per_client")
                               for m in ("finetune", "fedper", "fedrep", "ditto")]
    assert conditions[12:16] == [f"mlp-noisy-{m}" for m in ("finetune", "fedprox", "fedper",
                                                            "ditto")]
    # the same 16 cells on openSMILE's functionals; conv1d on paper 001's frames, reduced
    for model in ("mlp_egemaps", "mlp_compare"):
        assert [c for c in conditions if c.startswith(f"{model}-")] == \
            [c.replace("mlp-", f"{model}-", 1) for c in conditions[:16]]
    assert [c for c in conditions if c.startswith("conv1d-")] == \
        ["conv1d-pooled-finetune", "conv1d-per_client-finetune"]
    assert len(runs) == (3 * 16 + 2) * 3 and {r.seed for r in runs} == {0, 1, 2}
    assert ("mlp_compare-per_client-finetune", "mlp-per_client-finetune") in \
        PAPER000_PERSONALIZATION.comparison_pairs(conditions)
    for r in runs:
        # paper 000's per-speaker point, every run personalized and scored per client
        assert (r.partition, r.rounds, r.local_epochs, r.batch_size, r.client_fraction) == \
            ("by_speaker", 50, 5, 16, 0.5)
        assert r.personal is not None and r.personal.test_fraction == 0.25
        assert r.label_noise == (0.3 if "noisy" in r.condition else 0.0)
        # paper 000's Adam 0.01; conv1d paper 001's 1e-3 (at 0.01 its runs collapsed)
        assert (r.client_lr, r.server_lr) == ((0.001, 0.001) if r.model == "conv1d" else
                                              (0.01, 0.01))
    prox = [r for r in runs if r.condition == "mlp-noisy-fedprox"]
    assert all(r.algorithm == "fedprox" and r.proximal_strength == 0.01
               and r.personal.method == "finetune" for r in prox)


def test_a_plan_and_a_run_refuse_what_cannot_be_done():
    with pytest.raises(ValueError, match="method must be one of"):
        PersonalPlan(method="fedavg")
    with pytest.raises(ValueError, match="test_fraction"):
        PersonalPlan(test_fraction=1.0)
    with pytest.raises(ValueError, match="ditto_lambda"):
        PersonalPlan(method="ditto", ditto_lambda=-1.0)
    with pytest.raises(ValueError, match="centralized run has no clients"):
        RunSpec("a", "mlp", "centralized", "by_speaker", 0, "x", personal=PersonalPlan())
    with pytest.raises(ValueError, match="label_noise"):
        RunSpec("a", "mlp", "federated", "by_speaker", 0, "x", label_noise=1.5)


def test_noise_after_the_personal_split_leaves_personal_test_and_held_out_labels_clean():
    task = synthetic_task(per_client=40)
    for method in ("finetune", "ditto"):
        split, personal_test = PersonalPlan(method=method).prepare(task, seed=3)
        chosen = choose_clients(split, 0.5, seed=3)
        noisy = with_label_noise(split, 0.3, clients=chosen, seed=3)
        assert len(chosen) == round(0.5 * len(task.train_clients))
        changed = set(np.flatnonzero(noisy.y != task.y))
        trained = {int(i) for c in chosen for i in split.train_clients[c]}
        assert changed and changed <= trained
        assert not changed & {int(i) for rows in personal_test.values() for i in rows}
        assert not changed & {int(i) for rows in task.val_clients.values() for i in rows}
    # every method of one seed holds back the same clips
    a = PersonalPlan(method="finetune").prepare(task, seed=3)[1]
    b = PersonalPlan(method="fedper").prepare(task, seed=3)[1]
    assert {c: list(v) for c, v in a.items()} == {c: list(v) for c, v in b.items()}


def test_the_per_client_summary_is_computed_from_the_clients_rows():
    clients = [{"client": c, "global_uar": g, "personal_uar": p}
               for c, g, p in (("a", 0.5, 0.6), ("b", 0.4, 0.4), ("c", 0.7, 0.5),
                               ("d", 0.2, 0.9))]
    enrollment = [{"speaker": s, "k": k, "uar": u} for s, k, u in
                  (("x", 0, 0.3), ("y", 0, 0.5), ("x", 5, 0.6), ("y", 5, 0.7))]
    row = personal_summary({"clients": clients, "enrollment": enrollment})
    assert row["client_global_uar"] == pytest.approx(0.45)
    assert row["client_personal_uar"] == pytest.approx(0.6)
    assert row["client_personal_uar_p10"] == pytest.approx(np.percentile([0.6, 0.4, 0.5, 0.9],
                                                                         10))
    assert row["client_personal_better"] == pytest.approx(0.5)  # a and d
    assert parse_enroll_uar(row["enroll_uar"]) == {0: pytest.approx(0.4), 5: pytest.approx(0.65)}
    assert set(personal_summary(None).values()) == {None}


@pytest.fixture(scope="module")
def quick_out(small_corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("personalization") / "out"
    outcome = runner.run_experiment(PAPER000_PERSONALIZATION_QUICK, out, progress=False)
    assert outcome.complete
    return out


def test_every_run_records_each_clients_own_and_global_score(quick_out):
    table = pd.read_csv(quick_out / runner.TABLE_FILE)
    assert list(table.columns) == list(runner.TABLE_COLUMNS)
    assert len(table) == len(PAPER000_PERSONALIZATION_QUICK.runs())
    assert table["client_personal_uar"].between(0, 1).all()
    assert table["client_global_uar"].between(0, 1).all()
    assert (table["label_noise"].fillna(0) > 0).tolist() == \
        ["noisy" in c for c in table["condition"]]
    # the global head of FedPer and FedRep is never trained: they enroll nobody
    enrolled = {c for c, v in zip(table["condition"], table["enroll_uar"]) if isinstance(v, str)}
    assert enrolled == {c for c in table["condition"] if not c.endswith(("fedper", "fedrep"))}
    from tff_ser.results import RunResult
    for run_id in table["run_id"]:
        result = RunResult.load(quick_out / runner.RUNS_DIR / run_id)
        personalized = result.final_metrics["personalized"]
        n_train = result.config["task"]["train_speakers"]
        assert len(personalized["clients"]) == n_train
        assert personalized["plan"]["method"] in ("finetune", "fedper", "fedrep", "ditto")
        # each model reads its own features: clip statistics, eGeMAPS, paper 001's frames
        assert result.config["task"]["feature_kind"] == \
            {"mlp": "clip_stats", "mlp_egemaps": "egemaps", "conv1d": "paper001"}[
                run_id.split("-")[0]]


def test_the_summary_has_the_personalization_and_enrollment_tables(quick_out):
    text = (quick_out / runner.SUMMARY_FILE).read_text()
    assert "## Each speaker's own model" in text and "## New-speaker enrollment" in text
    assert (quick_out / "personal_vs_global.png").is_file()
    assert (quick_out / "enrollment.png").is_file()
    table = pd.read_csv(quick_out / runner.TABLE_FILE)
    view = personalization_table(table)
    assert list(view["condition"]) == list(dict.fromkeys(table["condition"]))
    ks, values = enrollment_curves(table)["mlp-pooled-finetune"]
    assert ks == [0, 5] and len(values) == 2


def test_a_finished_personalized_run_is_read_back_not_retrained(quick_out, tmp_path,
                                                                monkeypatch):
    out = tmp_path / "again"
    shutil.copytree(quick_out, out)

    def no_training(*args, **kwargs):
        raise AssertionError("a saved run was trained again")

    monkeypatch.setattr(runner, "train_run", no_training)
    outcome = runner.run_experiment(PAPER000_PERSONALIZATION_QUICK, out, progress=False)
    assert len(outcome.reused) == len(PAPER000_PERSONALIZATION_QUICK.runs())
    # and a changed plan is a different run
    changed = dataclasses.replace(PAPER000_PERSONALIZATION_QUICK,
                                  plan=PersonalPlan(steps=3, enroll_ks=(0, 5)))
    spec = changed.runs()[0]
    assert spec.key_dict() != PAPER000_PERSONALIZATION_QUICK.runs()[0].key_dict()
    assert pathlib.Path(out / runner.RUNS_DIR / spec.run_id).is_dir()
