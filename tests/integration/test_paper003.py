"""Paper 003's experiment: searches before the networks they derive, branches before their fusion.

* the runner trains upstream runs first, in waves: searches and branches, then derived
  networks, then fusion -- and trains a needed upstream run that was not selected;
* a derived run builds its search's genotype and records it; a fusion run reads its branches'
  saved models;
* a run's key carries its search's and branches' keys, so a changed search makes it stale;
* declarations that cannot work are refused when made.
"""
import dataclasses
import json

import numpy as np
import pytest

from tff_ser.baselines.paper003.configs import PAPER003_NAS, PAPER003_NAS_QUICK
from tff_ser.experiments import runner
from tff_ser.experiments.configs import RunSpec, with_overrides
from tff_ser.features.pipeline import FeatureSet


def dummy_features(config):
    by_id = {s.run_id: s for s in config.runs()}
    kinds = {runner.run_feature_kind(s, by_id) for s in config.runs()}
    return {k: FeatureSet(np.zeros((0, 1), np.float32), [], [], k, {}) for k in kinds}, by_id


def waves_of(config, tmp_path, selected=None):
    features, by_id = dummy_features(config)
    keys = runner._run_keys(config.runs(), by_id, {"corpus": "x"}, features)
    to_train = [runner._item(s, by_id, features, tmp_path, keys) for s in config.runs()
                if selected is None or s.run_id in selected]
    waves = runner._upstream_first(to_train, by_id, tmp_path, features, keys)
    return [sorted(item[0].run_id for item in wave) for wave in waves]


def test_searches_and_branches_train_before_what_reads_them(tmp_path):
    first, second, third = waves_of(PAPER003_NAS_QUICK, tmp_path)
    assert {"search-darts-s0", "search-fednas-s0", "attention_rnn-federated-s0",
            "conv1d-federated-s0", "darts_v2-federated-s0"} <= set(first)
    assert set(second) == {f"derived-{a}-{m}-s0" for a in ("darts", "fednas")
                           for m in ("federated", "centralized")}
    assert set(third) == {"fusion-decision-s0", "fusion-feature-s0",
                          "fusion-decision-centralized-s0"}


def test_a_run_whose_upstream_is_not_saved_gets_it_trained_first(tmp_path):
    assert waves_of(PAPER003_NAS_QUICK, tmp_path, selected={"fusion-decision-s0"}) == [
        ["attention_rnn-federated-s0", "search-fednas-s0"], ["derived-fednas-federated-s0"],
        ["fusion-decision-s0"]]


def test_a_changed_search_makes_the_runs_built_from_it_stale():
    features, by_id = dummy_features(PAPER003_NAS)
    keys = runner._run_keys(PAPER003_NAS.runs(), by_id, {}, features)
    longer = with_overrides(PAPER003_NAS, search_fl=dataclasses.replace(
        PAPER003_NAS.search_fl, rounds=11))
    other = runner._run_keys(longer.runs(), {s.run_id: s for s in longer.runs()}, {}, features)
    assert other["derived-fednas-federated-s1"] != keys["derived-fednas-federated-s1"]
    assert other["fusion-decision-s1"] != keys["fusion-decision-s1"]
    assert other["attention_rnn-federated-s1"] == keys["attention_rnn-federated-s1"]
    assert other["conv1d-federated-s0"] == keys["conv1d-federated-s0"]


def test_fusion_trains_paper_003s_100_epochs_and_the_networks_paper_001s_20_rounds():
    """Paper 003 trains its fusion perceptron for 100 epochs with Adam 1e-3: the centralized
    fusion run as written, the federated ones as 100 rounds of NLE 1 (FUSION_FL)."""
    specs = {s.condition: s for s in PAPER003_NAS.runs()}
    assert {c for c, s in specs.items() if s.fl.rounds == 100} == {
        "fusion-decision", "fusion-feature", "fusion-decision-centralized"}
    assert {s.fl.rounds for c, s in specs.items() if not c.startswith(("fusion-", "search-"))} \
        == {20}
    paper = specs["fusion-decision-centralized"].centralized_config()
    assert (paper.epochs, paper.optimizer, paper.lr) == (100, "adam", 1e-3)
    federated = specs["fusion-decision"].fl
    assert (federated.local_epochs, federated.server_optimizer, federated.server_lr) == \
        (1, "sgd", 1.0)
    assert specs["fusion-feature"].fl == federated


