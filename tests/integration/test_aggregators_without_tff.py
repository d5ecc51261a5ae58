"""TFF's robust, compression and DP-FedAvg aggregators without TFF: the tf engine computes them.

Deterministic parts equal TFF's process to 1e-5 after every round: robust
aggregation (adaptive zeroing and L2 clipping), DP-FedAvg without noise (fixed
and adaptive clip: clipping, the clip's quantile estimate, zeroing), and the
tensors that compression leaves in float32.  The random parts -- DP's Gaussian
noise and the quantizer's stochastic rounding, which TFF draws from unseeded
ops -- agree in distribution: the noise a round adds (a noisy run minus its
noise-free twin, per coordinate) has the theoretical standard deviation on both
engines and a two-sample Kolmogorov-Smirnov test does not tell the engines
apart; the quantization error of each compressed kernel is unbiased, bounded
by one quantization step, and indistinguishable between the engines by the
same test.
"""
import numpy as np
import pytest

from helpers import max_abs_diff as _max_diff
from helpers import synthetic_task
from helpers import train_with_round_weights as _run
from tff_ser.engines.base import choose_engine
from tff_ser.fedconfig import recipe
from tff_ser.baselines.paper000.models import mlp_000
from tff_ser.models import KerasModel


def _mlp(hidden):
    return KerasModel(lambda shape, n, seed=None: mlp_000(shape, n, hidden_units=hidden,
                                                          dropout_rate=0.0, seed=seed),
                      name=f"mlp_{'_'.join(map(str, hidden))}_no_dropout")


SMALL = _mlp((32, 16))
#: 136 x 160 = 21,760 > 20,000 elements: the first kernel is quantized, the rest is not.
WIDE = _mlp((160, 16))

#: Deterministic cases: (recipe, overrides). 20 local epochs of client SGD at lr 0.05 make
#: updates whose L2 norms pass robust's initial clip of 1.0 (and DP's clips of 0.05 / 0.1),
#: so clipping and the estimates' updates are exercised, while training stays stable
#: (at lr 0.1 the synthetic task's plain FedAvg is already chaotic: the two engines' float
#: rounding grows to 0.03 within round 1, measured).
DETERMINISTIC = {
    "robust": ("fedavg", {"aggregator": "robust", "client_lr": 0.05, "local_epochs": 20}),
    "robust_unweighted_fedadam": ("fedadam", {"aggregator": "robust", "client_lr": 0.05,
                                              "local_epochs": 20, "weighted": False}),
    "dp_fixed_clip_no_noise": ("dp_fedavg", {"dp_clip": 0.05, "noise_multiplier": 0.0,
                                             "client_lr": 0.05, "local_epochs": 3}),
    "dp_adaptive_no_noise": ("dp_fedavg", {"noise_multiplier": 0.0, "client_lr": 0.05,
                                           "local_epochs": 3}),
}


def _config(base, overrides, **extra):
    kw = {"rounds": 3, "batch_size": 8, "seed": 5, **overrides, **extra}
    return recipe(base, **kw)


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_every_named_aggregator_trains_without_tff_and_changes_the_mean(name):
    task = synthetic_task(model=SMALL)
    base, overrides = DETERMINISTIC[name]
    config = _config(base, overrides)
    assert choose_engine(task, config) == "tf"
    a, ra = _run(task, config, "tf")
    b, _ = _run(task, config, "tf")
    assert all(np.array_equal(x, y) for x, y in zip(a.weights[0], b.weights[0]))
    plain = {k: v for k, v in overrides.items() if k not in ("aggregator", "dp_clip",
                                                               "noise_multiplier")}
    if base == "dp_fedavg":
        plain = {**plain, "aggregator": None, "weighted": False}
        base = "fedavg"
    _, rp = _run(task, _config(base, plain), "tf")
    # Adam's first server step is ~ lr * sign(mean): compare where the scale has told
    assert max(_max_diff(a, p) for a, p in zip(ra, rp)) > 1e-4, \
        "the aggregator left the mean as it was"


@pytest.mark.tff
@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_the_tf_engine_equals_tffs_aggregators_every_round(name):
    task = synthetic_task(model=SMALL)
    base, overrides = DETERMINISTIC[name]
    config = _config(base, overrides)
    ref, ref_rounds = _run(task, config, "tff")
    fast, fast_rounds = _run(task, config, "tf")
    for r, (a, b) in enumerate(zip(ref_rounds, fast_rounds), start=1):
        assert _max_diff(a, b) < 1e-5, f"{name}: round {r} differs by {_max_diff(a, b):.2e}"
    for ra, rb in zip(ref.history, fast.history):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-5)


