"""tff_ser owns its TFF context: the C++ worker never outlives Python."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

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