def test_a_fusion_branch_that_keeps_no_weights_is_refused(tmp_path):
    specs = [s for s in PAPER003_NAS_QUICK.runs()]
    by_id = {s.run_id: s for s in specs}
    by_id["attention_rnn-federated-s0"] = dataclasses.replace(
        by_id["attention_rnn-federated-s0"], keep_weights=False)
    features, _ = dummy_features(PAPER003_NAS_QUICK)
    keys = runner._run_keys(list(by_id.values()), by_id, {}, features)
    item = runner._item(by_id["fusion-decision-s0"], by_id, features, tmp_path, keys)
    with pytest.raises(ValueError, match="does not keep its weights"):
        runner._upstream_first([item], by_id, tmp_path, features, keys)


@pytest.mark.parametrize("fields, message", [
    ({"branches": ("a",), "fusion": "decision"}, "two or more branches"),
    ({"branches": ("a", "b")}, "names its level"),
    ({"fusion": "late"}, "fusion must be one of"),
    ({"model_kwargs": (("genotype", object()),)}, "JSON-able"),
])
def test_a_run_that_cannot_work_is_refused_when_declared(fields, message):
    with pytest.raises(ValueError, match=message):
        RunSpec("r", "mlp", "federated", "by_speaker", 4, "x", **fields)


def test_a_search_run_trains_its_search_network_alone():
    from tff_ser.engines.search_spec import SearchSpec
    with pytest.raises(ValueError, match="trains its search network alone"):
        RunSpec("r", "darts_search", "federated", "by_speaker", 4, "x", search=SearchSpec(),
                genotype_from="s-s0")


def test_fusion_reads_the_searched_branch_and_the_stream_it_trained_first(small_corpus_dir,
                                                                        tmp_path):
    # resolve_corpus(size="small") finds the session's small corpus (conftest's TFF_SER_DATA)
    outcome = runner.run_experiment(PAPER003_NAS_QUICK, tmp_path / "out",
                                    only=["fusion-decision-s0"], progress=False)
    runs = tmp_path / "out" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == [
        "attention_rnn-federated-s0", "derived-fednas-federated-s0", "fusion-decision-s0",
        "search-fednas-s0"]
    search = json.loads((runs / "search-fednas-s0" / "result.json").read_text())
    derived = json.loads((runs / "derived-fednas-federated-s0" / "result.json").read_text())
    assert derived["extra"]["genotype"] == search["final_metrics"]["search"]["genotype"]
    assert set(derived["extra"]["run_key"]["upstream"]) == {"search-fednas-s0"}
    fusion = json.loads((runs / "fusion-decision-s0" / "result.json").read_text())
    assert set(fusion["extra"]["run_key"]["upstream"]) == {"derived-fednas-federated-s0",
                                                          "attention_rnn-federated-s0"}
    assert "fusion-feature-s0" in outcome.missing


def test_the_paper_section_gives_parameters_train_time_and_the_search_cost():
    import pandas as pd
    rows = [{"run_id": f"{c}-s{seed}", "condition": c, "seed": seed, "model": m, "setup": setup,
             "mode": "federated", "clients": 73, "rounds": rounds, "uar": uar + 0.01 * seed,
             "train_seconds": secs, "parameters": params}
            for c, m, setup, rounds, uar, secs, params in (
                ("search-fednas", "darts_search", "search", 10, 0.40, 7200.0, 130_000),
                ("derived-fednas-federated", "darts_derived", "derived", 20, 0.60, 600.0,
                 52_000))
            for seed in ((0,) if setup == "search" else (0, 1, 2))]
    text = "\n".join(PAPER003_NAS.paper_section(pd.DataFrame(rows)))
    assert "| derived-fednas-federated | 3 | 0.05M | 0.610 ± 0.010 |" in text
    assert "| search-fednas | 1 | 0.13M | 0.400 |" in text
    assert "`search-fednas-s0` 10 epochs (rounds), 2.00 h of training" in text
    assert "| Spectrogram branch | 0.13M | 63.5 |" in text
    assert "63.5" in text and "not CREMA-D or IEMOCAP" in text
