"""engine="jax" computes the tf engine's FedAvg rounds, clients vmapped on Keras 3's JAX backend.

The tf engine is proven equal to TFF's process on the reference stack
(``test_plain_tf_engine.py``); here the jax engine must equal the tf engine on
the current stack, which ties it to TFF's process.  Keras picks its backend
once per process, so each engine runs in its own subprocess
(``KERAS_BACKEND=tensorflow`` / ``jax``) on the same tasks, and the weights
after 3 rounds must agree to 1e-5: all six preset models and a user's Keras 3
model, dropout off, 4 clients of unequal size (partial last batches),
client_fraction 0.75, client and server Adam; and paper 000's MLP under
another recipe (NLE 2, FedProx, client SGD with momentum, server Yogi,
uniform client weights).  Learning rates are 1e-4, as in the tf-vs-TFF proof
(at 1e-3 Adam turns last-bit differences in near-zero gradients into steps
of ~lr: measured 1.6e-4 on dense, 6.8e-5 on conv1d; every other model within
3e-6).

Also: chunks of clients give the clients' own results; with dropout on the
same seed gives the same run; a SIGKILLed run resumes to the uninterrupted
run's weights; a saved task trains in a process where TensorFlow cannot be
imported.  Skipped on the reference stack (Keras 2 has no JAX backend).
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tff_ser.stack import keras_major

current_stack = pytest.mark.skipif(keras_major() < 3, reason="Keras 2 (the reference stack) has "
                                   "no JAX backend; engine='jax' runs on the current stack")

TOLERANCE = 1e-5
HERE = os.path.dirname(__file__)

WORKER = r"""
import json, os, sys
import numpy as np
out, engine, cases = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
import keras
from tff_ser import models
from tff_ser.engines.base import make_engine
from tff_ser.fedconfig import FederatedConfig
from tff_ser.task import Task

SHAPES = {"dense": ((12, 34), {"dropout_rate": 0.0}), "conv1d": ((14, 34), {"dropout_rate": 0.0}),
          "lstm": ((8, 34), {}), "mlp": ((136,), {"dropout_rate": 0.0}),
          "cnn_logmel": ((24, 40), {}), "lstm_logmel": ((10, 40), {})}
ADAM = FederatedConfig(rounds=3, local_epochs=1, batch_size=4, client_fraction=0.75,
                       client_lr=1e-4, server_lr=1e-4, seed=2)
RECIPE = FederatedConfig(rounds=3, local_epochs=2, batch_size=4, client_fraction=0.75,
                         client_lr=1e-3, server_lr=1e-3, seed=5, algorithm="fedprox",
                         algorithm_kwargs=(), proximal_strength=0.1, client_optimizer="sgdm",
                         server_optimizer="yogi", weighted=False)


def users_model(input_shape, num_classes, seed=None):
    init = models.SeededInitializers(seed)
    inputs = keras.Input(input_shape)
    h = keras.layers.GRU(6, name="gru", kernel_initializer=init.glorot_uniform(),
                         recurrent_initializer=init.orthogonal())(inputs)
    h = keras.layers.LayerNormalization(name="norm")(h)
    outputs = init.dense(num_classes, "softmax", "out")(h)
    return keras.Model(inputs, outputs)


def task_for(case):
    name, _, variant = case.partition(":")
    if name == "users":
        shape, model = (9, 34), models.KerasModel(users_model, name="users_gru")
    else:
        shape, hyper = SHAPES[name]
        if variant == "dropout":
            hyper = {"dropout_rate": 0.3}
        model = models.KerasModel(models.get_spec(name).builder, name=f"{name}_proof",
                                  hyperparameters=hyper)
    rng = np.random.default_rng(0)
    sizes = (9, 14, 6, 11)
    centers = rng.normal(size=(4,) + shape)
    y = rng.integers(0, 4, size=sum(sizes)).astype(np.int32)
    x = (centers[y] + rng.normal(size=(sum(sizes),) + shape)).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    clients = {f"c{i}": np.arange(starts[i], starts[i + 1]) for i in range(len(sizes))}
    return Task(model, x, y, clients, {}, info={"corpus": "synthetic"})


