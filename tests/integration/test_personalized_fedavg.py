"""FedPer, FedRep and Ditto (issue 26, part 2): FedAvg in which each client keeps its own head or model.

* clients whose labels disagree (each client names the classes differently) are
  served by their own models and not by the global one;
* FedPer and FedRep never send or average a head: the server's head stays the initial one;
* FedRep's head pass leaves the body where the server put it, and its body pass the head;
* FedBN keeps every client's batch-norm scale, offset and moving statistics, never averaged;
* Ditto's global model is plain FedAvg's, to the bit; a huge lambda pins every
  personal model to it;
* the same seed repeats; a SIGKILLed run resumes with every client's own model;
* engines without per-client state refuse, saying which engine can.
"""
import dataclasses
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tff_ser.engines.base import EngineUnsupported
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated
from tff_ser.personalization import personal_table, personalized_task
from tff_ser.task import Task

CONFIG = FederatedConfig(rounds=8, local_epochs=2, batch_size=8, client_lr=1e-2,
                         server_lr=1e-2, seed=0, eval_every=0)


def disagreeing_task(n_clients=4, per_client=40, seed=0):
    """Clients whose clips share the class clusters but each relabel them (a client's own
    permutation of the 4 classes): no single model can be right for all of them."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(4, 16))
    xs, ys, clients, start = [], [], {}, 0
    for i in range(n_clients):
        true = rng.integers(0, 4, size=per_client)
        xs.append(centers[true] + rng.normal(size=(per_client, 16)))
        ys.append(np.roll(np.arange(4), i)[true])  # client i's names for the classes
        clients[f"c{i}"] = np.arange(start, start + per_client)
        start += per_client
    return Task("mlp", np.concatenate(xs).astype(np.float32), np.concatenate(ys), clients, {},
                info={"corpus": "synthetic, per-client label names"})


def head_of(weights):
    trainable, _ = weights
    return trainable[-2:]  # the softmax layer's kernel and bias


@pytest.mark.parametrize("method", ["fedper", "fedrep", "ditto"])
def test_each_clients_own_model_beats_the_global_one_when_clients_disagree(method):
    ptask = personalized_task(disagreeing_task(), method, seed=1, ditto_lambda=0.01)
    result = train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False)
    table = personal_table(result)
    assert list(table["client"]) == sorted(ptask.personal_test) and table["sampled"].all()
    assert table["n_scored"].tolist() == [len(ptask.personal_test[c]) for c in table["client"]]
    # the global model can serve at most one client's naming; each client's own serves it
    assert table["personal_accuracy"].mean() > 0.8
    assert table["personal_accuracy"].mean() > table["global_accuracy"].mean() + 0.3
    assert result.final_metrics["personalized"]["spec"]["method"] == method


@pytest.mark.parametrize("method", ["fedper", "fedrep"])
def test_heads_stay_on_the_clients_and_the_servers_head_is_the_initial_one(method):
    from tff_ser.engines.personal import PersonalizedFedAvg
    from tff_ser.fedconfig import initial_model_weights
    ptask = personalized_task(disagreeing_task(), method, seed=1)
    result = train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False)
    initial = initial_model_weights("mlp", ptask.input_shape, ptask.num_classes, CONFIG.seed)
    for got, want in zip(head_of(result.weights), head_of(initial)):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(result.weights[0][:-2], initial[0][:-2]))
    assert PersonalizedFedAvg  # the engine class is public for users who drive rounds


def test_dittos_global_model_is_plain_fedavg_and_a_huge_lambda_pins_personal_models_to_it():
    task = disagreeing_task()
    plain_task = personalized_task(task, "ditto", seed=1)
    fedavg = train_federated(Task(**{f: getattr(plain_task, f) for f in
                                     ("model", "x", "y", "train_clients", "val_clients")}),
                             CONFIG, engine="tf", progress=False, federated_eval=False)
    ditto = train_federated(plain_task, CONFIG, engine="tf", progress=False,
                            federated_eval=False)
    for a, b in zip(fedavg.weights[0], ditto.weights[0]):
        np.testing.assert_array_equal(a, b)
    # Ditto's personal solver is SGD (Li et al. 2021); with Adam a step is ~lr whatever
    # lambda, so pinning is measured with the client SGD: lambda * lr = 0.5 halves the
    # distance to the global model every step
    sgd = dataclasses.replace(CONFIG, client_optimizer="sgd", client_lr=0.01)
    pinned, free = (personal_table(train_federated(
        personalized_task(task, "ditto", seed=1, ditto_lambda=lam), sgd, engine="tf",
        progress=False, federated_eval=False)) for lam in (50.0, 0.0))
    # measured: 0.037 pinned vs 0.345 free (the pinned models track the round-start global
    # model, one server step behind the final one)
    assert pinned["distance_to_global"].max() < 0.2 * free["distance_to_global"].min()
    assert free["personal_accuracy"].mean() > pinned["personal_accuracy"].mean() + 0.2


def test_fedreps_head_pass_freezes_the_body_and_its_body_pass_freezes_the_head():
    from tff_ser.engines.plain_tf import PlainTFEngine
    ptask = personalized_task(disagreeing_task(), "fedrep", seed=1)
    wrapper = PlainTFEngine(ptask, CONFIG)
    wrapper.start()
    engine = wrapper.engine
    engine.warm_up()
    mask = engine._personal_mask
    server = [v.numpy() for v in engine.server_trainable]
    rows = np.asarray(ptask.train_clients["c0"][:16], np.int32)
    engine._run_client("c0", rows, np.float32(1e-2), np.array([0, 0], np.int64))
    after = [v.numpy() for v in engine.train_variables]
    own_head = engine.personal["c0"]
    # the body pass moved the body and left the head the head pass had trained
    assert any(not np.array_equal(a, s) for a, s, p in zip(after, server, mask) if not p)
    for got, want in zip([a for a, p in zip(after, mask) if p], own_head):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(h, s) for h, s in
               zip(own_head, [s for s, p in zip(server, mask) if p]))
    # the head pass alone: the body is the server's, to the bit
    engine._train_only(head=True)
    engine._head_fn(rows.reshape(2, 8), rows[:0], np.float32(1e-2))
    for var, s, p in zip(engine.train_variables, server, mask):
        if not p:
            np.testing.assert_array_equal(var.numpy(), s)


def bn_model():
    import keras
    from tff_ser.models import KerasModel

    def build(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(16),
                                 keras.layers.BatchNormalization(),
                                 keras.layers.Activation("relu"),
                                 keras.layers.Dense(num_classes, activation="softmax")])
    return KerasModel(build, name="dense_bn")


def shifted_task():
    """Clients whose features share the class clusters under a client-specific offset and
    scale (FedBN's non-IID features)."""
    task = disagreeing_task()
    rng = np.random.default_rng(5)
    x, y = task.x.copy(), task.y.copy()
    centers = rng.normal(scale=2.0, size=(4, 16))
    for i, rows in enumerate(task.train_clients.values()):
        y[rows] = rng.integers(0, 4, size=len(rows))
        x[rows] = (centers[y[rows]] + rng.normal(size=(len(rows), 16))) * (1 + i) + 3.0 * i
    return dataclasses.replace(task, model=bn_model(), x=x.astype(np.float32), y=y)


def test_fedbn_keeps_each_clients_batch_norm_and_averages_the_rest():
    from tff_ser.fedconfig import initial_model_weights
    ptask = personalized_task(shifted_task(), "fedbn", seed=1)
    result = train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False)
    table = personal_table(result)
    assert table["sampled"].all() and table["personal_accuracy"].notna().all()
    # Dense kernel, bias | BN gamma, beta | Dense kernel, bias; BN moving mean, variance
    trainable, non_trainable = result.weights
    initial = initial_model_weights(ptask.model, ptask.input_shape, ptask.num_classes,
                                    CONFIG.seed)
    # the server's batch norm is never sent to: scale 1, offset 0, statistics 0 and 1
    np.testing.assert_array_equal(trainable[2], np.ones(16))
    np.testing.assert_array_equal(trainable[3], np.zeros(16))
    np.testing.assert_array_equal(non_trainable[0], np.zeros(16))
    np.testing.assert_array_equal(non_trainable[1], np.ones(16))
    # the rest is averaged and trained
    assert not np.array_equal(trainable[0], initial[0][0])
    assert not np.array_equal(trainable[4], initial[0][4])
    # each client's own statistics: its own features' (offsets 0, 3, 6, 9), not the server's
    means = _client_bn_means(ptask)
    assert len(means) == len(ptask.train_clients)
    assert all(not np.allclose(a, b) for a, b in zip(means, means[1:]))
    assert all(not np.allclose(m, 0.0) for m in means)
    again = train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False)
    assert personal_table(again).equals(table)  # the same seed repeats


