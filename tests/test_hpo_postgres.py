"""The HPO on a real PostgreSQL server: 3 workers, one SIGKILLed mid-trial.

The server is Debian's PostgreSQL (``.ci/run`` installs the package when it is
missing, through ``.ci/install-postgres``); this module starts a private
cluster on a free localhost port, creates a database, and stops and deletes
the cluster at the end.  Without the server binaries the module is skipped
with the reason (the install command).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

import portpicker
import pytest

from tff_ser.hpo.space import QUICK_GRID, point_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture(scope="module")
def postgres_url():
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); "
                    "install them with `bash .ci/install-postgres` (Debian's postgresql "
                    "package; .ci/run does this)")
    pytest.importorskip("psycopg2", reason="psycopg2-binary missing: `make setup` installs it")
    as_pg = []
    root = tempfile.mkdtemp(prefix="tff_ser_pg_")
    if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        as_pg = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, log = os.path.join(root, "data"), os.path.join(root, "server.log")
    port = portpicker.pick_unused_port()

    def run(*cmd):
        out = subprocess.run(as_pg + list(cmd), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"{cmd[0]} failed: {out.stdout[-2000:]}{out.stderr[-2000:]}"

    try:
        run(os.path.join(bindir, "initdb"), "-D", data, "-U", "tff", "--auth=trust",
            "--no-sync")
        run(os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses=localhost -c fsync=off", "start")
        run(os.path.join(bindir, "createdb"), "-h", "localhost", "-p", str(port), "-U", "tff",
            "tffser")
        yield f"postgresql://tff@localhost:{port}/tffser"
    finally:
        subprocess.run(as_pg + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate",
                                "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _complete(study):
    import optuna
    from tff_ser.hpo.study import _trial_point
    return [point_key(_trial_point(t)) for t in
            study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]


def test_three_workers_on_postgresql_one_sigkilled_finish_every_point_once(
        postgres_url, small_corpus_dir, tmp_path):
    import optuna
    from tff_ser.hpo.study import (STUDY_NAMES, WORKER_ATTR, existing_study, grid_table,
                                   load_study, run_grid)
    name = STUDY_NAMES["quick"]
    cmd = [sys.executable, "-m", "tff_ser.cli", "hpo", "run", "--quick", "--storage",
           postgres_url, "--dir", str(tmp_path / "pg"), "--workers", "3", "--no-report",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    killed = None
    deadline = time.time() + 600
    try:
        while killed is None and time.time() < deadline and proc.poll() is None:
            study = existing_study(postgres_url, name)
            running = [] if study is None else [
                t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if WORKER_ATTR in t.user_attrs]
            if running:
                victim = running[0]
                os.kill(victim.user_attrs[WORKER_ATTR]["pid"], 9)
                killed = victim.number
            time.sleep(0.1)
        output, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no running trial was seen to kill"
    assert proc.returncode == 0, output[-3000:]  # the study is complete: exit 0 ...
    assert "killed by signal 9" in output          # ... and the dead worker is reported
    study = load_study(postgres_url, name)
    points = _complete(study)
    assert sorted(points) == sorted(point_key(p) for p in QUICK_GRID.points())  # once each
    assert study.trials[killed].state == optuna.trial.TrialState.FAIL
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == killed]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,
                                        optuna.trial.TrialState.WAITING))

    # The same grid on a journal file, one worker in this process: the same accuracies.
    journal = run_grid(quick=True, directory=str(tmp_path / "journal"), workers=0,
                       progress=False)
    pg_table = grid_table(study).set_index("trial")
    acc = lambda t: {point_key({v: r[v] for v in QUICK_GRID.levels}): r["accuracy"]  # noqa: E731
                     for _, r in t.iterrows()}
    assert acc(pg_table) == pytest.approx(acc(journal.table))