for case in cases:
    name, _, variant = case.partition(":")
    os.environ.pop("TFF_SER_JAX_CHUNK", None)
    if variant == "chunk2":
        os.environ["TFF_SER_JAX_CHUNK"] = "2"
    config = RECIPE if variant == "recipe" else ADAM
    runner = make_engine(engine, task_for(case), config)
    runner.start()
    np.savez(os.path.join(out, case.replace(":", "-") + "-start.npz"), *runner.weights()[0])
    rows = [runner.round(r) for r in range(1, config.rounds + 1)]
    trainable, _ = runner.weights()
    np.savez(os.path.join(out, case.replace(":", "-") + ".npz"), *trainable)
    extra = runner.final_metrics().get("jax", {}) if hasattr(runner, "final_metrics") else {}
    with open(os.path.join(out, case.replace(":", "-") + ".json"), "w") as f:
        json.dump({"rows": rows, "jax": extra}, f)
"""

EQUAL_CASES = ["dense", "conv1d", "lstm", "mlp", "cnn_logmel", "lstm_logmel", "users",
               "mlp:recipe"]
JAX_ONLY = ["dense:chunk2", "dense:dropout", "dense:dropout"]


def _run(backend: str, engine: str, cases, out) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", WORKER, str(out), engine, ",".join(cases)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _weights(folder, case):
    with np.load(os.path.join(folder, case.replace(":", "-") + ".npz")) as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("jax")
    tf_out, jax_out = tmp_path_factory.mktemp("tf"), tmp_path_factory.mktemp("jax")
    _run("tensorflow", "tf", EQUAL_CASES, tf_out)
    _run("jax", "jax", EQUAL_CASES, jax_out)
    # the dropout case twice, into its own folder each time
    again = tmp_path_factory.mktemp("jax_again")
    _run("jax", "jax", ["dense:chunk2", "dense:dropout"], jax_out)
    _run("jax", "jax", ["dense:dropout"], again)
    return tf_out, jax_out, again


@current_stack
@pytest.mark.parametrize("case", EQUAL_CASES)
def test_the_jax_engine_equals_the_tf_engine(runs, case):
    tf_out, jax_out, _ = runs
    tf_w, jax_w = _weights(tf_out, case), _weights(jax_out, case)
    assert len(tf_w) == len(jax_w)
    for a, b in zip(tf_w, jax_w):
        np.testing.assert_allclose(b, a, rtol=0, atol=TOLERANCE)
    rows = {e: json.load(open(os.path.join(out, case.replace(":", "-") + ".json")))["rows"]
            for e, out in (("tf", tf_out), ("jax", jax_out))}
    for a, b in zip(rows["tf"], rows["jax"]):
        assert (a["clients"], a["train_examples"]) == (b["clients"], b["train_examples"])
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["train_accuracy"] == pytest.approx(b["train_accuracy"], abs=1e-9)
    # both started from the same seeded model, and the rounds moved it well past the tolerance
    for a, b in zip(_weights(tf_out, case + ":start"), _weights(jax_out, case + ":start")):
        np.testing.assert_array_equal(a, b)
    moved = max(float(np.abs(a - b).max())
                for a, b in zip(jax_w, _weights(jax_out, case + ":start")))
    assert moved > 20 * TOLERANCE


@current_stack
def test_chunks_of_clients_give_the_clients_own_results(runs):
    _, jax_out, _ = runs
    whole, chunked = _weights(jax_out, "dense"), _weights(jax_out, "dense:chunk2")
    info = json.load(open(os.path.join(jax_out, "dense-chunk2.json")))["jax"]
    assert info["clients_per_chunk"] == 2  # 3 sampled: a full chunk, then one padded
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


@current_stack
def test_with_dropout_the_same_seed_gives_the_same_run(runs):
    _, jax_out, again = runs
    first, second = _weights(jax_out, "dense:dropout"), _weights(again, "dense:dropout")
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    without = _weights(jax_out, "dense")
    assert any(not np.allclose(a, b, atol=1e-4) for a, b in zip(first, without))


def test_the_tensorflow_backend_refuses_the_jax_engine_and_says_how():
    from tff_ser.engines.base import EngineUnsupported, choose_engine
    from tff_ser.fedconfig import FederatedConfig
    from tff_ser.task import Task
    rng = np.random.default_rng(0)
    task = Task("mlp", rng.normal(size=(20, 136)), rng.integers(0, 4, 20),
                {"a": np.arange(10), "b": np.arange(10, 20)}, {})
    with pytest.raises(EngineUnsupported, match="KERAS_BACKEND=jax"):
        choose_engine(task, FederatedConfig(rounds=1), "jax")
    assert choose_engine(task, FederatedConfig(rounds=1), "auto") == "batched"


KILLED = r"""
import os, signal, sys
import numpy as np
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated
from tff_ser.task import Task

