"""The TFF execution context tff_ser owns, and the worker it must stop.

TFF 0.87's default context starts a C++ ``worker_binary`` child on first use
and never stops it: the child outlives Python (normal exit or SIGKILL) and
keeps any inherited stdout/stderr pipe open, so ``cmd | tail`` or a CI step
reading the pipe hangs (../shared/TFF-NOTES.md).  tff_ser therefore installs
its own local C++ context, built from the same TFF pieces, whose worker

* is started with ``PR_SET_PDEATHSIG = SIGKILL``, so the kernel kills it when
  the Python process dies for any reason, SIGKILL included;
* writes to a log file instead of inheriting the parent's pipes;
* is stopped by :func:`shutdown`, which runs at interpreter exit.

Everything that runs a TFF computation in tff_ser calls :func:`get_tff`
first; users who ``import tensorflow_federated`` themselves and run
computations through tff_ser get the same context.
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from typing import List, Optional

_LOG = logging.getLogger(__name__)

_LOCK = threading.Lock()
_WORKERS: List[subprocess.Popen] = []
_INSTALLED = False
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the atexit hook still stops the worker
        pass


def worker_log_path() -> str:
    """Where the C++ worker's own output goes (it never shares our pipes)."""
    return os.path.join(tempfile.gettempdir(), f"tff_ser_worker_{os.getpid()}.log")


def _owned_cpp_executor_factory(default_num_clients: int = 0,
                                max_concurrent_computation_calls: int = -1):
    """``local_cpp_executor_factory`` of TFF 0.87 with a worker we can stop."""
    import grpc
    import portpicker
    from tensorflow_federated.python.core.impl.executor_stacks import (
        executor_factory as tff_executor_factory, python_executor_stacks)
    from tensorflow_federated.python.core.impl.executors import (
        remote_executor, remote_executor_grpc_stub)
    from tensorflow_federated.python.core.impl.types import placements

    binary_path = os.path.join(
        os.path.dirname(tff_executor_factory.__file__),
        "..", "..", "..", "..", "data", "worker_binary")
    if not os.path.isfile(binary_path):
        raise RuntimeError(
            f"TFF's worker_binary is missing at {binary_path}: reinstall with "
            "`make setup` (tensorflow-federated==0.87.0 wheel).")
    channel_options = [
        ("grpc.max_message_length", 2_000_000_000),
        ("grpc.max_receive_message_length", 2_000_000_000),
        ("grpc.max_send_message_length", 2_000_000_000),
    ]

    state = {"stub": None, "process": None}

    def start_stub():
        port = portpicker.pick_unused_port()
        log = open(worker_log_path(), "ab")
        process = subprocess.Popen(
            [binary_path, f"--port={port}",
             f"--max_concurrent_computation_calls={max_concurrent_computation_calls}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent, close_fds=True)
        log.close()
        with _LOCK:
            _WORKERS.append(process)
        channel = grpc.insecure_channel(f"localhost:{port}", channel_options)
        stub = remote_executor_grpc_stub.RemoteExecutorGrpcStub(channel)
        deadline = time.monotonic() + 120
        while not stub.is_ready:
            if process.poll() is not None:
                raise RuntimeError(
                    f"TFF worker_binary exited with code {process.returncode} "
                    f"before serving; its log is {worker_log_path()}")
            if time.monotonic() > deadline:
                raise RuntimeError("TFF worker_binary did not become ready in 120 s")
            time.sleep(0.02)
        state["stub"], state["process"] = stub, process
        return stub

    def get_stub():
        stub = state["stub"]
        if stub is not None and stub.is_ready:
            return stub
        if state["process"] is not None:
            _stop(state["process"])
        return start_stub()

    def stack_fn(cardinalities):
        if cardinalities.get(placements.CLIENTS) is None:
            cardinalities[placements.CLIENTS] = default_num_clients
        # Dispose of each finished value on the worker at once: TFF's default
        # batches 20 disposals, and 20 stale copies of the 26 M-parameter dense
        # model's state (weights + server Adam slots, ~0.3 GB each) grew the
        # worker past 15 GB and into the OOM killer on a 24 GB machine.
        ex = remote_executor.RemoteExecutor(get_stub(), dispose_batch_size=1)
        ex.set_cardinalities(cardinalities)
        return ex

    return python_executor_stacks.ResourceManagingExecutorFactory(
        executor_stack_fn=stack_fn)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    with _LOCK:
        if process in _WORKERS:
            _WORKERS.remove(process)


def shutdown() -> None:
    """Stop every TFF worker this process started (safe to call twice).

    A later TFF computation starts a fresh worker transparently.
    """
    with _LOCK:
        workers = list(_WORKERS)
    for process in workers:
        _stop(process)


def live_workers() -> List[int]:
    """PIDs of this process's TFF workers that are still running."""
    with _LOCK:
        return [p.pid for p in _WORKERS if p.poll() is None]


def get_tff():
    """Import TensorFlow Federated with tff_ser's execution context installed.

    Returns the ``tensorflow_federated`` module.  Idempotent and cheap after the
    first call (the import itself takes ~10 s).
    """
    global _INSTALLED
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow_federated as tff
    if not _INSTALLED:
        from tensorflow_federated.python.core.backends.native import compiler
        from tensorflow_federated.python.core.environments.tensorflow_frontend import (
            tensorflow_computation)
        from tensorflow_federated.python.core.impl.context_stack import context_stack_impl
        from tensorflow_federated.python.core.impl.execution_contexts import (
            sync_execution_context)
        context = sync_execution_context.SyncExecutionContext(
            executor_fn=_owned_cpp_executor_factory(),
            compiler_fn=compiler.desugar_and_transform_to_native,
            transform_args=tensorflow_computation.transform_args,
            transform_result=tensorflow_computation.transform_result,
        )
        context_stack_impl.context_stack.set_default_context(context)
        atexit.register(shutdown)
        _INSTALLED = True
    return tff
