"""Issue 3's acceptance runs at test size, on the generated corpus.

Every model of the papers trains federated (IID, 4 clients) and the paper 000
setting (one client per speaker, CD 0.5) runs next to its centralized
baseline.  Full-size numbers come from `make test-slow` / the experiments.
"""
import numpy as np
import pytest

import tff_ser
from tff_ser.task import load_features, task_from_features


@pytest.fixture(scope="module")
def features_by_kind(small_corpus_dir):
    out = {}
    for model in ("mlp", "dense", "cnn_logmel"):
        _, fs = load_features(model, size="small", progress=False)
        out[fs.kind] = fs
    return out


@pytest.mark.parametrize("model,rounds", [("dense", 1), ("conv1d", 2), ("lstm", 1), ("mlp", 2),
                                          ("cnn_logmel", 2), ("lstm_logmel", 1)])
def test_every_model_trains_federated_on_4_iid_clients(features_by_kind, model, rounds):
    kind = tff_ser.MODELS[model].feature_kind
    task = task_from_features(features_by_kind[kind], model, partition="iid", k=4, seed=0)
    assert len(task.train_clients) == 4
    cfg = tff_ser.FederatedConfig(rounds=rounds, batch_size=20, seed=0)
    result = tff_ser.train_federated(task, cfg, progress=False, federated_eval=False)
    assert len(result.history) == rounds
    assert np.isfinite(result.history[-1]["train_loss"])
    val = result.final_metrics["validation"]
    assert val["n"] == len(task.val_indices)
    assert np.array(val["confusion_matrix"]).sum() == val["n"]
    assert result.config["task"]["corpus"] == "generated"


def test_paper000_per_speaker_with_half_the_clients_per_round_and_its_baseline(features_by_kind):
    fs = features_by_kind["clip_stats"]
    task = task_from_features(fs, "mlp", partition="by_speaker", seed=0)
    speakers = {c.speaker for c in fs.clips}
    assert len(task.train_clients) + len(task.val_clients) == len(speakers)
    assert set(task.train_clients).isdisjoint(task.val_clients)
    cfg = tff_ser.FederatedConfig(rounds=3, local_epochs=2, batch_size=16, client_fraction=0.5,
                                  client_lr=0.01, server_lr=0.01, seed=0)
    fed = tff_ser.train_federated(task, cfg, progress=False)
    expected = max(1, round(0.5 * len(task.train_clients)))
    assert all(h["clients"] == expected for h in fed.history)
    base = tff_ser.train_centralized(task, tff_ser.CentralizedConfig.matching(cfg), progress=False)
    for r in (fed, base):
        assert set(r.final_metrics["validation_per_client_accuracy"]) == set(task.val_clients)
        assert 0.0 <= r.final_metrics["validation"]["accuracy"] <= 1.0


@pytest.mark.parametrize("model", ["mlp"])
def test_centralized_steps_per_execution_gives_the_same_weights_bit_for_bit(
        features_by_kind, model, monkeypatch):
    from tff_ser import centralized
    kind = tff_ser.MODELS[model].feature_kind
    task = task_from_features(features_by_kind[kind], model, partition="iid", k=4, seed=0)
    # dropout on (the mlp's 0.2), 2 epochs, a partial last batch (conv1d with dropout:
    # conv1d passed the same check when it was written; it costs 3 min of CI)
    cfg = tff_ser.CentralizedConfig(epochs=2, batch_size=16, lr=0.001, seed=3, eval_every=0)
    fused = tff_ser.train_centralized(task, cfg, progress=False)
    monkeypatch.setattr(centralized, "STEPS_PER_EXECUTION", 1)
    one_by_one = tff_ser.train_centralized(task, cfg, progress=False)
    assert len(task.train_indices) % 16 != 0
    for a, b in zip(fused.weights[0], one_by_one.weights[0]):
        np.testing.assert_array_equal(a, b)
    assert fused.history[-1]["train_loss"] == one_by_one.history[-1]["train_loss"]


def test_centralized_run_is_the_same_alone_and_after_a_federated_run(features_by_kind):
    # The main job trains federated runs first and the centralized ones after them in one
    # process; a run must not depend on what the process trained before it.
    task = task_from_features(features_by_kind["clip_stats"], "mlp", partition="by_speaker",
                              seed=0)
    cfg = tff_ser.CentralizedConfig(epochs=2, batch_size=16, lr=0.01, seed=1)
    alone = tff_ser.train_centralized(task, cfg, progress=False)
    tff_ser.train_federated(task, tff_ser.FederatedConfig(rounds=1, batch_size=16, seed=2,
                                                          client_fraction=0.5),
                            progress=False, federated_eval=False)
    after = tff_ser.train_centralized(task, cfg, progress=False)
    for a, b in zip(alone.weights[0], after.weights[0]):
        np.testing.assert_array_equal(a, b)
    assert alone.final_metrics["validation"] == after.final_metrics["validation"]
    # every run says which machine it ran on (another CPU gives another draw)
    machine = after.extra["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["tensorflow"] == tf_version()
    assert machine["onednn"] in (True, False)


def tf_version():
    import tensorflow as tf
    return tf.__version__
