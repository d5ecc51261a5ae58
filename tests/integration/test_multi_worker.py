"""TFF's process across several C++ workers (TFF 0.87's mergeable-computation context).

The claims users rely on: N local workers, or workers started with
``tff-ser worker --port`` on other hosts (here: localhost), give the weights of
one worker to float32 rounding; a run resumes on another worker count; a dead
worker stops the run with a clear error instead of a hang; no worker outlives
the process that started it.
"""
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import portpicker
import psutil
import pytest

pytestmark = pytest.mark.tff  # TFF's C++ workers: the reference stack only

sys.path.insert(0, os.path.dirname(__file__))
from test_engine_equivalence import PROOF_CONFIG, SGD_CONFIG, _mlp_without_dropout, _task  # noqa: E402
from test_runtime import _wait_gone  # noqa: E402

from tff_ser import models, runtime  # noqa: E402
from tff_ser.federated import train_federated  # noqa: E402

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def task():
    return _task(models.KerasModel(_mlp_without_dropout, name="mlp_without_dropout"))


def _flat(weights):
    import tensorflow as tf
    return [np.asarray(a) for a in tf.nest.flatten(weights)]


def _max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(_flat(a.weights), _flat(b.weights)))


def _run(task, config, **kw):
    return train_federated(task, config, engine="tff", progress=False, federated_eval=False, **kw)


@pytest.fixture(scope="module")
def reference(task):
    return {"adam": _run(task, PROOF_CONFIG), "sgd": _run(task, SGD_CONFIG)}


@pytest.mark.parametrize("name, config", [("adam", PROOF_CONFIG), ("sgd", SGD_CONFIG)])
def test_two_and_three_local_workers_give_one_workers_weights(task, reference, name, config):
    for workers in (2, 3):
        before = set(runtime.live_workers())
        result = _run(task, config, workers=workers)
        assert result.times["tff_workers"] == workers
        assert len(set(runtime.live_workers()) - before) <= workers
        assert _max_diff(reference[name], result) < TOLERANCE, (name, workers)
        assert [h["train_loss"] for h in result.history] == pytest.approx(
            [h["train_loss"] for h in reference[name].history], abs=TOLERANCE)
    # the single worker (the reference) is back as the default context
    assert runtime.current_workers() == ("local", 1)


def test_tff_algorithms_and_aggregators_split_across_workers(task):
    """FedProx, the robust aggregator and DP's clipping (no noise) compile to mergeable form."""
    for cfg in (dataclasses.replace(PROOF_CONFIG, algorithm="fedprox", proximal_strength=0.1),
                dataclasses.replace(PROOF_CONFIG, aggregator="robust", rounds=2),
                dataclasses.replace(PROOF_CONFIG, aggregator="dp", weighted=False,
                                    noise_multiplier=0.0, dp_clip=1.0, client_fraction=1.0,
                                    rounds=2)):
        one, two = _run(task, cfg), _run(task, cfg, workers=2)
        assert _max_diff(one, two) < TOLERANCE, cfg


def test_a_run_cut_on_two_workers_resumes_on_one_to_the_same_weights(task, reference, tmp_path):
    class Crash(RuntimeError):
        pass

    def crash_at_round_3(round_num, metrics, weights):
        if round_num == 3:
            raise Crash()

    ck = str(tmp_path / "ck")
    with pytest.raises(Crash):
        _run(task, PROOF_CONFIG, workers=2, checkpoint_dir=ck, callbacks=[crash_at_round_3])
    resumed = _run(task, PROOF_CONFIG, checkpoint_dir=ck)
    assert resumed.times["resumed_from_round"] == 2
    assert _max_diff(reference["adam"], resumed) < TOLERANCE


def test_a_worker_killed_mid_round_stops_the_run_with_its_cause(tmp_path):
    from helpers import synthetic_task
    from tff_ser.federated import FederatedConfig
    big = synthetic_task(n_train_clients=73, n_val_clients=2, per_client=20)
    cfg = FederatedConfig(rounds=3, local_epochs=2, batch_size=4, client_lr=0.001,
                          server_lr=0.001, seed=0)
    killed = {}

    def kill_one_during_round_2():
        ck = tmp_path / "ck" / "history.json"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not ck.exists():
            time.sleep(0.05)
        time.sleep(0.3)
        victims = runtime.worker_pids(2)  # one of the run's two workers
        os.kill(victims[-1], signal.SIGKILL)
        killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_one_during_round_2)
    killer.start()
    with pytest.raises(runtime.WorkerDied) as err:
        train_federated(big, cfg, engine="tff", workers=2, progress=False, federated_eval=False,
                        checkpoint_dir=str(tmp_path / "ck"))
    raised = time.monotonic()
    killer.join()
    assert "at" in killed
    assert raised - killed["at"] < 60, f"noticed after {raised - killed['at']:.0f} s"
    assert "SIGKILL" in str(err.value)
    # the next run starts fresh workers and resumes from the saved round
    resumed = train_federated(big, cfg, engine="tff", workers=2, progress=False,
                              federated_eval=False, checkpoint_dir=str(tmp_path / "ck"))
    assert resumed.times["resumed_from_round"] >= 1 and len(resumed.history) == 3


def _start_worker(port, log):
    proc = subprocess.Popen([sys.executable, "-m", "tff_ser.cli", "worker", "--port", str(port),
                             "--log", str(log)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert "executor service on port" in proc.stdout.readline()
    return proc


def _children(proc):
    try:
        return [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_workers_started_with_tff_ser_worker_serve_a_run_and_a_dead_one_is_an_error(
        task, reference, tmp_path, monkeypatch):
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    servers = [_start_worker(p, tmp_path / f"w{p}.log") for p in ports]
    try:
        addresses = [f"localhost:{p}" for p in ports]
        result = _run(task, PROOF_CONFIG, workers=",".join(addresses))
        assert result.times["tff_workers"] == 2
        assert _max_diff(reference["adam"], result) < TOLERANCE
        # SIGKILL the `tff-ser worker` command: its worker_binary dies with it ...
        binaries = _children(servers[1])
        assert binaries
        servers[1].kill()
        servers[1].wait(timeout=30)
        assert _wait_gone(binaries) == [], "worker_binary outlived `tff-ser worker`"
        # ... and a run that needs it stops with an error that says what to do.
        monkeypatch.setattr(runtime, "REMOTE_CONNECT_TIMEOUT", 3.0)
        runtime._CONTEXTS.pop(("remote", tuple(addresses)), None)
        t0 = time.monotonic()
        with pytest.raises(runtime.WorkerDied, match=f"tff-ser worker --port {ports[1]}"):
            _run(task, PROOF_CONFIG, workers=addresses)
        assert time.monotonic() - t0 < 120
    finally:
        for s in servers:
            if s.poll() is None:
                s.send_signal(signal.SIGINT)
                try:
                    s.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    s.kill()


def test_worker_arguments_are_checked():
    assert runtime.parse_workers(None) == ("local", 1)
    assert runtime.parse_workers("3") == ("local", 3)
    assert runtime.parse_workers("auto") == ("local", os.cpu_count())
    assert runtime.parse_workers("a:1,b:2") == ("remote", ("a:1", "b:2"))
    for bad in (-1, "nohost", ["a:b"], True):
        with pytest.raises(ValueError):
            runtime.parse_workers(bad)


def test_workers_need_the_tff_engine(task):
    with pytest.raises(ValueError, match="engine='tff'"):
        train_federated(task, PROOF_CONFIG, engine="tf", workers=2, progress=False)
