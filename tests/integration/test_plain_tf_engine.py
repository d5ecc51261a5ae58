"""The plain-TensorFlow engine computes the TFF process's FedAvg rounds, for all six models.

For each of the package's models (paper 001's dense, conv1d, lstm; paper
000's mlp; paper 004's cnn_logmel, lstm_logmel) the engine's server weights
must equal TFF 0.87's ``build_weighted_fed_avg`` weights to 1e-5 after every
round: 4 IID clients of unequal size (partial last batches, batches straddling
two local epochs), client and server Adam, NLE 1 and NLE 2, client_fraction
0.75 (3 of 4 clients a round, a different three each round).  Dropout is off
for the proof; with dropout on, the same seed must give the same run, and the
engines must agree in distribution (see ``test_with_dropout_the_engines_train_alike``).

Learning rates are 1e-4.  At the papers' 1e-3 the mlp, lstm, cnn_logmel and
lstm_logmel still agree to 1e-5, but dense and conv1d do not, and not because
the math differs: TFF runs the graph in its own C++ worker binary, whose
kernels round the last bit differently, and Adam turns a last-bit difference
in a gradient that is nearly zero (a sum that cancels) into a step of up to
~lr.  Measured at 1e-3, NLE 2, round 1: dense max |tf - TFF| = 6.1e-5 on 76 of
the 2.6 M elements of one kernel, every other element within 1e-6; conv1d
1.1e-5.  Both differences scale with the learning rate, so at 1e-4 they fall
below 1e-5 while every round still moves the weights by more than 5x that.

Inputs are shortened (fewer frames / mel bands) so that TFF's process builds
and runs in seconds; the layer stack and the round's math are the papers'.
"""
import dataclasses

import numpy as np
import pytest

from tff_ser.stack import has_tff

from tff_ser import models
from tff_ser.engines.base import EngineUnsupported, choose_engine
from tff_ser.engines.state import EngineState
from tff_ser.engines.plain_tf import PlainTFFedAvg
from tff_ser.fedconfig import FederatedConfig, initial_model_weights, round_clip_rows
from tff_ser.task import Task

TOLERANCE = 1e-5
CLIENT_SIZES = (9, 14, 6, 11)  # unequal; with BS 4 three of four end on a partial batch

#: model -> (small input shape, hyperparameters switching dropout off)
SHAPES = {
    "dense": ((12, 34), {"dropout_rate": 0.0}),
    "conv1d": ((14, 34), {"dropout_rate": 0.0}),
    "lstm": ((8, 34), {}),
    "mlp": ((136,), {"dropout_rate": 0.0}),
    "cnn_logmel": ((24, 40), {}),
    "lstm_logmel": ((10, 40), {}),
}
CONFIGS = {
    "nle1": FederatedConfig(rounds=3, local_epochs=1, batch_size=4, client_fraction=0.75,
                            client_lr=1e-4, server_lr=1e-4, seed=2),
    "nle2": FederatedConfig(rounds=2, local_epochs=2, batch_size=4, client_fraction=0.75,
                            client_lr=1e-4, server_lr=1e-4, seed=4),
}


