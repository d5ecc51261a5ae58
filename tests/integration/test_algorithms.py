"""TFF's federated algorithms, optimizers and aggregators through FederatedConfig.

Every named recipe (FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad, FedProx,
DP-FedAvg) and every named aggregator (compression, robust) trains on TFF's
process, is deterministic, and resumes after SIGKILL; invalid combinations
fail before any training with a message that says what to change.
"""
import dataclasses
import inspect
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from helpers import synthetic_task
from tff_ser.engines.base import EngineUnsupported, choose_engine
from tff_ser.fedconfig import (OPTIMIZER_KWARGS, FederatedConfig,
                               check_config_for_task, recipe)
from tff_ser.federated import train_federated

HERE = os.path.dirname(os.path.abspath(__file__))

#: Each recipe and aggregator at test size.  DP: fixed clip (6 clients are
#: too few for adaptive clipping at z = 1).
CASES = {
    "fedavg": dict(recipe="fedavg"),
    "fedavgm": dict(recipe="fedavgm"),
    "fedadam": dict(recipe="fedadam"),
    "fedyogi": dict(recipe="fedyogi"),
    "fedadagrad": dict(recipe="fedadagrad"),
    "fedprox": dict(recipe="fedprox", mu=0.1),
    "fedavg_unweighted": dict(recipe="fedavg", weighted=False),
    "dp_fedavg": dict(recipe="dp_fedavg", dp_clip=1.0, noise_multiplier=0.5),
    "dp_fedavg_adaptive_no_noise": dict(recipe="dp_fedavg", noise_multiplier=0.0),
    "compression": dict(recipe="paper001", aggregator="compression"),
    "robust": dict(recipe="paper001", aggregator="robust"),
}
#: TFF draws the DP noise and the quantizer's stochastic rounding from seeds of
#: its own (system time); these cases are not bit-reproducible by design.
RANDOMISED = {"dp_fedavg", "compression"}


def case_config(name, **extra):
    kw = dict(CASES[name])
    base = kw.pop("recipe")
    kw.setdefault("client_lr", 0.05)
    kw.update(dict(rounds=3, batch_size=8, seed=3), **{**kw, **extra})
    return recipe(base, **kw)


def test_recipes_are_the_papers_settings():
    assert recipe("fedavg").server_optimizer == "sgd" and recipe("fedavg").server_lr == 1.0
    assert recipe("fedavgm").optimizer_kwargs("server") == {"momentum": 0.9}
    for name, opt in (("fedadam", "adam"), ("fedyogi", "yogi"), ("fedadagrad", "adagrad")):
        cfg = recipe(name)
        assert cfg.server_optimizer == opt and cfg.client_optimizer == "sgd"
        assert cfg.optimizer_kwargs("server")["epsilon"] == 1e-3  # Reddi et al.'s tau
    assert recipe("fedprox", mu=0.5).proximal_strength == 0.5
    dp = recipe("dp_fedavg")
    assert dp.is_dp and not dp.weighted
    # another server optimizer drops the recipe's arguments for the old one
    assert recipe("fedadam", server_optimizer="sgd").optimizer_kwargs("server") == {}
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("fedsgd")


@pytest.mark.tff
def test_optimizer_arguments_are_those_of_tffs_builders():
    from tff_ser.runtime import get_tff
    opt = get_tff().learning.optimizers
    builders = {"adam": opt.build_adam, "sgd": opt.build_sgdm, "sgdm": opt.build_sgdm,
                "yogi": opt.build_yogi, "adagrad": opt.build_adagrad,
                "rmsprop": opt.build_rmsprop}
    for name, kwargs in OPTIMIZER_KWARGS.items():
        params = set(inspect.signature(builders[name]).parameters) - {"learning_rate"}
        assert set(kwargs) <= params, name
        if name != "sgd":
            assert set(kwargs) == params, f"{name}: not every TFF argument is reachable"


#: What engine="auto" picks without being told: the batched engine for FedAvg with SGD,
#: the tf engine for every other named optimizer, algorithm and aggregator.
AUTO_ENGINE = {"fedavg": "batched"}


