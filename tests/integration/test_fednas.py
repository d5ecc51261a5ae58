"""FedNAS (paper 003's DARTS search, federated): the tf engine's search against DARTS written out.

* a FedNAS round is, on every client, first-order DARTS -- an Adam step of theta on a
  validation batch, then an SGD-momentum step of the weights (L2 decay, clipped) on a
  training batch -- and the server's plain average of weights *and* theta: checked against
  the same steps written with Keras optimizers;
* a search splits each training speaker's clips in two and never touches held-out speakers;
* a SIGKILLed search resumes to the same architecture;
* engines without an architecture step refuse, and ``auto`` takes the tf engine.
"""
import os
import signal
import subprocess
import sys
import zlib

import numpy as np
import pytest

from tff_ser import darts, nas
from tff_ser.engines.base import EngineUnsupported, choose_engine
from tff_ser.engines.fednas import SearchTask
from tff_ser.engines.search_spec import SearchSpec
from tff_ser.fedconfig import FederatedConfig, round_clip_rows
from tff_ser.federated import train_federated
from tff_ser.models import KerasModel
from tff_ser.task import Task

SEARCH = KerasModel(darts.darts_search_network, name="tiny_search",
                    hyperparameters=dict(cells=3, nodes=1, channels=2))
CONFIG = FederatedConfig(rounds=1, local_epochs=1, batch_size=4, client_optimizer="sgdm",
                         client_lr=0.05, server_optimizer="sgd", server_lr=1.0,
                         client_fraction=1.0, seed=0, eval_every=0)


def spectrogram_task(model=SEARCH, n_clients=3, per_client=12, held_out=8, seed=0):
    rng = np.random.default_rng(seed)
    n = n_clients * per_client + held_out
    y = rng.integers(0, 4, n).astype(np.int32)
    t = np.arange(12)
    x = rng.normal(size=(n, 12, 12)) + 2.0 * np.sin(2 * np.pi * t / (2 + y[:, None]))[:, :, None]
    clients = {f"spk{i}": np.arange(i * per_client, (i + 1) * per_client)
               for i in range(n_clients)}
    return Task(model, x.astype(np.float32), y, clients,
                {"held": np.arange(n - held_out, n)}, info={"corpus": "synthetic stripes"})