def _noise(task, config, engine):
    """What the DP noise added in round 1: the noisy run minus its noise-free twin."""
    noisy = _run(task, config, engine)[1][0]
    clean = _run(task, recipe("dp_fedavg", **{**_kw(config), "noise_multiplier": 0.0}),
                 engine)[1][0]
    return np.concatenate([(x - y).ravel() for x, y in zip(noisy, clean)])


def _kw(config):
    return {"rounds": config.rounds, "batch_size": config.batch_size, "seed": config.seed,
            "client_lr": config.client_lr, "local_epochs": config.local_epochs,
            "dp_clip": config.dp_clip,
            "noise_multiplier": config.noise_multiplier}


@pytest.mark.parametrize("clip,z,expected_std", [
    (0.5, 1.0, 0.5 * 1.0 / 6),
    # adaptive: round 1 clips at 0.1; TFF spends clipped-count noise 0.05 x 6 on the clip
    # estimate, so the sum gets z' = (z^-2 - (2 x 0.3)^-2)^-1/2 = 0.9045 for z = 0.5
    (None, 0.5, 0.1 * (0.5 ** -2 - 0.6 ** -2) ** -0.5 / 6),
])
def test_dp_noise_has_the_gaussian_mechanisms_spread(clip, z, expected_std):
    task = synthetic_task(model=SMALL)
    config = recipe("dp_fedavg", rounds=1, batch_size=8, seed=5, client_lr=0.05, dp_clip=clip,
                    noise_multiplier=z)
    noise = _noise(task, config, "tf")
    # the server step is SGD at lr 1: the weights move by -(noise sum) / m
    assert np.std(noise) == pytest.approx(expected_std, rel=0.05)
    assert abs(np.mean(noise)) < 4 * expected_std / np.sqrt(noise.size)


@pytest.mark.tff
@pytest.mark.parametrize("clip,z", [(0.5, 1.0), (None, 0.5)])
def test_dp_noise_of_the_tf_engine_and_of_tff_agree_in_distribution(clip, z):
    from scipy import stats
    task = synthetic_task(model=SMALL)
    config = recipe("dp_fedavg", rounds=1, batch_size=8, seed=5, client_lr=0.05, dp_clip=clip,
                    noise_multiplier=z)
    ours, theirs = _noise(task, config, "tf"), _noise(task, config, "tff")
    assert np.std(ours) == pytest.approx(np.std(theirs), rel=0.06)
    assert stats.ks_2samp(ours, theirs).pvalue > 0.001


def _compression_errors(task, engine):
    kw = dict(rounds=1, batch_size=8, seed=5, client_lr=0.05, local_epochs=20)
    compressed = _run(task, recipe("fedavg", aggregator="compression", **kw), engine)[1][0]
    plain = _run(task, recipe("fedavg", aggregator="robust", **kw), "tf")[1][0]
    return compressed, plain


def test_compression_quantizes_only_the_large_tensors_unbiased_within_one_step():
    task = synthetic_task(model=WIDE)
    compressed, plain = _compression_errors(task, "tf")
    sizes = [w.size for w in plain]
    assert sizes[0] > 20000 and all(s <= 20000 for s in sizes[1:])
    for a, b in zip(compressed[1:], plain[1:]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    error = (compressed[0] - plain[0]).ravel()
    assert 0 < np.abs(error).max()
    assert abs(error.mean()) < 4 * error.std() / np.sqrt(error.size)


@pytest.mark.tff
def test_compression_of_the_tf_engine_and_of_tff_agree():
    """Float32 tensors to 1e-5; the quantized kernel's error alike in distribution."""
    from scipy import stats
    task = synthetic_task(model=WIDE)
    ours, plain = _compression_errors(task, "tf")
    theirs, _ = _compression_errors(task, "tff")
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    e_ours, e_theirs = (ours[0] - plain[0]).ravel(), (theirs[0] - plain[0]).ravel()
    assert np.std(e_ours) == pytest.approx(np.std(e_theirs), rel=0.1)
    assert stats.ks_2samp(e_ours, e_theirs).pvalue > 0.001


def test_the_tf_engines_dp_noise_is_seeded_by_the_run_seed():
    """Unlike TFF's unseeded draws: the same seed gives the same noisy run, another seed another."""
    task = synthetic_task(model=SMALL)
    config = recipe("dp_fedavg", rounds=2, batch_size=8, seed=5, client_lr=0.05, dp_clip=0.5,
                    noise_multiplier=1.0)
    a, b = _run(task, config, "tf")[1], _run(task, config, "tf")[1]
    assert all(np.array_equal(x, y) for x, y in zip(a[-1], b[-1]))
    other = _run(task, recipe("dp_fedavg", **{**_kw(config), "seed": 6}), "tf")[1]
    assert _max_diff(a[-1], other[-1]) > 1e-3