@pytest.mark.tff
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_recipe_trains_on_tff_and_is_deterministic(name):
    task = synthetic_task()
    config = case_config(name)
    assert choose_engine(task, config, "auto") == AUTO_ENGINE.get(name, "tf")
    a = train_federated(task, config, progress=False, engine="tff")
    b = train_federated(task, config, progress=False, engine="tff")
    losses = [h["train_loss"] for h in a.history]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    # both evaluations: centralized on the pooled held-out clips and TFF's federated one
    assert a.final_metrics["federated_eval"]["accuracy"] == pytest.approx(
        a.final_metrics["validation"]["accuracy"], abs=1e-6)
    if name in RANDOMISED:
        assert a.history[0]["train_loss"] == b.history[0]["train_loss"]  # same start
    else:
        assert losses == [h["train_loss"] for h in b.history]
        assert a.final_metrics["validation"] == b.final_metrics["validation"]
        assert all(np.array_equal(x, y) for x, y in zip(a.weights[0], b.weights[0]))
    if name not in ("dp_fedavg", "dp_fedavg_adaptive_no_noise"):
        assert losses[-1] < losses[0], f"{name} did not lower the training loss"


@pytest.mark.tff
def test_tffs_dp_noise_is_fresh_in_every_run_and_reported_with_epsilon():
    task = synthetic_task()
    config = case_config("dp_fedavg")
    a = train_federated(task, config, progress=False, engine="tff")
    b = train_federated(task, config, progress=False, engine="tff")
    assert not all(np.array_equal(x, y) for x, y in zip(a.weights[0], b.weights[0]))
    eps = [h["epsilon"] for h in a.history]
    assert eps == sorted(eps) and eps[0] > 0
    p = a.final_metrics["privacy"]
    assert p["epsilon"] == pytest.approx(eps[-1]) and p["delta"] == config.dp_delta
    assert p["clients_per_round"] == 6 and p["clipping"] == "fixed 1.0"


def test_invalid_combinations_fail_before_training_saying_what_to_change(tmp_path):
    task = synthetic_task()
    with pytest.raises(ValueError, match="weighted=False"):
        FederatedConfig(aggregator="dp", noise_multiplier=1.0)
    with pytest.raises(ValueError, match="aggregator='dp'"):
        FederatedConfig(noise_multiplier=1.0)
    with pytest.raises(ValueError, match="algorithm='fedprox'"):
        FederatedConfig(proximal_strength=0.1)
    with pytest.raises(ValueError, match="client_optimizer_kwargs.*momentum"):
        FederatedConfig(client_optimizer="adam", client_optimizer_kwargs={"momentum": 0.9})
    with pytest.raises(ValueError, match="aggregator must be"):
        FederatedConfig(aggregator="secure")
    # DP noise calibrated for more clients than CD samples
    bad = recipe("dp_fedavg", dp_clip=1.0, client_fraction=0.5, dp_clients_per_round=6)
    with pytest.raises(ValueError, match="samples 3 of 6.*dp_clients_per_round=None"):
        train_federated(task, bad, progress=False, checkpoint_dir=str(tmp_path / "ck"))
    assert not (tmp_path / "ck").exists(), "something ran before the check"
    # adaptive clipping with too few clients for its clip-estimate noise
    with pytest.raises(ValueError, match="more than 10 clients per round.*dp_clip"):
        check_config_for_task(recipe("dp_fedavg"), 6)
    # a fast engine asked for a recipe it does not implement
    with pytest.raises(EngineUnsupported, match="yogi.*engine='auto'"):
        choose_engine(task, recipe("fedyogi"), "batched")
    with pytest.raises(EngineUnsupported, match="fedprox"):
        choose_engine(task, recipe("fedprox"), "batched")
    with pytest.raises(EngineUnsupported, match="aggregator='robust'"):
        choose_engine(task, recipe("paper001", aggregator="robust"), "batched")


@pytest.mark.tff
def test_a_tff_factory_of_the_wrong_weighting_is_refused_before_training():
    task = synthetic_task()
    from tff_ser.runtime import get_tff
    factory = get_tff().aggregators.UnweightedMeanFactory()
    with pytest.raises(ValueError, match="WeightedAggregationFactory.*weighted=False"):
        train_federated(task, FederatedConfig(rounds=1, aggregator=factory), progress=False)


def test_without_tff_what_only_tff_computes_is_a_clear_error(monkeypatch):
    """On the current stack (or with TFF hidden), TFF's process is refused naming the stack."""
    from tff_ser import stack
    monkeypatch.setattr(stack, "has_tff", lambda: False)
    task = synthetic_task()
    with pytest.raises(stack.TffNotInstalled, match="reference stack.*Python 3.11"):
        choose_engine(task, recipe("fedavg"), "tff")
    class OwnFactory:  # a user's own tff.aggregators factory: only TFF's process runs it
        def create(self, *args):
            raise AssertionError("never built")

    with pytest.raises(stack.TffNotInstalled, match="OwnFactory.*make setup"):
        choose_engine(task, recipe("fedavg", aggregator=OwnFactory()), "auto")
    with pytest.raises(stack.TffNotInstalled, match="TFF's process"):
        from tff_ser.runtime import get_tff
        get_tff()
    # what the fast engines compute still chooses one
    assert choose_engine(task, recipe("fedyogi")) == "tf"
    assert choose_engine(task, recipe("dp_fedavg", dp_clip=1.0)) == "tf"