def darts_by_hand(task: SearchTask, config, cid, rows):
    """One client's round of first-order DARTS, written with Keras' own optimizers."""
    import keras
    import tensorflow as tf
    spec = task.search
    model = task.model_def.build(task.input_shape, task.num_classes, seed=config.seed)
    theta = darts.architecture_variables(model)
    ids = {id(v) for v in theta}
    weights = [v for v in model.trainable_variables if id(v) not in ids]
    arch_opt = keras.optimizers.Adam(spec.arch_lr, beta_1=spec.arch_beta_1,
                                     beta_2=spec.arch_beta_2, epsilon=1e-8)
    w_opt = keras.optimizers.SGD(config.client_lr, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    # the validation batches, as documented in tff_ser.engines.fednas
    val = np.random.default_rng([config.seed, 1, zlib.crc32(cid.encode()), 0xDA]).permutation(
        np.asarray(task.search_val[cid]))
    bs = config.batch_size
    val = [val] if len(val) < bs else [val[i:i + bs] for i in range(0, len(val) // bs * bs, bs)]
    for k, start in enumerate(range(0, len(rows), bs)):
        v = val[k % len(val)]
        with tf.GradientTape() as tape:
            loss = loss_fn(task.y[v], model(task.x[v], training=True))
        grads = tape.gradient(loss, theta)
        arch_opt.apply_gradients([(g + spec.arch_weight_decay * a, a)
                                  for g, a in zip(grads, theta)])
        b = rows[start:start + bs]
        with tf.GradientTape() as tape:
            loss = loss_fn(task.y[b], model(task.x[b], training=True))
        grads = [g + spec.weight_decay * w for g, w in zip(tape.gradient(loss, weights), weights)]
        grads, _ = tf.clip_by_global_norm(grads, spec.grad_clip)
        w_opt.apply_gradients(zip(grads, weights))
    return [v.numpy() for v in model.trainable_variables], len(rows)


def test_a_fednas_round_is_darts_on_every_client_and_the_average_of_weights_and_theta():
    task = nas.search_task(spectrogram_task(), SearchSpec(), seed=0)
    result = train_federated(task, CONFIG, engine="tf", progress=False, federated_eval=False)
    clients = [darts_by_hand(task, CONFIG, cid, np.asarray(rows))
               for cid, rows in round_clip_rows(task.train_clients, CONFIG, 1)]
    total = sum(n for _, n in clients)
    expected = [sum(w[i] * n for w, n in clients) / total for i in range(len(clients[0][0]))]
    theta_moved = 0
    for got, want in zip(result.weights[0], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6)
    initial = darts.architecture_variables(task.model_def.build(task.input_shape, 4, seed=0))
    search = result.final_metrics["search"]
    for name, start in zip(("alpha_normal", "alpha_reduce"), initial):
        theta_moved += np.abs(np.asarray(search[name]) - start.numpy()).max() > 1e-4
    assert theta_moved == 2  # both cell types' theta trained
    assert nas.searched_genotype(result) == darts.derive_genotype(search["alpha_normal"],
                                                                  search["alpha_reduce"], 1)


def test_a_search_splits_every_training_speaker_and_never_sees_a_held_out_one():
    base = spectrogram_task()
    task = nas.search_task(base, SearchSpec(val_fraction=0.5), seed=3)
    for cid, rows in base.train_clients.items():
        w, v = set(task.train_clients[cid]), set(task.search_val[cid])
        assert not w & v and w | v == set(rows) and len(v) == len(rows) // 2
    assert not set(np.concatenate(list(task.search_val.values()))) & set(base.val_indices)
    pooled = nas.pooled_search_task(base, SearchSpec(val_fraction=0.5), seed=3)
    assert set(pooled.train_clients[nas.POOLED_CLIENT]) == set(task.train_indices)
    assert set(pooled.search_val[nas.POOLED_CLIENT]) == \
        set(np.concatenate(list(task.search_val.values())))
    with pytest.raises(ValueError, match="held-out speakers; a search never sees them"):
        SearchTask(model=SEARCH, x=base.x, y=base.y, train_clients={"spk0": np.arange(6)},
                   val_clients=base.val_clients, search=SearchSpec(),
                   search_val={"spk0": base.val_indices[:2]})


def test_the_weights_learning_rate_anneals_on_darts_cosine():
    spec = SearchSpec(lr_min=0.001)
    assert spec.cosine_lr(0.025, 1, 50) == pytest.approx(0.025)
    assert spec.cosine_lr(0.025, 26, 50) == pytest.approx(0.013)
    assert 0.001 < spec.cosine_lr(0.025, 50, 50) < 0.0011
    with pytest.raises(ValueError, match="val_fraction must be in"):
        SearchSpec(val_fraction=1.0)


@pytest.mark.parametrize("engine", ["batched", "tff"])
def test_engines_without_an_architecture_step_refuse_and_auto_takes_the_tf_engine(engine):
    from tff_ser.engines.base import unsupported_reason
    task = nas.search_task(spectrogram_task())
    assert "no architecture step" in unsupported_reason(engine, task, CONFIG)
    if engine == "batched":
        with pytest.raises(EngineUnsupported, match="no architecture step.*tf engine"):
            choose_engine(task, CONFIG, engine)
    assert choose_engine(task, CONFIG, "auto") == "tf"


KILLED = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from test_fednas import CONFIG, TINY, spectrogram_task
import dataclasses
from tff_ser import nas
from tff_ser.federated import train_federated

def die(round_num, row, weights):
    if round_num == 3:  # after round 2's checkpoint
        os.kill(os.getpid(), signal.SIGKILL)

train_federated(nas.search_task(spectrogram_task(TINY)), dataclasses.replace(CONFIG, rounds=4),
                engine="tf", progress=False, federated_eval=False, checkpoint_dir=sys.argv[1],
                callbacks=[die])
"""

TINY = KerasModel(darts.darts_search_network, name="tinier_search",
                  hyperparameters=dict(cells=1, nodes=1, channels=2))


def test_a_sigkilled_search_resumes_to_the_same_architecture(tmp_path):
    import dataclasses
    ckpt = str(tmp_path / "ckpt")
    proc = subprocess.run([sys.executable, "-c", KILLED, ckpt, os.path.dirname(__file__)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    task = nas.search_task(spectrogram_task(TINY))
    config = dataclasses.replace(CONFIG, rounds=4)
    resumed = train_federated(task, config, engine="tf", progress=False, federated_eval=False,
                              checkpoint_dir=ckpt)
    assert resumed.times["resumed_from_round"] == 2
    whole = train_federated(task, config, engine="tf", progress=False, federated_eval=False)
    assert resumed.final_metrics["search"] == whole.final_metrics["search"]
    for a, b in zip(resumed.weights[0], whole.weights[0]):
        np.testing.assert_array_equal(a, b)
