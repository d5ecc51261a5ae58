"""Client-side feature normalization (issue 26, part 1): pooled, federated, per client.

* ``federated`` statistics (sums, sums of squares and counts added over the training
  clients) equal the ``pooled`` ones, and TFF's ``federated_sum`` of them too (reference stack);
* ``per_client`` standardizes each client with its own statistics and uses no other
  client's data: changing another client's features leaves a client's inputs as they were;
* ``enroll=k`` takes a held-out speaker's first k clips for its statistics and never scores them.
"""
import numpy as np
import pytest

from tff_ser.features.normalize import Standardizer, moments
from tff_ser.task import make_task


class _Features:
    """The part of a FeatureSet that make_task reads."""

    def __init__(self, x, y, kind="paper001"):
        from tff_ser.corpus.records import Clip
        self.x, self._y, self.kind = x, y, kind
        self.clips = [Clip(path=f"/c{i}.wav", speaker=f"{1001 + i % 5}", emotion="NEU",
                           sentence="IEO", intensity="XX", corpus="generated")
                      for i in range(len(x))]

    def labels(self, emotions):
        return self._y


def _data(seed=0):
    rng = np.random.default_rng(seed)
    # five clients of unequal size whose features have their own offsets and scales
    sizes = [7, 12, 5, 9, 11]
    x = np.concatenate([rng.normal(3 * c, 1 + c, size=(n, 6, 4)) for c, n in enumerate(sizes)])
    y = rng.integers(0, 4, len(x)).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    clients = {f"c{c}": np.arange(starts[c], starts[c + 1]) for c in range(len(sizes))}
    train = {k: clients[k] for k in ("c0", "c1", "c2")}
    val = {k: clients[k] for k in ("c3", "c4")}
    return _Features(x.astype(np.float32), y), train, val


def test_federated_statistics_equal_the_pooled_ones():
    features, train, val = _data()
    pooled = make_task(features, "mlp", train, val, normalization="pooled")
    federated = make_task(features, "mlp", train, val, normalization="federated")
    np.testing.assert_allclose(federated.normalizer.mean, pooled.normalizer.mean, rtol=1e-9)
    np.testing.assert_allclose(federated.normalizer.std, pooled.normalizer.std, rtol=1e-9)
    np.testing.assert_allclose(federated.x, pooled.x, atol=1e-5)
    assert federated.info["normalization"] == "federated"
    assert "normalization" not in pooled.info  # pooled records stay as they always were


@pytest.mark.tff
def test_tff_federated_sum_of_client_moments_is_the_federated_statistics():
    from tff_ser.engines.tff_stats import federated_moments
    features, train, val = _data()
    count, total, total_sq = federated_moments([features.x[idx] for idx in train.values()])
    here = [sum(part) for part in zip(*(moments(features.x[idx]) for idx in train.values()))]
    assert count == here[0] == sum(len(idx) for idx in train.values()) * 6
    np.testing.assert_allclose(total, here[1], rtol=1e-12)
    np.testing.assert_allclose(total_sq, here[2], rtol=1e-12)
    pooled = Standardizer().fit(features.x[np.concatenate(list(train.values()))])
    tff_scaler = Standardizer().fit_moments(count, total, total_sq)
    np.testing.assert_allclose(tff_scaler.mean, pooled.mean, rtol=1e-9)
    np.testing.assert_allclose(tff_scaler.std, pooled.std, rtol=1e-9)


def test_per_client_uses_each_clients_own_statistics_and_no_one_elses():
    features, train, val = _data()
    task = make_task(features, "mlp", train, val, normalization="per_client")
    for idx in list(train.values()) + list(val.values()):
        block = task.x[idx].reshape(-1, 4)
        np.testing.assert_allclose(block.mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(block.std(axis=0), 1.0, atol=1e-4)
    # change another client's features: client c0's inputs do not move
    other = _Features(features.x.copy(), features._y)
    other.x[train["c1"]] += 100.0
    other.x[val["c3"]] *= 3.0
    again = make_task(other, "mlp", train, val, normalization="per_client")
    np.testing.assert_array_equal(again.x[train["c0"]], task.x[train["c0"]])
    assert task.normalizer is None and task.info["held_out_statistics"].endswith("(transductive)")


def test_enrollment_takes_the_first_k_clips_for_statistics_and_never_scores_them():
    features, train, val = _data()
    task = make_task(features, "mlp", train, val, normalization="per_client", enroll=3)
    for cid, idx in val.items():
        np.testing.assert_array_equal(task.val_clients[cid], idx[3:])
        assert not set(idx[:3]) & set(task.val_indices)
        expected = Standardizer().fit(features.x[idx[:3]]).transform(features.x[idx[3:]])
        np.testing.assert_allclose(task.x[idx[3:]], expected, atol=1e-5)
    with pytest.raises(ValueError, match="would leave none to score"):
        make_task(features, "mlp", train, val, normalization="per_client", enroll=9)
    with pytest.raises(ValueError, match="needs normalization='per_client'"):
        make_task(features, "mlp", train, val, normalization="pooled", enroll=3)
    with pytest.raises(ValueError, match="normalization must be one of"):
        make_task(features, "mlp", train, val, normalization="global")


def test_experiments_carry_the_normalization_into_every_run_and_its_key():
    from tff_ser.baselines.paper001.configs import PAPER001_EXP1_QUICK
    from tff_ser.experiments.configs import with_overrides
    plain = PAPER001_EXP1_QUICK.runs()[0]
    assert "normalization" not in plain.key_dict()  # runs saved before the option still match
    changed = with_overrides(PAPER001_EXP1_QUICK, normalization="per_client", enroll=2)
    spec = changed.runs()[0]
    assert (spec.normalization, spec.enroll) == ("per_client", 2)
    assert spec.key_dict()["normalization"] == "per_client" and spec.key_dict()["enroll"] == 2


def test_cli_train_takes_the_normalization(small_corpus_dir, capsys):
    from tff_ser.cli import main
    main(["train", "--size", "small", "--rounds", "1", "--normalization", "per_client",
          "--enroll", "3", "--no-progress"])
    out = capsys.readouterr().out
    assert "first 3 clips give its statistics and are not scored (38 scored)" in out