@pytest.mark.tff
def test_any_tff_aggregator_factory_and_optimizer_object_can_be_passed():
    from tff_ser.runtime import get_tff
    tff = get_tff()
    task = synthetic_task()
    factory = tff.aggregators.MeanFactory()
    server = tff.learning.optimizers.build_sgdm(learning_rate=1.0, momentum=0.5)
    config = FederatedConfig(rounds=2, client_optimizer="sgd", client_lr=0.05,
                             server_optimizer=server, server_lr=1.0, aggregator=factory)
    assert choose_engine(task, config) == "tff"
    r = train_federated(task, config, progress=False)
    assert r.config["aggregator"].endswith("MeanFactory")
    assert r.config["server_optimizer"].endswith("_SGD")
    # the same factory through the named default gives the same run
    plain = FederatedConfig(rounds=2, client_optimizer="sgd", client_lr=0.05,
                            server_optimizer="sgdm", server_optimizer_kwargs={"momentum": 0.5},
                            server_lr=1.0)
    p = train_federated(task, plain, progress=False, engine="tff")
    assert [h["train_loss"] for h in p.history] == [h["train_loss"] for h in r.history]


# --------------------------------------------------------------------------
# resume after SIGKILL, every recipe
# --------------------------------------------------------------------------

SCRIPT = r"""
import json, os, signal, sys
sys.path[:0] = [{here!r}, {tests!r}]
from test_algorithms import case_config
from helpers import synthetic_task
from tff_ser.federated import train_federated
mode, out_dir = sys.argv[1], sys.argv[2]
names = sys.argv[3:]
task = synthetic_task()

def kill_at_round_3(round_num, metrics, weights):
    if round_num == 3:
        os.kill(os.getpid(), signal.SIGKILL)   # mid-way: round 3 trained, not saved

for name in names:
    cfg = case_config(name, rounds=6)
    ck = os.path.join(out_dir, mode if mode != "resume" else "killed", name)
    cbs = [kill_at_round_3] if mode == "killed" else []
    r = train_federated(task, cfg, checkpoint_dir=ck, progress=False, engine="tff", callbacks=cbs)
    json.dump({{"losses": [h["train_loss"] for h in r.history],
               "resumed": r.times["resumed_from_round"],
               "final": r.final_metrics["validation"]}},
              open(os.path.join(out_dir, f"{{mode}}-{{name}}.json"), "w"))
"""


def _spawn(*args):
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(here=HERE, tests=os.path.dirname(HERE)), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


#: The two recipes whose checkpointed state has the most parts: an adaptive server
#: optimizer's moments (FedYogi) and DP's unweighted factory with its adaptive
#: clipping-norm state; the slow test runs every case, FedProx and compression
#: included (about 4 min on 2 cores).
SIGKILL_DEFAULT = ("dp_fedavg_adaptive_no_noise", "fedyogi")


@pytest.mark.tff
def test_recipes_resume_after_sigkill_and_end_like_an_uninterrupted_run(tmp_path):
    _sigkill_and_resume(tmp_path, SIGKILL_DEFAULT)


@pytest.mark.slow
@pytest.mark.tff
def test_every_recipe_resumes_after_sigkill_and_ends_like_an_uninterrupted_run(tmp_path):
    _sigkill_and_resume(tmp_path, sorted(CASES))


def _sigkill_and_resume(tmp_path, names):
    straight = _spawn("straight", str(tmp_path), *names)
    # one process per recipe, each killing itself in round 3; two at a time
    for pair in (names[i:i + 2] for i in range(0, len(names), 2)):
        procs = [_spawn("killed", str(tmp_path), n) for n in pair]
        for p in procs:
            p.wait(timeout=600)
            assert p.returncode == -signal.SIGKILL, p.stderr.read().decode()[-2000:]
    assert straight.wait(timeout=900) == 0, straight.stderr.read().decode()[-2000:]
    resumed = _spawn("resume", str(tmp_path), *names)
    assert resumed.wait(timeout=900) == 0, resumed.stderr.read().decode()[-2000:]
    for name in names:
        a = json.loads((tmp_path / f"straight-{name}.json").read_text())
        b = json.loads((tmp_path / f"resume-{name}.json").read_text())
        assert b["resumed"] == 2, f"{name}: did not resume from the last saved round"
        assert len(b["losses"]) == 6
        if name in RANDOMISED:
            assert b["losses"][0] == a["losses"][0]
        else:
            assert b["losses"] == a["losses"], name
            assert b["final"] == a["final"], name


