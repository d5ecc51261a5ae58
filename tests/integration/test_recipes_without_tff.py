"""Every named optimizer and recipe without TFF: the ``tf`` engine computes TFF's process.

On the reference stack each case is trained by TFF's own process and by the
``tf`` engine, and the server weights agree to 1e-5 after every round (no
dropout: the synthetic task's MLP is built with ``dropout_rate=0``). On the
current stack, where TFF is not installed, the same cases train on the
``tf`` engine, deterministically, and ``engine="auto"`` never reaches for TFF.
"""
import numpy as np
import pytest

from helpers import synthetic_task
from helpers import train_with_round_weights as _per_round_weights
from tff_ser.engines.base import choose_engine
from tff_ser.fedconfig import FederatedConfig, recipe
from tff_ser.federated import train_federated
from tff_ser.baselines.paper000.models import mlp_000
from tff_ser.models import KerasModel

#: The MLP without dropout, so that the two engines can agree to the last digits.
MLP_NO_DROPOUT = KerasModel(lambda shape, n, seed=None: mlp_000(shape, n, hidden_units=(32, 16),
                                                                dropout_rate=0.0, seed=seed),
                            name="mlp_no_dropout")

#: (recipe, overrides): every server optimizer of TFF's builders, every client optimizer,
#: non-default arguments on both sides, FedProx, uniform weights and partial sampling (CD).
#: RMSprop runs at epsilon 1e-3: at TFF's default 1e-7 its first steps are nearly
#: lr * sign(g) / sqrt(1 - decay), so float32 rounding in near-zero gradients (summed
#: in another order by the two engines) grows to 3e-5 in round 1 and 9e-5 by round 3
#: (measured); at 1e-3 the engines agree to 1.2e-7 over three rounds.
CASES = {
    "fedavg": ("fedavg", {}),
    "fedavgm": ("fedavgm", {}),
    "fedadam": ("fedadam", {}),
    "fedyogi": ("fedyogi", {}),
    "fedadagrad": ("fedadagrad", {}),
    "fedprox": ("fedprox", {"mu": 0.5}),
    "fedavg_unweighted": ("fedavg", {"weighted": False}),
    "server_rmsprop": ("fedavg", {"server_optimizer": "rmsprop", "server_lr": 0.01,
                                  "server_optimizer_kwargs": {"decay": 0.8, "epsilon": 1e-3}}),
    "client_adam_args": ("paper001", {"client_optimizer_kwargs": {"beta_1": 0.8,
                                                                  "epsilon": 1e-4},
                                      "client_lr": 0.003}),
    "client_sgdm": ("fedadam", {"client_optimizer": "sgdm", "client_lr": 0.01,
                                "client_optimizer_kwargs": {"momentum": 0.7}}),
    "client_yogi": ("fedavg", {"client_optimizer": "yogi", "client_lr": 0.01}),
    "client_adagrad": ("fedavg", {"client_optimizer": "adagrad", "client_lr": 0.05}),
    "client_rmsprop_prox_unweighted": ("fedprox", {"client_optimizer": "rmsprop",
                                                   "client_lr": 0.003, "mu": 0.1,
                                                   "weighted": False,
                                                   "client_optimizer_kwargs": {"epsilon": 1e-3}}),
}


def case_config(name: str, **extra) -> FederatedConfig:
    base, overrides = CASES[name]
    kw = {"client_lr": 0.05, **overrides, "rounds": 3, "batch_size": 8, "seed": 5,
          "client_fraction": 0.7, **extra}
    return recipe(base, **kw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_named_recipe_trains_without_tff_on_the_tf_engine(name):
    task = synthetic_task(model=MLP_NO_DROPOUT)
    config = case_config(name)
    assert choose_engine(task, config) in ("batched", "tf")
    a = train_federated(task, config, progress=False, engine="tf")
    b = train_federated(task, config, progress=False, engine="tf")
    losses = [h["train_loss"] for h in a.history]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert losses == [h["train_loss"] for h in b.history]
    assert all(np.array_equal(x, y) for x, y in zip(a.weights[0], b.weights[0]))


@pytest.mark.tff
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_tf_engine_equals_tffs_process_every_round(name):
    task = synthetic_task(model=MLP_NO_DROPOUT)
    config = case_config(name)
    ref, ref_rounds = _per_round_weights(task, config, "tff")
    fast, fast_rounds = _per_round_weights(task, config, "tf")
    assert len(ref_rounds) == len(fast_rounds) == 3
    first_move = max(float(np.max(np.abs(x - y))) for x, y in
                     zip(ref_rounds[0], ref_rounds[-1]))
    assert first_move > 1e-3, "the weights barely moved: the comparison would prove nothing"
    for r, (a, b) in enumerate(zip(ref_rounds, fast_rounds), start=1):
        diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
        assert diff < 1e-5, f"{name}: round {r} differs by {diff:.2e}"
    for ra, rb in zip(ref.history, fast.history):
        assert ra["clients"] == rb["clients"]
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-5)
        assert ra["train_accuracy"] == pytest.approx(rb["train_accuracy"], abs=1e-6)


@pytest.mark.parametrize("name", ["fedyogi", "client_sgdm", "fedavgm"])
def test_a_resumed_tf_engine_run_ends_where_an_uninterrupted_one_ends(tmp_path, name):
    """The server optimizer's slots (Yogi's moments, momentum) survive a checkpoint."""
    task = synthetic_task(model=MLP_NO_DROPOUT)
    config = case_config(name, rounds=4)

    class Stop(Exception):
        pass

    def stop_after_2(round_num, metrics, weights):
        if round_num == 2:
            raise Stop

    ck = str(tmp_path / "ck")
    with pytest.raises(Stop):
        train_federated(task, config, progress=False, engine="tf", checkpoint_dir=ck,
                        callbacks=[stop_after_2])
    resumed = train_federated(task, config, progress=False, engine="tf", checkpoint_dir=ck)
    straight = train_federated(task, config, progress=False, engine="tf")
    assert resumed.times["resumed_from_round"] >= 1
    assert [h["train_loss"] for h in resumed.history] == \
        [h["train_loss"] for h in straight.history]
    assert all(np.array_equal(x, y) for x, y in zip(resumed.weights[0], straight.weights[0]))


def test_optimizer_arguments_are_checked_before_training():
    from tff_ser.engines.optimizers import optimizer_spec
    with pytest.raises(ValueError, match="takes.*momentum"):
        optimizer_spec("sgdm", {"beta_1": 0.9})
    spec = optimizer_spec("yogi", {"epsilon": 1e-4})
    assert spec["epsilon"] == 1e-4 and spec["initial_preconditioner_value"] == 1e-6