def _task(model: str, input_shape, seed: int = 0, sizes=CLIENT_SIZES) -> Task:
    """Clips with a learnable class signal, one IID client per entry of ``sizes``."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    centers = rng.normal(size=(4,) + tuple(input_shape))
    y = rng.integers(0, 4, size=n).astype(np.int32)
    x = (centers[y] + rng.normal(size=(n,) + tuple(input_shape))).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    clients = {f"c{i}": np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))}
    return Task(model, x, y, clients, {}, info={"corpus": "synthetic"})


@pytest.fixture(scope="module")
def presets():
    """Each model without dropout, as a model value (no registry involved)."""
    names = {}
    for name, (shape, hyper) in SHAPES.items():
        spec = models.get_spec(name)
        names[name] = models.KerasModel(spec.builder, name=f"{name}_proof", hyperparameters=hyper)
    return names


def _tff_weights_per_round(task: Task, config: FederatedConfig):
    from tff_ser.engines.tff_process import (_batches, build_processes, set_learning_rates,
                                             with_model_weights, initial_state)
    process, _ = build_processes(task.model, task.input_shape, task.num_classes)
    trainable, non_trainable = initial_model_weights(task.model, task.input_shape,
                                                     task.num_classes, config.seed)
    state = set_learning_rates(process, with_model_weights(initial_state(process), trainable,
                                                           non_trainable),
                               config.client_lr, config.server_lr)
    out = []
    for round_num in range(1, config.rounds + 1):
        datasets = [_batches(task, rows, config.batch_size)
                    for _, rows in round_clip_rows(task.train_clients, config, round_num)]
        result = process.next(state, datasets)
        state = result.state
        train = result.metrics["client_work"]["train"]
        out.append(([np.asarray(w) for w in state.global_model_weights.trainable],
                    float(train["loss"]), int(train["num_examples"])))
    return trainable, non_trainable, out


def _engine(task, config, trainable, non_trainable) -> PlainTFFedAvg:
    engine = PlainTFFedAvg(task, config)
    engine.set_state(EngineState(0, trainable, non_trainable, 0, [], []))
    return engine


@pytest.mark.tff
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("model", sorted(SHAPES))
def test_tf_engine_weights_equal_tff_weights_after_every_round(presets, model, config_name):
    config = CONFIGS[config_name]
    task = _task(presets[model], SHAPES[model][0])
    sampled = [[c for c, _ in round_clip_rows(task.train_clients, config, r)]
               for r in range(1, config.rounds + 1)]
    assert all(len(s) == 3 for s in sampled) and len({tuple(s) for s in sampled}) > 1
    trainable, non_trainable, expected = _tff_weights_per_round(task, config)
    engine = _engine(task, config, trainable, non_trainable)
    previous = trainable
    for round_num, (weights, loss, examples) in enumerate(expected, start=1):
        row = engine.run_round(round_num)
        ours = [v.numpy() for v in engine.server_trainable]
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, weights))
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, previous))
        assert diff < TOLERANCE, f"{model} round {round_num}: max |tf - TFF| = {diff:.3g}"
        assert moved > 5 * TOLERANCE, "the round barely moved the weights; nothing is proven"
        close = np.mean(np.concatenate([np.abs(a - b).ravel() < 1e-7
                                        for a, b in zip(ours, weights)]))
        assert close > 0.999, f"{model}: only {close:.4%} of the weights agree to 1e-7"
        assert row["train_examples"] == examples
        assert row["train_loss"] == pytest.approx(loss, abs=1e-4)
        previous = weights


def test_same_seed_same_run_with_dropout():
    """Paper 001's conv1d with its dropout: two runs with one seed give identical weights."""
    from tff_ser.federated import train_federated
    task = _task("conv1d", (14, 34), seed=3)
    config = FederatedConfig(rounds=3, local_epochs=1, batch_size=4, client_fraction=0.75,
                             client_lr=0.001, server_lr=0.001, seed=1)
    a = train_federated(task, config, engine="tf", progress=False)
    b = train_federated(task, config, engine="tf", progress=False)
    for x, y in zip(a.weights[0], b.weights[0]):
        np.testing.assert_array_equal(x, y)
    assert a.config["engine"] == "tf"
    # A run SIGKILLed mid-way resumes and ends the same: tests/integration/test_federated.py (engine "tf").
    other = train_federated(task, dataclasses.replace(config, seed=2), engine="tf",
                            progress=False)
    assert not np.array_equal(other.weights[0][0], a.weights[0][0])


def _mean_train_loss(task, config, engine=None) -> float:
    if engine is None:
        _, _, expected = _tff_weights_per_round(task, config)
        return float(np.mean([loss for _, loss, _ in expected]))
    trainable, non_trainable = initial_model_weights(task.model, task.input_shape,
                                                     task.num_classes, config.seed)
    engine = _engine(task, config, trainable, non_trainable)
    return float(np.mean([engine.run_round(r)["train_loss"]
                          for r in range(1, config.rounds + 1)]))


