"""The 3-objective study (accuracy, epsilon, bytes) over recipe x DP noise x CD, on Optuna's public API."""
import math

import numpy as np
import pytest

from fl_helpers import synthetic_task
from tff_ser.hpo.privacy_study import (QUICK_PRIVACY_SPACE, PrivacySpace, pareto_mask_3d,
                                       plot_projection, run_privacy_study, study_table)


@pytest.fixture(scope="module")
def study_and_storage(tmp_path_factory):
    storage = f"sqlite:///{tmp_path_factory.mktemp('study')}/privacy.db"
    return run_privacy_study(synthetic_task(), QUICK_PRIVACY_SPACE, storage=storage), storage


def test_every_point_runs_once_with_its_three_objectives(study_and_storage):
    study, _ = study_and_storage
    table = study_table(study)
    assert len(table) == QUICK_PRIVACY_SPACE.size == 8
    assert not table.duplicated(["recipe", "noise_multiplier", "client_fraction"]).any()
    dp = table[table["noise_multiplier"] > 0]
    assert (dp["epsilon"] > 0).all() and np.isfinite(dp["epsilon"]).all()
    assert (table[table["noise_multiplier"] == 0]["epsilon"] == math.inf).all()
    # CD 0.5 sends half the bytes of CD 1.0 (3 of 6 clients), and amplifies privacy
    half = table[table["client_fraction"] == 0.5]["mb_up"].iloc[0]
    full = table[table["client_fraction"] == 1.0]["mb_up"].iloc[0]
    assert half == pytest.approx(full / 2)
    eps = dp.groupby("client_fraction")["epsilon"].mean()
    assert eps[0.5] < eps[1.0]


def test_optunas_pareto_front_is_the_non_dominated_set(study_and_storage, tmp_path):
    study, _ = study_and_storage
    table = study_table(study)
    mask = pareto_mask_3d(table[["accuracy", "epsilon", "mb_up"]].to_numpy())
    assert mask.tolist() == table["pareto"].tolist()
    fig = plot_projection(table)
    fig.savefig(tmp_path / "projection.png")
    assert (tmp_path / "projection.png").stat().st_size > 0


def test_a_rerun_on_the_same_storage_trains_nothing(study_and_storage, monkeypatch):
    import tff_ser.federated as federated
    _, storage = study_and_storage
    monkeypatch.setattr(federated, "train_federated",
                        lambda *a, **k: pytest.fail("a finished point was trained again"))
    study = run_privacy_study(synthetic_task(), QUICK_PRIVACY_SPACE, storage=storage)
    assert len(study_table(study)) == 8


def test_an_invalid_point_is_skipped_with_its_reason_not_dropped():
    space = PrivacySpace(recipes=("fedavg",), noise_multipliers=(1.0,), client_fractions=(1.0,),
                         rounds=1, local_epochs=1, dp_clip=None)  # adaptive clip, 6 clients
    table = study_table(run_privacy_study(synthetic_task(), space))
    assert len(table) == 1 and "more than 10 clients per round" in table["skipped"].iloc[0]


def test_the_cli_runs_the_ci_sized_study_and_writes_its_report(small_corpus_dir, tmp_path):
    from tff_ser import cli
    out = tmp_path / "privacy"
    assert cli.main(["hpo", "privacy", "--quick", "--no-progress", "--out", str(out)]) == 0
    text = (out / "summary.md").read_text()
    assert "generated stand-in corpus, not CREMA-D" in text and "## Pareto front" in text
    assert (out / "privacy_projection.png").exists() and (out / "privacy_study.csv").exists()