task = Task.load(sys.argv[2])
config = FederatedConfig(rounds=4, local_epochs=1, batch_size=4, client_fraction=0.75, seed=3)


def die(round_num, row, weights):
    if round_num == 3:  # after round 2's checkpoint
        os.kill(os.getpid(), signal.SIGKILL)


if sys.argv[1] == "kill":
    train_federated(task, config, engine="jax", progress=False, federated_eval=False,
                    checkpoint_dir=sys.argv[3], callbacks=[die])
resumed = train_federated(task, config, engine="jax", progress=False, federated_eval=False,
                          checkpoint_dir=sys.argv[3])
whole = train_federated(task, config, engine="jax", progress=False, federated_eval=False)
assert resumed.times["resumed_from_round"] == 2, resumed.times
for a, b in zip(resumed.weights[0], whole.weights[0]):
    np.testing.assert_array_equal(a, b)
print("RESUMED-EQUAL")
"""


def _saved_task(path, model="conv1d", shape=(14, 34)):
    from tff_ser.task import Task
    rng = np.random.default_rng(1)
    sizes = (9, 14, 6, 11)
    y = rng.integers(0, 4, size=sum(sizes)).astype(np.int32)
    x = (rng.normal(size=(4,) + shape)[y] + rng.normal(size=(len(y),) + shape)).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    train = {f"c{i}": np.arange(starts[i], starts[i + 1]) for i in range(3)}
    Task(model, x, y, train, {"c3": np.arange(starts[3], starts[4])},
         info={"corpus": "synthetic"}).save(path)
    return str(path)


@current_stack
def test_a_sigkilled_jax_run_resumes_to_the_uninterrupted_weights(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    task, ckpt = _saved_task(tmp_path / "task.npz"), str(tmp_path / "ckpt")
    killed = subprocess.run([sys.executable, "-c", KILLED, "kill", task, ckpt],
                            capture_output=True, text=True, timeout=600, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert os.path.exists(os.path.join(ckpt, "engine_state.npz"))
    resumed = subprocess.run([sys.executable, "-c", KILLED, "resume", task, ckpt],
                             capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0 and "RESUMED-EQUAL" in resumed.stdout, resumed.stderr[-3000:]


WITHOUT_TF = r"""
import importlib.abc, os, sys


class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_federated", "tf_keras"):
            raise ImportError(f"No module named {name!r} (blocked by the test)", name=name)


sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
from tff_ser.engines.base import EngineUnsupported, choose_engine
from tff_ser.fedconfig import FederatedConfig
from tff_ser.federated import train_federated
from tff_ser.task import Task