def _client_bn_means(ptask):
    """Each client's own batch-norm moving mean after a short FedBN run."""
    from tff_ser.engines.plain_tf import PlainTFEngine
    wrapper = PlainTFEngine(ptask, CONFIG)
    wrapper.start()
    for round_num in range(1, 3):
        wrapper.round(round_num)
    engine = wrapper.engine
    return [engine.personal_weights(cid)[1][0] for cid in sorted(ptask.train_clients)
            if cid in engine.personal]


def test_fedbn_refuses_a_model_without_batch_normalization():
    ptask = personalized_task(disagreeing_task(), "fedbn", seed=1)
    with pytest.raises(ValueError, match="has none"):
        train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False)


def test_the_same_seed_repeats_every_clients_numbers():
    ptask = personalized_task(disagreeing_task(), "fedper", seed=1)
    runs = [personal_table(train_federated(ptask, CONFIG, engine="tf", progress=False,
                                           federated_eval=False)) for _ in range(2)]
    assert runs[0].equals(runs[1])


KILLED = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from test_personalized_fedavg import CONFIG, disagreeing_task, shifted_task
from tff_ser.federated import train_federated
from tff_ser.personalization import personalized_task

def die(round_num, row, weights):
    if round_num == 5:  # after round 4's checkpoint
        os.kill(os.getpid(), signal.SIGKILL)

