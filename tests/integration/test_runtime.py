"""tff_ser owns its TFF context: the C++ worker never outlives Python."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.tff  # TFF's C++ workers: the reference stack only

PROGRAM = r"""
import sys, time
from tff_ser.runtime import get_tff, live_workers
import tensorflow as tf
tff = get_tff()

@tff.tensorflow.computation(tf.int32)
def add_one(x):
    return x + 1

assert add_one(41) == 42
print("WORKERS", *live_workers(), flush=True)
if sys.argv[1] == "hang":
    time.sleep(600)
"""


def _wait_gone(pids, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def _start(mode):
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("WORKERS"):
            return proc, [int(x) for x in line.split()[1:]]
    proc.wait()
    pytest.fail(f"child exited ({proc.returncode}) before running a TFF computation")


def test_worker_is_stopped_when_python_exits_normally():
    proc, workers = _start("exit")
    assert workers, "the computation ran without a worker: the owned context was not used"
    proc.wait(timeout=120)
    assert _wait_gone(workers) == []


def test_worker_dies_with_a_sigkilled_parent():
    proc, workers = _start("hang")
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _wait_gone(workers) == [], "worker_binary survived its SIGKILLed parent"


def test_worker_does_not_hold_the_parents_pipes():
    # `cmd | tail` must end when cmd ends: the pipe closes once Python exits.
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", PROGRAM, "exit"], capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "WORKERS" in out.stdout
    assert time.monotonic() - t0 < 180


def test_a_worker_killed_mid_round_stops_the_run_with_its_cause_and_the_checkpoint_resumes(
        tmp_path):
    """Issue: TFF's context restarted a worker the OOM killer took and retried the round forever.

    Here the worker is SIGKILLed during round 2 of a 73-client MLP run (paper
    000's per-speaker shape, ~2 s a round on TFF): ``train_federated`` must
    raise WorkerDied within seconds, naming the signal and the worker's log,
    and the checkpoint of round 1 must still resume to the end.
    """
    import json
    import threading
    from helpers import synthetic_task
    from tff_ser import runtime
    from tff_ser.federated import FederatedConfig, train_federated
    task = synthetic_task(n_train_clients=73, n_val_clients=2, per_client=20)
    cfg = FederatedConfig(rounds=3, local_epochs=2, batch_size=4, client_lr=0.001,
                          server_lr=0.001, seed=0)
    ck = tmp_path / "ck"
    killed = {}

    def kill_during_round_2():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if len(json.loads((ck / "history.json").read_text())) >= 1:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        time.sleep(0.3)  # round 2 is under way
        for pid in runtime.live_workers():
            os.kill(pid, signal.SIGKILL)
            killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_during_round_2)
    killer.start()
    with pytest.raises(runtime.WorkerDied) as err:
        train_federated(task, cfg, engine="tff", checkpoint_dir=str(ck), progress=False,
                        federated_eval=False)
    raised = time.monotonic()
    killer.join()
    assert "at" in killed, "no worker was found to kill"
    assert raised - killed["at"] < 30, f"the run noticed the dead worker after {raised - killed['at']:.0f} s"
    message = str(err.value)
    assert "SIGKILL" in message and "worker's last output" in message
    assert "engine='tf'" in message and "GiB resident" in message
    resumed = train_federated(task, cfg, engine="tff", checkpoint_dir=str(ck), progress=False,
                              federated_eval=False)
    assert resumed.times["resumed_from_round"] >= 1
    assert len(resumed.history) == 3


_TFF_THEN_WAIT = """
import sys, time
from tff_ser import runtime
tff = runtime.get_tff()
import tensorflow as tf

@tff.tensorflow.computation(tf.int32)
def add_one(x):
    return x + 1

assert add_one(1) == 2
print("ran", flush=True)
if sys.argv[1] == "wait":
    time.sleep(600)
"""


@pytest.mark.parametrize("ending", ["finished", "killed"])
def test_no_file_is_left_in_the_temp_directory_by_a_finished_or_killed_process(tmp_path,
                                                                                ending):
    import subprocess
    import sys
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-c", _TFF_THEN_WAIT,
                             "wait" if ending == "killed" else "exit"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"ran", proc.stderr.read().decode()[-2000:]
    if ending == "killed":
        proc.kill()
    proc.wait(timeout=60)
    time.sleep(1.0)  # the worker dies with its parent (PR_SET_PDEATHSIG)
    left = sorted(p.name for p in tmp.iterdir())
    assert left == [], f"left in the temp directory: {left}"


RESTARTS = r"""
import gc, threading
from tff_ser import runtime
import tensorflow as tf
tff = runtime.get_tff()

@tff.tensorflow.computation(tf.int32)
def add_one(x):
    return x + 1

def grpc_threads():
    return sum("_poll_connectivity" in t.name for t in threading.enumerate())

counts = []
for i in range(8):
    assert add_one(i) == i + 1  # a stopped worker's executor is replaced, the answer is right
    runtime.shutdown()
    gc.collect()
    counts.append(threading.active_count())
print("THREADS", *counts, "POLLING", grpc_threads(), flush=True)
"""


def test_restarting_the_worker_leaves_no_grpc_thread_or_channel_behind():
    # TFF's stub keeps a connectivity-polling thread per channel for ever; one
    # per restart piled up (40 restarts, 40 threads polling dead ports), and a
    # channel closed under its polling thread is a known gRPC segfault
    # (grpc/grpc#16290).  Stopping a worker closes its channel: the thread
    # count stays flat and no polling thread is left.
    out = subprocess.run([sys.executable, "-c", RESTARTS], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("THREADS"))
    counts = [int(x) for x in line.split()[1:-2]]
    assert max(counts) - min(counts) <= 1, counts
    assert line.split()[-1] == "0", line
