"""The TFF execution context tff_ser owns, and the worker it must stop.

TFF 0.87's default context starts a C++ ``worker_binary`` child on first use
and never stops it: the child outlives Python (normal exit or SIGKILL) and
keeps any inherited stdout/stderr pipe open, so ``cmd | tail`` or a CI step
reading the pipe hangs (docs/guide/engines.md, "The TFF worker").  tff_ser therefore installs
its own local C++ context, built from the same TFF pieces, whose worker

* is started with ``PR_SET_PDEATHSIG = SIGKILL`` (:func:`dies_with_parent`),
  so the kernel kills it when the Python process dies for any reason, SIGKILL
  included;
* writes to a log file instead of inheriting the parent's pipes;
* is stopped by :func:`shutdown`, which runs at interpreter exit;
* is never replaced behind the caller's back: if it dies (the kernel's OOM
  killer, a signal, a crash), the computation that needed it raises
  :class:`WorkerDied` with the exit status, the memory it had reached and its
  log.  TFF's own context would start a fresh worker and run the
  computation again, forever if the worker is killed for memory each time.

Everything that runs a TFF computation in tff_ser calls :func:`get_tff`
first; users who ``import tensorflow_federated`` themselves and run
computations through tff_ser get the same context.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import List, Optional

_LOG = logging.getLogger(__name__)

_LOCK = threading.Lock()
#: Workers :func:`_stop` ended on purpose (a later computation may start a new one).
_STOPPED: set = set()
_WORKERS: List[subprocess.Popen] = []
#: pid of a worker -> the gRPC stub (and channel) that reaches it, closed when it stops.
_STUBS: dict = {}
_INSTALLED = False


#: Run by ``python -I -c`` in front of a child program: asks the kernel to
#: SIGKILL this process when its parent dies, checks the parent is still the
#: one that started it (else it is gone already: exit), then becomes the program.
_LAUNCHER = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass  # not Linux: the parent's atexit hook still stops the child
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def quiet_logs() -> None:
    """Silence TensorFlow's C++ start-up log and gRPC's info lines, before TensorFlow loads.

    On a CPU machine TensorFlow prints three lines at error level ("Unable to
    register cuDNN / cuFFT / cuBLAS factory") and, on the batched engine,
    "SetPriority unimplemented": none is an error of the run.  Level 3
    silences TF's C++ log (Python exceptions still carry real errors); gRPC
    (TFF's link to its C++ workers) logs "skipping fork() handlers" at info
    level.  A level set already is kept, and ``TFF_SER_VERBOSE=1`` keeps the
    logs.  ``import tff_ser`` changes no environment: the CLI and the
    notebooks' :func:`tff_ser.notebook.setup` call this; a script may too.
    """
    verbose = os.environ.get("TFF_SER_VERBOSE", "") not in ("", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1" if verbose else "3")
    os.environ.setdefault("GRPC_VERBOSITY", "INFO" if verbose else "ERROR")


def dies_with_parent(argv: List[str]) -> List[str]:
    """``argv`` started so that the kernel SIGKILLs it when this process dies.

    Not a ``preexec_fn``: that makes :mod:`subprocess` fork the whole process
    and run Python in the child before ``exec``, which is unsafe with the
    threads TensorFlow and gRPC run (a CI run segfaulted there).  Without it
    the child is started by ``vfork``/``posix_spawn`` and sets
    ``PR_SET_PDEATHSIG`` itself before becoming ``argv``, keeping its pid.
    """
    return [sys.executable, "-I", "-c", _LAUNCHER, str(os.getpid()), *argv]


def _worker_log():
    """A file for the C++ worker's own output (it never shares our pipes).

    An anonymous temporary file: unlinked from the temp directory the moment
    it is made, so nothing is left there however this process ends (even
    SIGKILL); while it lives, :func:`_log_tail` reads it back for error messages.
    """
    return tempfile.TemporaryFile(prefix="tff_ser_worker_", suffix=".log")


def _log_tail(log, limit: int = 2000) -> str:
    """The last ``limit`` characters of the worker's output, or a note that there was none."""
    if log is None:
        return "(no output captured)"
    try:
        log.flush()
        size = os.fstat(log.fileno()).st_size
        log.seek(max(0, size - limit))
        text = log.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return "(its output could not be read back)"
    return text or "(it printed nothing)"


#: CPU features that change which kernels TensorFlow 2.14 runs: with any of them
#: its oneDNN kernels are on by default (``TF_ENABLE_ONEDNN_OPTS`` overrides).
_KERNEL_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")


def machine_info() -> dict:
    """What a run's floating-point results depend on besides its seed.

    The same seed gives the same metrics on the same machine and software
    (``tests/integration/test_training_on_generated_corpus.py``, ``tests/integration/test_federated.py``).  On another
    CPU, TensorFlow sums in another order -- oneDNN kernels on CPUs with
    AVX-512 VNNI / AMX, Eigen's cache-sized blocking elsewhere -- and training
    amplifies the last-bit differences into another draw of the same
    distribution (docs/guide/reproducibility.md).  Every run records this dict in
    ``result.extra["machine"]`` so a reader can tell such draws apart.

    Returns
    -------
    dict
        ``cpu`` (model name), ``cpu_flags`` (those of :data:`_KERNEL_FLAGS`
        present), ``cores``, ``onednn`` (True/False, None if unknown),
        ``tensorflow`` and ``python`` versions, ``threads`` (TensorFlow's
        intra/inter-op pool sizes, 0 = all cores), ``stack`` (the versions
        of Python, TensorFlow, Keras, NumPy and TFF, and the stack's name:
        :func:`tff_ser.stack.stack_info`).
    """
    import platform
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    cpu = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_flags": [f for f in _KERNEL_FLAGS if f in flags],
            "cores": os.cpu_count(), "onednn": None,
            "python": platform.python_version()}
    try:
        import tensorflow as tf
        info["tensorflow"] = tf.__version__
        info["threads"] = [tf.config.threading.get_intra_op_parallelism_threads(),
                           tf.config.threading.get_inter_op_parallelism_threads()]
        from tensorflow.python.util import _pywrap_util_port
        info["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        pass
    from tff_ser.stack import stack_info
    info["stack"] = stack_info()
    return info


def describe_machine(info: dict) -> str:
    """One line for a summary: ``"Intel Xeon ..., 2 cores, oneDNN on, TF 2.14.1"``."""
    onednn = {True: "oneDNN kernels on", False: "oneDNN kernels off",
              None: "oneDNN unknown"}[info.get("onednn")]
    flags = "/".join(info.get("cpu_flags") or []) or "no AVX2"
    stack = info.get("stack") or {}
    keras = f", Keras {stack['keras']}" if stack.get("keras") else ""
    tff = f", TFF {stack['tensorflow_federated']}" if stack.get("tensorflow_federated") else ""
    return (f"{info.get('cpu', '?')} ({flags}), {info.get('cores', '?')} cores, {onednn}, "
            f"TensorFlow {info.get('tensorflow', '?')}{keras}{tff}")


def set_threads(threads: Optional[int]) -> None:
    """Limit TensorFlow's intra- and inter-op thread pools to ``threads`` each.

    TensorFlow fixes its pools when it first runs an operation, so call this
    before any training (``train_federated(..., threads=N)``,
    ``tff-ser train --threads N`` and ``hpo --threads`` do).  ``None`` or 0
    keeps TensorFlow's default (all cores).

    Raises
    ------
    ValueError
        If ``threads`` is negative, or TensorFlow already runs with other
        pool sizes in this process (start a fresh process, or call this first).
    """
    if not threads:
        return
    if int(threads) < 0:
        raise ValueError(f"threads must be >= 1 (or None for TensorFlow's default), got {threads}")
    import tensorflow as tf
    n = int(threads)
    have = (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads())
    if have == (n, n):
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        raise ValueError(
            f"TensorFlow already runs in this process with {have[0]} intra-op / {have[1]} "
            f"inter-op threads (0 = all cores), so threads={n} cannot take effect; set it "
            "before the first training or feature step, or in a fresh process") from None


class WorkerDied(RuntimeError):
    """TFF's C++ worker died while a computation needed it."""


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _watch_memory(process: subprocess.Popen, peak: dict) -> None:
    # The worker's resident memory, sampled while it lives: what it had
    # reached is the first thing to know when the OOM killer took it.
    while process.poll() is None:
        peak["kib"] = max(peak["kib"], _rss_kib(process.pid))
        time.sleep(0.2)


def _death_message(process: subprocess.Popen, peak_kib: int, log=None) -> str:
    code = process.returncode
    if code is not None and code < 0:
        try:
            cause = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            cause = f"killed by signal {-code}"
        if code == -signal.SIGKILL:
            cause += " (on Linux most often the kernel's OOM killer: see `dmesg`)"
    else:
        cause = f"exited with status {code}"
    return (f"TFF's C++ worker_binary (pid {process.pid}) {cause} after reaching "
            f"{peak_kib / 2**20:.2f} GiB resident. "
            "The run was stopped rather than retried on a fresh worker. To go on: resume "
            "from the last checkpoint with fewer clients per round (client_fraction), a "
            "smaller model or batch, or train_federated(engine='tf') (plain TensorFlow, "
            "the same FedAvg rounds, no worker).\nThe worker's last output: "
            + _log_tail(log))


def worker_binary_path() -> str:
    """TFF 0.87's C++ worker (shipped in its wheel)."""
    from tensorflow_federated.python.core.impl.executor_stacks import (
        executor_factory as tff_executor_factory)
    path = os.path.normpath(os.path.join(
        os.path.dirname(tff_executor_factory.__file__),
        "..", "..", "..", "..", "data", "worker_binary"))
    if not os.path.isfile(path):
        raise RuntimeError(
            f"TFF's worker_binary is missing at {path}: reinstall with "
            "`make setup` (tensorflow-federated==0.87.0 wheel).")
    return path


def serve_worker(port: int, *, log: Optional[str] = None) -> int:
    """Run one TFF worker on this host until it is stopped (``tff-ser worker``).

    The worker serves TFF's executor service on ``port`` (all interfaces, no
    TLS: keep it on a trusted network); runs on other hosts reach it with
    ``workers=["thishost:PORT", ...]``.  It dies with this process (SIGKILL
    included); SIGINT/SIGTERM stop it.  Its output goes to ``log`` or to this
    terminal.  Returns its exit status.
    """
    out = open(log, "ab") if log else None
    process = subprocess.Popen(
        dies_with_parent([worker_binary_path(), f"--port={int(port)}"]),
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if out else None,
        close_fds=True)

    def forward(signum, _frame):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        return process.wait()
    finally:
        if out is not None:
            out.close()


_CHANNEL_OPTIONS = [
    ("grpc.max_message_length", 2_000_000_000),
    ("grpc.max_receive_message_length", 2_000_000_000),
    ("grpc.max_send_message_length", 2_000_000_000),
]


def _owned_cpp_executor_factory(default_num_clients: int = 0,
                                max_concurrent_computation_calls: int = -1):
    """``local_cpp_executor_factory`` of TFF 0.87 with a worker we can stop."""
    import grpc
    from tff_ser.worker_stub import worker_stub
    import portpicker
    from tensorflow_federated.python.core.impl.executor_stacks import (
        python_executor_stacks)
    from tensorflow_federated.python.core.impl.executors import remote_executor
    from tensorflow_federated.python.core.impl.types import placements

    binary_path = worker_binary_path()
    channel_options = _CHANNEL_OPTIONS

    state = {"stub": None, "process": None, "peak": {"kib": 0}, "log": None}

    def start_stub():
        port = portpicker.pick_unused_port()
        log = _worker_log()
        process = subprocess.Popen(
            dies_with_parent([
                binary_path, f"--port={port}",
                f"--max_concurrent_computation_calls={max_concurrent_computation_calls}"]),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True)
        if state["log"] is not None:
            state["log"].close()
        state["log"] = log
        with _LOCK:
            _WORKERS.append(process)
        peak = {"kib": 0}
        threading.Thread(target=_watch_memory, args=(process, peak), daemon=True,
                         name=f"tff-worker-{process.pid}-memory").start()
        stub = worker_stub(grpc.insecure_channel(f"localhost:{port}", channel_options))
        deadline = time.monotonic() + 120
        while not stub.wait_ready(0.2):
            if process.poll() is not None:
                stub.close()
                raise RuntimeError(
                    f"TFF worker_binary exited with code {process.returncode} "
                    f"before serving; its output: {_log_tail(log)}")
            if time.monotonic() > deadline:
                stub.close()
                raise RuntimeError("TFF worker_binary did not become ready in 120 s")
        with _LOCK:
            _STUBS[process.pid] = stub
        state["stub"], state["process"], state["peak"] = stub, process, peak
        return stub

    def get_stub():
        process = state["process"]
        if process is not None and process.poll() is not None and process.pid not in _STOPPED:
            # Died under a computation: say so, once; the next computation
            # (e.g. a resumed run) starts a fresh worker.
            state["stub"], state["process"] = None, None
            with _LOCK:
                if process in _WORKERS:
                    _WORKERS.remove(process)
                stub = _STUBS.pop(process.pid, None)
            if stub is not None:
                stub.close()
            raise WorkerDied(_death_message(process, state["peak"]["kib"], state["log"]))
        stub = state["stub"]
        if stub is not None and stub.is_ready:
            return stub
        if process is not None:
            _stop(process)
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

    factory = python_executor_stacks.ResourceManagingExecutorFactory(
        executor_stack_fn=stack_fn)
    _FACTORY_STATE[id(factory)] = state
    return factory


#: id(executor factory) -> the state of its worker (process, stub, log).
_FACTORY_STATE: dict = {}


def _stop(process: subprocess.Popen) -> None:
    _STOPPED.add(process.pid)
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
        stub = _STUBS.pop(process.pid, None)
    if stub is not None:
        stub.close()


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
    first call (the import itself takes ~10 s).  The context is the one
    :func:`set_workers` chose last: by default one local C++ worker.
    """
    global _INSTALLED
    import tff_ser  # noqa: F401  (sets TF's C++ log level before TF is imported)
    from tff_ser.stack import require_tff
    require_tff("TFF's process (engine='tff', TFF optimizer or aggregator objects)")
    import tensorflow_federated as tff
    if not _INSTALLED:
        from tensorflow_federated.python.core.impl.context_stack import context_stack_impl
        context_stack_impl.context_stack.set_default_context(_context_for(_ONE_LOCAL))
        atexit.register(shutdown)
        _INSTALLED = True
    return tff


# --------------------------------------------------------------------------
# several workers: TFF's mergeable-computation context
# --------------------------------------------------------------------------

#: Worker specs: ``("local", n)`` (n worker_binary children of this process)
#: or ``("remote", ("host:port", ...))`` (workers started by `tff-ser worker`).
_ONE_LOCAL = ("local", 1)
_CONTEXTS: dict = {}
_CURRENT = [_ONE_LOCAL]
#: Seconds a remote worker may stay unreachable before the run stops.
REMOTE_CONNECT_TIMEOUT = 60.0


def parse_workers(workers) -> tuple:
    """A worker spec from what a user passes as ``workers``.

    ``None`` or ``1``: one local worker (TFF's single context, the reference);
    an int ``n > 1``: ``n`` local workers; ``"auto"`` or ``0``: one local
    worker per core; ``"host:port,host:port"`` or a list of such addresses:
    workers started on those hosts with ``tff-ser worker --port PORT``.
    """
    if workers is None:
        return _ONE_LOCAL
    if isinstance(workers, tuple) and len(workers) == 2 and workers[0] in ("local", "remote"):
        return workers  # already a spec
    if isinstance(workers, str):
        text = workers.strip()
        if text.lower() == "auto":
            return ("local", max(1, os.cpu_count() or 1))
        if text.isdigit():
            return parse_workers(int(text))
        workers = [w for w in text.split(",") if w.strip()]
    if isinstance(workers, bool):
        raise ValueError(f"workers must be a count or a list of host:port addresses, got {workers!r}")
    if isinstance(workers, int):
        if workers < 0:
            raise ValueError(f"workers must be >= 1 (0 or 'auto': one per core), got {workers}")
        return ("local", workers or max(1, os.cpu_count() or 1))
    addresses = tuple(str(w).strip() for w in workers)
    bad = [a for a in addresses if a.rpartition(":")[0] == "" or not a.rpartition(":")[2].isdigit()]
    if not addresses or bad:
        raise ValueError(
            f"workers addresses must look like host:port (e.g. node2:8000), got {bad or workers!r}; "
            "start a worker on each host with `tff-ser worker --port PORT`")
    return ("remote", addresses)


def describe_workers(spec: tuple) -> str:
    kind, value = spec
    if kind == "local":
        return f"{value} local worker{'s' if value != 1 else ''}"
    return f"{len(value)} remote worker{'s' if len(value) != 1 else ''} ({', '.join(value)})"


def worker_count(spec: tuple) -> int:
    return spec[1] if spec[0] == "local" else len(spec[1])


def _remote_executor_factory(address: str, connect_timeout: float):
    """A worker someone started elsewhere (``tff-ser worker --port``), reached over gRPC."""
    import grpc
    from tff_ser.worker_stub import worker_stub
    from tensorflow_federated.python.core.impl.executor_stacks import python_executor_stacks
    from tensorflow_federated.python.core.impl.executors import remote_executor
    from tensorflow_federated.python.core.impl.types import placements
    # One channel per address for the life of the process (contexts are cached).
    stub = worker_stub(grpc.insecure_channel(address, _CHANNEL_OPTIONS))

    def stack_fn(cardinalities):
        deadline = time.monotonic() + connect_timeout
        while not stub.wait_ready(1.0):
            if time.monotonic() > deadline:
                raise WorkerDied(
                    f"the TFF worker at {address} did not answer for {connect_timeout:.0f} s "
                    "(stopped, or the host or port is unreachable). Start it on that host with "
                    f"`tff-ser worker --port {address.rpartition(':')[2]}` and resume the run "
                    "from its checkpoint (same checkpoint_dir).")
        if cardinalities.get(placements.CLIENTS) is None:
            cardinalities[placements.CLIENTS] = 0
        ex = remote_executor.RemoteExecutor(stub, dispose_batch_size=1)
        ex.set_cardinalities(cardinalities)
        return ex

    return python_executor_stacks.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn)


def _context_for(spec: tuple):
    """The execution context of a worker spec (made once, then reused)."""
    if spec in _CONTEXTS:
        return _CONTEXTS[spec]
    from tensorflow_federated.python.core.backends.native import compiler, mergeable_comp_compiler
    from tensorflow_federated.python.core.environments.tensorflow_frontend import (
        tensorflow_computation)
    from tensorflow_federated.python.core.impl.execution_contexts import (
        async_execution_context, mergeable_comp_execution_context, sync_execution_context)
    transforms = {"transform_args": tensorflow_computation.transform_args,
                  "transform_result": tensorflow_computation.transform_result}
    if spec == _ONE_LOCAL:
        context = sync_execution_context.SyncExecutionContext(
            executor_fn=_owned_cpp_executor_factory(),
            compiler_fn=compiler.desugar_and_transform_to_native, **transforms)
    else:
        kind, value = spec
        factories = ([_owned_cpp_executor_factory() for _ in range(value)] if kind == "local"
                     else [_remote_executor_factory(a, REMOTE_CONNECT_TIMEOUT) for a in value])
        # TFF's own multi-worker machinery: every computation is compiled to
        # MergeableCompForm (the part up to the aggregation, the merge, the part
        # after); the clients of each call are split into one subround per
        # worker, the subrounds run concurrently and their partial aggregates
        # are merged (tff.backends.native.create_mergeable_comp_execution_context).
        asyncs = [async_execution_context.AsyncExecutionContext(
            executor_fn=f, compiler_fn=compiler.desugar_and_transform_to_native, **transforms)
            for f in factories]
        context = mergeable_comp_execution_context.MergeableCompExecutionContext(
            asyncs, compiler_fn=mergeable_comp_compiler.compile_to_mergeable_comp_form,
            **transforms)
    _CONTEXTS[spec] = context
    _CONTEXT_FACTORIES[spec] = factories if spec != _ONE_LOCAL else []
    return context


_CONTEXT_FACTORIES: dict = {}


def worker_pids(workers=None) -> List[int]:
    """PIDs of the running local workers of a worker spec (started on first use)."""
    spec = parse_workers(workers)
    factories = _CONTEXT_FACTORIES.get(spec, [])
    processes = [(_FACTORY_STATE.get(id(f)) or {}).get("process") for f in factories]
    return [p.pid for p in processes if p is not None and p.poll() is None]


def set_workers(workers=None) -> tuple:
    """Run tff_ser's TFF computations on ``workers`` (see :func:`parse_workers`).

    Several workers use TFF 0.87's mergeable-computation execution context:
    each round's clients are split evenly across the workers, which train
    them concurrently; their partial sums are merged and the server step runs
    once.  The weights equal one worker's to float32 rounding (the sum is
    taken in another order; ``tests/integration/test_multi_worker.py``: 1e-5).  Local
    workers are children of this process with the guarantees of the single
    one (they die with it, their logs are anonymous files, a dead one raises
    :class:`WorkerDied`); remote ones are started by ``tff-ser worker``.

    Returns the previous spec, so that a caller can put it back.
    """
    spec = parse_workers(workers)
    get_tff()
    from tensorflow_federated.python.core.impl.context_stack import context_stack_impl
    previous = _CURRENT[0]
    if spec != previous:
        context_stack_impl.context_stack.set_default_context(_context_for(spec))
        _CURRENT[0] = spec
    return previous


def current_workers() -> tuple:
    """The worker spec TFF computations run on now."""
    return _CURRENT[0]