task = shifted_task() if sys.argv[3] == "fedbn" else disagreeing_task()
train_federated(personalized_task(task, sys.argv[3], seed=1), CONFIG, engine="tf",
                progress=False, federated_eval=False, checkpoint_dir=sys.argv[1], callbacks=[die])
"""


@pytest.mark.parametrize("method", ["fedper", "fedrep", "fedbn", "ditto"])
def test_a_sigkilled_run_resumes_with_every_clients_own_model(method, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    here = os.path.dirname(__file__)
    proc = subprocess.run([sys.executable, "-c", KILLED, ckpt, here, method],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [n for n in os.listdir(ckpt) if n.startswith("personal_state_")] \
        == ["personal_state_4.npz"]
    task = shifted_task() if method == "fedbn" else disagreeing_task()
    ptask = personalized_task(task, method, seed=1)
    resumed = train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False,
                              checkpoint_dir=ckpt)
    assert resumed.times["resumed_from_round"] == 4
    whole = train_federated(ptask, CONFIG, engine="tf", progress=False, federated_eval=False)
    assert personal_table(resumed).equals(personal_table(whole))
    for a, b in zip(resumed.weights[0], whole.weights[0]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("engine", ["batched", "auto"])
def test_engines_without_per_client_state_refuse_and_auto_takes_the_tf_engine(engine):
    ptask = personalized_task(disagreeing_task(), "fedper", seed=1)
    config = FederatedConfig(rounds=1, batch_size=8, seed=0, eval_every=0)
    if engine == "auto":
        result = train_federated(ptask, config, engine="auto", progress=False,
                                 federated_eval=False)
        assert result.config["engine"] == "tf"
    else:
        with pytest.raises(EngineUnsupported, match="keeps no per-client state.*tf engine"):
            train_federated(ptask, config, engine=engine, progress=False)


def test_a_bad_personalization_is_refused_with_what_to_change():
    with pytest.raises(ValueError, match="method must be one of"):
        personalized_task(disagreeing_task(), "fedprox")
    ptask = personalized_task(disagreeing_task(), "fedper", seed=1, personal_layers=5)
    with pytest.raises(ValueError, match="leaves no shared layer"):
        train_federated(ptask, CONFIG, engine="tf", progress=False)