# --------------------------------------------------------------------------
# a user's algorithm: one registration (tff_ser.algorithms)
# --------------------------------------------------------------------------

def build_fedsgd(model_fn, *, client_optimizer_fn, server_optimizer_fn, model_aggregator,
                 weighted, config, clients_send="gradients"):
    """FedSGD (McMahan et al. 2017's baseline), as the algorithms module's docstring shows it."""
    from tff_ser.runtime import get_tff
    assert clients_send == "gradients"  # an algorithm_kwargs value reaches the builder
    return get_tff().learning.algorithms.build_fed_sgd(
        model_fn, server_optimizer_fn=server_optimizer_fn, model_aggregator=model_aggregator)


@pytest.fixture
def fedsgd_registered():
    from tff_ser import algorithms, register_algorithm
    register_algorithm("fedsgd_test", build_fedsgd, description="FedSGD")
    yield "fedsgd_test"
    algorithms.ALGORITHMS.pop("fedsgd_test")


def test_a_registered_algorithm_is_a_config_choice_and_only_tffs_process_runs_it(
        fedsgd_registered, monkeypatch):
    from tff_ser import register_algorithm, stack
    from tff_ser.cli import build_parser
    config = FederatedConfig(algorithm=fedsgd_registered, server_optimizer="sgd",
                             algorithm_kwargs={"clients_send": "gradients"})
    assert config.to_dict()["algorithm_kwargs"] == {"clients_send": "gradients"}
    args = build_parser().parse_args(["train", "--algorithm", fedsgd_registered])
    assert args.algorithm == fedsgd_registered
    with pytest.raises(ValueError, match="registered already"):
        register_algorithm(fedsgd_registered, build_fedsgd)
    with pytest.raises(ValueError, match="algorithm must be one of.*fedavg.*fedprox"):
        FederatedConfig(algorithm="fedsgd_unknown")
    with pytest.raises(ValueError, match="FedProx's mu"):
        FederatedConfig(algorithm=fedsgd_registered, proximal_strength=0.1)
    task = synthetic_task()
    for engine in ("batched", "tf"):
        with pytest.raises(EngineUnsupported, match="fedsgd_test"):
            choose_engine(task, config, engine)
    with pytest.raises(EngineUnsupported, match="algorithm_kwargs"):
        choose_engine(task, FederatedConfig(algorithm_kwargs={"x": 1}), "tf")
    monkeypatch.setattr(stack, "has_tff", lambda: False)
    with pytest.raises(stack.TffNotInstalled):
        choose_engine(task, config, "auto")


@pytest.mark.tff
def test_a_registered_algorithm_trains_on_tff_deterministically_and_resumes(fedsgd_registered,
                                                                          tmp_path):
    task = synthetic_task()
    config = FederatedConfig(rounds=4, batch_size=8, algorithm=fedsgd_registered,
                             server_optimizer="sgd", server_lr=0.5, seed=3,
                             algorithm_kwargs={"clients_send": "gradients"})
    assert choose_engine(task, config, "auto") == "tff"
    a = train_federated(task, config, progress=False)
    b = train_federated(task, config, progress=False)
    assert a.config["engine"] == "tff" and a.config["algorithm"] == fedsgd_registered
    losses = [h["train_loss"] for h in a.history]
    assert losses == [h["train_loss"] for h in b.history] and losses[-1] < losses[0]
    # not FedAvg under another name: one server step on the mean gradient
    fedavg = train_federated(task, FederatedConfig(rounds=4, batch_size=8, seed=3,
                                                   server_optimizer="sgd", server_lr=0.5),
                             progress=False, engine="tff")
    assert losses != [h["train_loss"] for h in fedavg.history]
    # resumed from round 2, it ends where the uninterrupted run ends
    ckpt = str(tmp_path / "ck")
    train_federated(task, dataclasses.replace(config, rounds=2), checkpoint_dir=ckpt,
                    progress=False)
    resumed = train_federated(task, config, checkpoint_dir=ckpt, progress=False)
    assert resumed.times["resumed_from_round"] == 2
    assert all(np.array_equal(x, y) for x, y in zip(resumed.weights[0], a.weights[0]))
