"""Shared fixtures for tests/unit and tests/integration; and the guard that no TFF worker outlives the session.

This directory is on the import path of every test (pytest's rootdir conftest), so the shared
helpers are ``from helpers import synthetic_task, train_with_round_weights, notebook_outputs``
(``tests/helpers.py``).
"""
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # tests/helpers.py for both halves

import psutil
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: On the current stack (no TFF) tests marked ``tff`` -- and every case of a test
#: parametrized with ``engine="tff"`` -- are skipped with this reason; the reference
#: stack runs them all (docs/install.md).
NO_TFF_REASON = ("needs TensorFlow Federated: runs on the reference stack "
                 "(make test STACK=reference)")


def pytest_sessionstart(session):
    # librosa's numba cache, compiled here first and alone: processes the tests start
    # (feature workers, CLI runs, notebook kernels) then only read it.  Two processes
    # compiling it at once on a fresh environment can leave a mixed pair of cache files
    # that segfaults whoever loads it later (numba#10128; stop 32's and a later CI run
    # died so in tests/unit/test_generate.py's first librosa.yin).
    from tff_ser.features.pipeline import warm_librosa_cache
    warm_librosa_cache()


def pytest_collection_modifyitems(config, items):
    from tff_ser.stack import has_tff
    if has_tff():
        return
    no_tff = pytest.mark.skip(reason=NO_TFF_REASON)
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.get_closest_marker("tff") or params.get("engine") == "tff":
            item.add_marker(no_tff)


def _tff_workers():
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "ppid", "create_time"]):
        cmd = p.info.get("cmdline") or []
        if cmd and cmd[0].endswith("worker_binary") and "tensorflow_federated" in cmd[0]:
            found.append(p)
    return found


def _ours_or_orphaned(proc) -> bool:
    """A worker this test run is answerable for: one under this process, or an
    orphan (re-parented to init) -- what a leak looks like.  Workers of other
    programs running on the same machine are left out."""
    me = os.getpid()
    try:
        if proc.ppid() in (0, 1):
            return True
        return any(parent.pid == me for parent in proc.parents())
    except psutil.NoSuchProcess:
        return False


def _autograph_files(directory):
    import glob
    return set(glob.glob(os.path.join(directory, "__autograph_generated_file*")))


@pytest.fixture(scope="session", autouse=True)
def no_temp_litter(tmp_path_factory):
    """The suite leaves no autograph files (nor private temp folders) in the temp directory.

    Like ``tff-ser`` itself (:mod:`tff_ser.tempdir`), the suite and every process it
    starts write temp files into a folder of this session, removed at exit; killed
    ``tff-ser`` runs leave theirs for the next process to sweep.
    """
    import tempfile
    from tff_ser import tempdir
    tmp_path_factory.getbasetemp()  # pytest's own folders stay in the system temp dir
    system = tempfile.gettempdir()
    before = _autograph_files(system)
    private = tempdir.use_private_tempdir()
    old_env = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = private  # subprocesses too
    yield
    if old_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = old_env
    tempdir.sweep_orphans(private)
    tempdir.sweep_orphans(system)
    new = _autograph_files(system) - before
    if new:
        # the suite's own processes write into the private folder; a file in the system
        # folder may be another program's, live now and removed at its exit: give it a moment
        import time
        time.sleep(3)
        new = _autograph_files(system) - before
    if new:
        pytest.fail(f"{len(new)} __autograph_generated_file*.py left in {system} by the "
                    f"tests, e.g. {sorted(new)[:3]}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def no_tff_worker_left_behind():
    """Fail the run if any TFF worker_binary started during it is still alive.

    Orphaned workers keep CI's pipes open and hang it (docs/guide/engines.md);
    tff_ser.runtime must stop every worker it starts.
    """
    import time
    started = time.time()
    before = {p.pid for p in _tff_workers()}
    yield
    import sys
    if "tff_ser.runtime" in sys.modules:
        # What the atexit hook does at interpreter exit.
        sys.modules["tff_ser.runtime"].shutdown()
    time.sleep(0.5)  # let workers of just-finished subprocesses see their parent go
    left = [p for p in _tff_workers() if p.pid not in before
            and p.info["create_time"] >= started - 1 and _ours_or_orphaned(p)]
    if left:
        for p in left:
            p.kill()
        pytest.fail(f"{len(left)} TFF worker_binary process(es) left running after the tests: "
                    f"{[p.pid for p in left]}; something started a TFF context without "
                    "tff_ser.runtime", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dirs(tmp_path_factory):
    """Tests never write into the repository's data/: corpora and caches go to tmp."""
    root = tmp_path_factory.mktemp("tff_ser_data")
    saved = {k: os.environ.get(k) for k in ("TFF_SER_DATA", "TFF_SER_CACHE")}
    os.environ["TFF_SER_DATA"] = str(root / "data")
    os.environ["TFF_SER_CACHE"] = str(root / "cache")
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def small_corpus_dir(isolated_data_dirs):
    """The generated corpus at test size, made once per session where
    ``resolve_corpus(size="small")`` looks for it."""
    from tff_ser.corpus import default_generated_dir
    from tff_ser.corpus.generate import generate_corpus
    out = default_generated_dir("small")
    generate_corpus(out, size="small", seed=0, overwrite=False, progress=False)
    return out


@pytest.fixture(scope="session")
def python3_kernel(tmp_path_factory):
    """A ``python3`` kernelspec for this interpreter, first on JUPYTER_PATH."""
    try:
        import IPython  # noqa: F401  (the kernel imports it; fail here with the reason)
    except ImportError as exc:
        pytest.fail(f"IPython cannot be imported in this environment ({exc}); the kernel "
                    "could not start. With typing_extensions 4.5 (TFF's pin) IPython must be "
                    "8.22.x or older: pin ipython==8.22.2 in requirements/lock.txt",
                    pytrace=False)
    data_dir = tmp_path_factory.mktemp("jupyter_data")
    spec_dir = data_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tff_ser tests)", "language": "python"}))
    with pytest.MonkeyPatch.context() as mp:
        # JUPYTER_PATH is searched before the user's and the venv's kernel folders.
        mp.setenv("JUPYTER_PATH", str(data_dir))
        from jupyter_client.kernelspec import KernelSpecManager
        assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
        yield "python3"