@pytest.mark.tff
def test_with_dropout_the_engines_train_alike(presets):
    """Dropout on (paper 000's MLP, rate 0.2): the tf engine and TFF over six seeds.

    ReproducibleDropout draws each mask from the bits of its input's sum, and
    TFF's worker rounds the first layer's output differently in the last bit,
    so the masks differ from the first step (round-1 losses 1.559 vs 1.531 at
    seed 0): the engines can only be the same in distribution.  Checked with a
    paired t-test over seeds on the mean training loss of 5 rounds: no
    difference between the engines at the 5 % level, while the same test does
    find the difference between dropout 0.2 and no dropout (its power).
    """
    from scipy import stats
    task = _task("mlp", (136,), seed=5, sizes=(20, 26, 14, 32))
    no_dropout = _task(presets["mlp"], (136,), seed=5, sizes=(20, 26, 14, 32))
    tff, ours, without = [], [], []
    for seed in range(6):
        config = FederatedConfig(rounds=5, local_epochs=1, batch_size=8, client_fraction=1.0,
                                 client_lr=0.001, server_lr=0.001, seed=seed)
        tff.append(_mean_train_loss(task, config))
        ours.append(_mean_train_loss(task, config, engine="tf"))
        without.append(_mean_train_loss(no_dropout, config, engine="tf"))
    same = stats.ttest_rel(ours, tff)
    assert same.pvalue > 0.05, (ours, tff, same)
    assert abs(np.mean(ours) - np.mean(tff)) < 0.05 * np.mean(tff)
    power = stats.ttest_rel(ours, without)
    assert power.pvalue < 0.05 and np.mean(without) < np.mean(ours), (ours, without, power)


def test_auto_picks_batched_for_the_mlp_and_tf_for_the_others():
    config = FederatedConfig(rounds=1)
    assert choose_engine(_task("mlp", (136,)), config) == "batched"
    for model in ("dense", "conv1d", "lstm", "cnn_logmel", "lstm_logmel"):
        assert choose_engine(_task(model, SHAPES[model][0]), config) == "tf"
    if has_tff():
        assert choose_engine(_task("conv1d", (14, 34)), config, "tff") == "tff"


def test_an_engine_asked_for_a_model_it_cannot_train_says_what_and_why():
    with pytest.raises(EngineUnsupported, match="batched.*Conv1D|Conv1D"):
        choose_engine(_task("conv1d", (14, 34)), FederatedConfig(rounds=1), "batched")
    with pytest.raises(EngineUnsupported, match="engine must be one of"):
        choose_engine(_task("mlp", (136,)), FederatedConfig(rounds=1), "flower")


@pytest.mark.tff
@pytest.mark.parametrize("poisoned", [1, 4], ids=["one_client_nan", "every_client_nan"])
def test_non_finite_client_updates_are_dropped_and_a_non_finite_mean_is_rejected_as_in_tff(
        presets, poisoned):
    """TFF zeroes a non-finite client update (weight 0) and its finalizer skips a non-finite mean.

    One poisoned client: the round is the weighted mean of the other three.
    Every client poisoned: the mean is 0/0, the server step is skipped and the
    weights stay where they were.
    """
    task = _task(presets["mlp"], (136,), seed=7)
    for cid in sorted(task.train_clients)[:poisoned]:
        task.x[task.train_clients[cid][0]] = np.nan
    config = dataclasses.replace(CONFIGS["nle1"], rounds=1, client_fraction=1.0)
    trainable, non_trainable, expected = _tff_weights_per_round(task, config)
    engine = _engine(task, config, trainable, non_trainable)
    row = engine.run_round(1)
    ours = [v.numpy() for v in engine.server_trainable]
    for a, b in zip(ours, expected[0][0]):
        np.testing.assert_allclose(a, b, atol=TOLERANCE)
    assert all(np.isfinite(w).all() for w in ours)
    if poisoned == 4:
        for a, b in zip(ours, trainable):
            np.testing.assert_array_equal(a, b)
        assert row["train_examples"] == 0
    else:
        assert row["train_examples"] == expected[0][2]