task = Task.load(sys.argv[1])
config = FederatedConfig(rounds=2, local_epochs=1, batch_size=4, client_fraction=0.75, seed=1)
assert choose_engine(task, config, "auto") == "jax"
for name in ("tf", "batched"):
    try:
        choose_engine(task, config, name)
        raise SystemExit(f"engine {name} did not refuse")
    except EngineUnsupported as exc:
        assert "tensorflow" in str(exc), exc
result = train_federated(task, config, engine="auto", progress=False, federated_eval=False,
                         checkpoint_dir=sys.argv[2])
assert "tensorflow" not in sys.modules, sorted(m for m in sys.modules if m.startswith("tensorf"))
assert len(result.history) == 2 and np.isfinite(result.history[-1]["train_loss"])
print("UAR", result.final_metrics["validation"]["balanced_accuracy"])
"""


@current_stack
def test_a_saved_task_trains_on_jax_where_tensorflow_cannot_be_imported(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    task = _saved_task(tmp_path / "task.npz", model="lstm", shape=(8, 34))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TF, task, str(tmp_path / "ckpt")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0 and "UAR" in proc.stdout, proc.stderr[-3000:]


def test_a_saved_task_loads_back_whole(tmp_path):
    from tff_ser.features.normalize import Standardizer
    from tff_ser.task import Task
    path = _saved_task(tmp_path / "task.npz")
    task = Task.load(path)
    assert task.model == "conv1d" and task.input_shape == (14, 34)
    assert sorted(task.train_clients) == ["c0", "c1", "c2"] and list(task.val_clients) == ["c3"]
    task.normalizer = Standardizer().fit(task.x.reshape(len(task.x), -1)[:, :5])
    task.save(tmp_path / "again.npz")
    back = Task.load(tmp_path / "again.npz", model="dense")
    np.testing.assert_array_equal(back.x, task.x)
    np.testing.assert_array_equal(back.normalizer.mean, task.normalizer.mean)
    assert back.model == "dense" and back.info == {"corpus": "synthetic"}
    (tmp_path / "bad.npz").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError, match="bad.npz is not a task saved by Task.save"):
        Task.load(tmp_path / "bad.npz")


@current_stack
def test_the_gpu_benchmark_runs_at_a_tiny_size_on_cpu(tmp_path):
    pytest.importorskip("jax")
    script = os.path.join(HERE, "..", "..", "benchmarks", "bench_jax_clients.py")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, script, "run", "--tiny", str(tmp_path), "--models",
                           "mlp", "lstm", "--reps", "1"], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(tmp_path / "jax_clients.json"))
    assert report["device"]["platform"] == "cpu"
    assert [r["model"] for r in report["rows"]] == ["mlp", "lstm"]
    mlp = report["rows"][0]
    assert (mlp["clients"], mlp["sampled_per_round"], mlp["clients_per_chunk"]) == (12, 6, 6)
    assert all(r["vmapped_s"] > 0 and r["sequential_s"] > 0 for r in report["rows"])
    assert "| lstm | 12 (12) |" in (tmp_path / "jax_clients.md").read_text()


@current_stack
def test_the_chunk_estimate_counts_a_recurrent_layers_time_steps():
    """A chunk sized on an LSTM's outputs alone held 25 times too many clients and was killed
    for memory on a 24 GiB CPU machine (paper 001's lstm, 73 clients): the estimate counts
    every time step a recurrent layer keeps for its backward pass."""
    from tff_ser.engines.jax_fedavg import _client_bytes
    from tff_ser.models import build_model
    lstm = build_model("lstm")
    per_clip_steps = 100 * (12 * 512 + 34) + 100 * (12 * 512 + 512)
    weights = lstm.count_params()
    assert _client_bytes(lstm, 20, 2) >= 4 * weights * 5 + 4 * 20 * 3 * per_clip_steps
    dense = build_model("dense")  # no recurrent layer: its outputs only
    outputs = sum(int(np.prod(layer.output.shape[1:])) for layer in dense.layers) + 3400
    assert _client_bytes(dense, 20, 2) == 4 * dense.count_params() * 5 + 4 * 20 * outputs * 3
