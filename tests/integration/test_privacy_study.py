"""The 3-objective study (accuracy, epsilon, bytes) over recipe x DP noise x CD, on Optuna's public API."""
import math

import numpy as np
import pytest

from helpers import synthetic_task
from tff_ser.hpo.privacy_study import (QUICK_PRIVACY_SPACE, PrivacySpace, pareto_mask_3d,
                                       plot_projection, run_privacy_study, study_table)


@pytest.fixture(scope="module")
def quick_study(small_corpus_dir, tmp_path_factory):
    """The CI-sized study, run once through the CLI on the 12-speaker generated corpus."""
    import optuna
    from tff_ser import cli
    out = tmp_path_factory.mktemp("privacy")
    assert cli.main(["hpo", "privacy", "--quick", "--no-progress", "--out", str(out)]) == 0
    storage = f"sqlite:///{out / 'study.db'}"
    return optuna.load_study(study_name="privacy", storage=storage), storage, out


@pytest.fixture(scope="module")
def small_task(quick_study):
    from tff_ser.task import prepare_task
    return prepare_task("mlp", partition="by_speaker", size="small", progress=False)


def test_every_point_runs_once_with_its_three_objectives(quick_study):
    study, _, _ = quick_study
    table = study_table(study)
    assert len(table) == QUICK_PRIVACY_SPACE.size == 4
    assert not table.duplicated(["recipe", "noise_multiplier", "client_fraction"]).any()
    dp = table[table["noise_multiplier"] > 0]
    assert (dp["epsilon"] > 0).all() and np.isfinite(dp["epsilon"]).all()
    assert (table[table["noise_multiplier"] == 0]["epsilon"] == math.inf).all()
    # CD 0.5 sends half the bytes of CD 1.0 (5 of 10 clients), and amplifies privacy
    half = table[table["client_fraction"] == 0.5]["mb_up"].iloc[0]
    full = table[table["client_fraction"] == 1.0]["mb_up"].iloc[0]
    assert half == pytest.approx(full / 2)
    eps = dp.groupby("client_fraction")["epsilon"].mean()
    assert eps[0.5] < eps[1.0]


def test_optunas_pareto_front_is_the_non_dominated_set(quick_study, tmp_path):
    study, _, _ = quick_study
    table = study_table(study)
    mask = pareto_mask_3d(table[["accuracy", "epsilon", "mb_up"]].to_numpy())
    assert mask.tolist() == table["pareto"].tolist()
    fig = plot_projection(table)
    fig.savefig(tmp_path / "projection.png")
    assert (tmp_path / "projection.png").stat().st_size > 0


def test_a_rerun_on_the_same_storage_trains_nothing(quick_study, small_task, monkeypatch):
    import tff_ser.federated as federated
    _, storage, _ = quick_study
    monkeypatch.setattr(federated, "train_federated",
                        lambda *a, **k: pytest.fail("a finished point was trained again"))
    study = run_privacy_study(small_task, QUICK_PRIVACY_SPACE, storage=storage)
    assert len(study_table(study)) == 4


def test_an_invalid_point_is_skipped_with_its_reason_not_dropped():
    space = PrivacySpace(recipes=("fedavg",), noise_multipliers=(1.0,), client_fractions=(1.0,),
                         rounds=1, local_epochs=1, dp_clip=None)  # adaptive clip, 6 clients
    table = study_table(run_privacy_study(synthetic_task(), space))
    assert len(table) == 1 and "more than 10 clients per round" in table["skipped"].iloc[0]


def test_the_cli_writes_the_report_of_the_ci_sized_study(quick_study):
    _, _, out = quick_study
    text = (out / "summary.md").read_text()
    assert "generated stand-in corpus, not CREMA-D" in text and "## Pareto front" in text
    assert (out / "privacy_projection.png").exists() and (out / "privacy_study.csv").exists()
