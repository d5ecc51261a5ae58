"""Nothing lost, nothing silent: the faults an adversarial user hits, each answered.

A full disk under the HPO journal, a read-only or full ``--out``, a rerun into
an earlier run's folder, a SIGKILL mid-fold, a WAV cut to half its bytes, a
corpus without a class, a learning rate that makes every update non-finite,
a killed ``hpo run`` with workers, temp litter, passwords, and the messages
that replace tracebacks.  Runs on both stacks (no TFF needed).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tff_ser import cli

SMALL = ["--model", "mlp", "--size", "small", "--no-progress", "--local-epochs", "1"]


def _ours(stderr: str) -> list:
    """stderr's lines without TensorFlow 2.20's C++ (absl) log lines.

    TF 2.20 logs through absl before any Python code can set its level (an
    "All log messages before absl::InitializeLog()" warning and one
    "Compiled cluster using XLA!" line when the batched engine first runs);
    TF_CPP_MIN_LOG_LEVEL no longer reaches them.  They are not ours to print.
    """
    import re
    chatter = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|"
                         r"[IWE]\d{4} \d\d:\d\d:\d\d)")
    return [line for line in stderr.strip().splitlines() if not chatter.match(line)]


def _cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "tff_ser.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _mount_tmpfs(path, size: str, *options) -> bool:
    """Mount a tmpfs of ``size`` at ``path``; False where mounting is not permitted."""
    os.makedirs(path, exist_ok=True)
    opts = ",".join((f"size={size}",) + options)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0


def _umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def mount(name, size, *options):
        path = tmp_path / name
        if not _mount_tmpfs(path, size, *options):
            pytest.skip("mounting a tmpfs is not permitted here (needs root or CAP_SYS_ADMIN); "
                        "the truncation tests below cover the journal's repair without it")
        mounted.append(path)
        return path
    yield mount
    for path in mounted:
        _umount(path)


# --------------------------------------------------------------------------
# 1. the HPO journal
# --------------------------------------------------------------------------

def _journal_with_trials(path, n=4):
    import optuna
    from tff_ser.hpo.storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)),
                                directions=["maximize"])
    for i in range(n):
        _one_trial(study, float(i))
    return study


def _one_trial(study, x: float) -> None:
    study.enqueue_trial({"x": x})
    study.optimize(lambda t: t.suggest_float("x", 0, 10), n_trials=1)


def _open(path):
    import optuna
    from tff_ser.hpo.storage import open_storage
    return optuna.load_study(study_name="s", storage=open_storage(str(path)))


def _complete_values(path):
    return sorted(t.values[0] for t in _open(path).trials if t.state.name == "COMPLETE")


def test_a_journal_cut_by_100_bytes_is_repaired_and_the_next_record_is_not_glued_on(tmp_path):
    path = tmp_path / "study.journal"
    _journal_with_trials(path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-100])          # the last record torn, as a full disk leaves it
    values = _complete_values(path)         # opening repairs: cut back, bytes kept aside
    assert values == [0.0, 1.0, 2.0]        # the 4th trial's completion was in the cut bytes
    kept = path.read_bytes()
    assert whole.startswith(kept) and kept.endswith(b"\n")
    assert (tmp_path / "study.journal.torn").read_bytes() == whole[len(kept):-100]
    _one_trial(_open(path), 9.0)
    for line in path.read_bytes().splitlines():
        json.loads(line)                    # every line one record: nothing glued
    assert 9.0 in _complete_values(path)


def test_junk_appended_to_a_journal_is_moved_aside_not_a_decode_error(tmp_path):
    path = tmp_path / "study.journal"
    _journal_with_trials(path)
    with open(path, "ab") as f:
        f.write(b"\xff\xfe\x00junk\x81\n\x00\x01")
    assert _complete_values(path) == [0.0, 1.0, 2.0, 3.0]
    assert b"junk" in (tmp_path / "study.journal.torn").read_bytes()


def test_a_broken_middle_line_is_named_with_its_line_number_and_the_repair_command(tmp_path):
    from tff_ser.hpo.journal import JournalCorrupt
    path = tmp_path / "study.journal"
    _journal_with_trials(path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5][:20] + b"\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match=r"line 6 .*tff-ser hpo repair"):
        _complete_values(path)
    rc = cli.main(["hpo", "repair", "--storage", str(path)])
    assert rc == 0
    assert len(path.read_bytes().splitlines()) == 5
    _complete_values(path)  # opens again


def test_a_write_that_fails_leaves_the_journal_whole(tmp_path, monkeypatch):
    """ENOSPC mid-append: the file is cut back to its size before the write."""
    import errno
    from tff_ser.errors import DiskFull
    from tff_ser.hpo.journal import DurableJournalFileBackend, check_journal
    path = str(tmp_path / "study.journal")
    _journal_with_trials(path, n=1)
    backend = DurableJournalFileBackend(path)
    size = os.path.getsize(path)
    real_open = open

    class Half:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fake_open(p, mode="r", *a, **k):
        f = real_open(p, mode, *a, **k)
        return Half(f) if p == path and mode == "ab" else f
    monkeypatch.setattr("builtins.open", fake_open)
    with pytest.raises(DiskFull, match="journal is intact"):
        backend.append_logs([{"op_code": 0, "worker_id": "w", "study_name": "t",
                              "directions": [1]}])
    monkeypatch.undo()
    assert os.path.getsize(path) == size and check_journal(path).sound


def test_the_disk_full_sequence_ends_with_the_study_complete_and_nothing_lost(tmp_path, tmpfs,
                                                                             small_corpus_dir):
    """The issue's sequence on a real 20 KB tmpfs, then the same mount enlarged."""
    j = tmpfs("j", "20k")
    args = ["hpo", "run", "--quick", "--dir", str(tmp_path / "d"), "--storage",
            str(j / "study.journal"), "--no-progress", "--threads", "1"]
    first = _cli(*args)
    assert first.returncode == 1, first.stderr[-2000:]
    from tff_ser.hpo.journal import check_journal
    assert check_journal(str(j / "study.journal")).sound   # never a torn line
    done_before = first.stdout.split("points complete ")[1].split(" ")[0]
    assert int(done_before) >= 1
    subprocess.run(["mount", "-o", "remount,size=4m", str(j)], check=True, timeout=30)
    second = _cli(*args)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "points complete 8 of 8" in second.stdout
    report = _cli("hpo", "report", "--quick", "--dir", str(tmp_path / "d"), "--storage",
                  str(j / "study.journal"), "--samplers", "random", "--sampler-seeds", "1")
    assert report.returncode == 0, report.stderr[-2000:]


# --------------------------------------------------------------------------
# 2. outputs checked before training, written whole, never silently replaced
# --------------------------------------------------------------------------

@pytest.fixture
def no_training(monkeypatch):
    def trained(*a, **k):
        raise AssertionError("training started although the output folder was unusable")
    monkeypatch.setattr("tff_ser.federated.train_federated", trained)


def test_a_read_only_out_fails_before_training(tmp_path, tmpfs, no_training, capsys,
                                               small_corpus_dir):
    ro = tmpfs("ro", "1m", "ro")
    rc = cli.main(["train", *SMALL, "--rounds", "2", "--out", str(ro / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not writable" in err and str(ro) in err and len(err.strip().splitlines()) <= 2


def test_a_file_in_the_way_of_out_fails_before_training(tmp_path, no_training, capsys,
                                                        small_corpus_dir):
    (tmp_path / "run").write_text("not a folder")
    assert cli.main(["train", *SMALL, "--rounds", "2", "--out", str(tmp_path / "run")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_full_out_fails_before_training(tmp_path, tmpfs, no_training, capsys,
                                          small_corpus_dir):
    full = tmpfs("full", "64k")
    (full / "filler").write_bytes(b"0" * 60_000)
    rc = cli.main(["train", *SMALL, "--rounds", "2", "--out", str(full / "run")])
    assert rc == 2 and "full" in capsys.readouterr().err


def test_an_existing_out_is_refused_and_overwrite_clears_stale_folds(tmp_path, capsys,
                                                                     small_corpus_dir):
    out = tmp_path / "cv"
    base = ["train", *SMALL, "--max-speakers", "6", "--rounds", "1", "--out", str(out)]
    assert cli.main([*base, "--folds", "3"]) == 0
    assert (out / "fold_2").is_dir() and (out / "COMPLETE.json").is_file()
    assert cli.main([*base, "--folds", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main([*base, "--folds", "2", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("fold_")) == \
        ["fold_0", "fold_1"]
    from tff_ser.rundir import is_complete
    assert is_complete(out)


def test_disk_full_mid_run_says_what_was_saved_and_how_to_resume(tmp_path, monkeypatch,
                                                                 small_corpus_dir):
    import errno
    from tff_ser import rundir
    from tff_ser.errors import DiskFull
    from tff_ser.task import prepare_task
    from tff_ser.federated import FederatedConfig, train_federated
    task = prepare_task("mlp", size="small", progress=False)
    real = rundir.atomic_write_bytes
    calls = {"n": 0}

    def fill_up(path, data):
        if str(path).endswith("engine_state.npz"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise rundir._disk_full(str(path), OSError(errno.ENOSPC, "full"))
        return real(path, data)
    monkeypatch.setattr(rundir, "atomic_write_bytes", fill_up)
    ckpt = tmp_path / "ckpt"
    cfg = FederatedConfig(rounds=5, local_epochs=1)
    with pytest.raises(DiskFull, match=r"round 3 of 5; rounds 1\.\.2 are saved in"):
        train_federated(task, cfg, checkpoint_dir=str(ckpt), progress=False)
    monkeypatch.undo()
    resumed = train_federated(task, cfg, checkpoint_dir=str(ckpt), progress=False)
    whole = train_federated(task, cfg, progress=False)
    assert resumed.times["resumed_from_round"] == 2
    assert resumed.final_metrics["validation"] == whole.final_metrics["validation"]


def test_result_files_are_written_whole_and_temp_files_of_killed_writers_are_swept(
        tmp_path, small_corpus_dir):
    from tff_ser.task import prepare_task
    from tff_ser.federated import FederatedConfig, train_federated
    task = prepare_task("mlp", size="small", progress=False)
    ckpt = tmp_path / "ckpt"
    cfg = FederatedConfig(rounds=2, local_epochs=1)
    train_federated(task, FederatedConfig(rounds=1, local_epochs=1), progress=False)
    ckpt.mkdir()
    (ckpt / "engine_state.npz.tmp999999").write_bytes(b"half")   # a dead writer's
    (ckpt / "history.json.tmp").write_bytes(b"[")
    train_federated(task, cfg, checkpoint_dir=str(ckpt), progress=False)
    assert not [p for p in ckpt.iterdir() if ".tmp" in p.name]


# --------------------------------------------------------------------------
# 3. folds resume after SIGKILL
# --------------------------------------------------------------------------

def test_folds_resume_after_sigkill_mid_fold_and_end_as_an_uninterrupted_run(
        tmp_path, small_corpus_dir):
    args = ["train", *SMALL, "--max-speakers", "6", "--folds", "3", "--rounds", "40",
            "--threads", "1"]
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tff_ser.cli", *args, "--checkpoint-dir",
                             str(ckpt), "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    fold1 = ckpt / "federated" / "fold_1" / "rounds" / "history.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if fold1.exists():
            try:
                if len(json.loads(fold1.read_text())) >= 5:
                    break
            except ValueError:
                pass
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (ckpt / "federated" / "fold_0" / "result" / "COMPLETE.json").is_file()
    resumed = _cli(*args, "--checkpoint-dir", str(ckpt), "--out", str(out), "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = _cli(*args, "--json")
    def pooled(stdout):
        return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")][-1][
            "pooled"]
    assert pooled(resumed.stdout) == pooled(whole.stdout)
    from tff_ser.rundir import is_complete
    assert is_complete(out)


def test_a_fold_checkpoint_of_other_settings_is_refused(tmp_path, small_corpus_dir, capsys):
    base = ["train", *SMALL, "--max-speakers", "6", "--rounds", "1", "--checkpoint-dir",
            str(tmp_path / "c")]
    assert cli.main([*base, "--folds", "2"]) == 0
    assert cli.main([*base, "--folds", "3"]) == 2
    assert "holds the folds of another cross-validation" in capsys.readouterr().err


# --------------------------------------------------------------------------
# 4. corpus problems in every result
# --------------------------------------------------------------------------

@pytest.fixture
def damaged_corpus(tmp_path, small_corpus_dir):
    src = os.path.join(small_corpus_dir, "AudioWAV")
    dst = tmp_path / "corpus" / "AudioWAV"
    shutil.copytree(src, dst)
    wavs = sorted(dst.glob("*.wav"))
    half = wavs[0]
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    (dst / "not_a_cremad_name.wav").write_bytes(wavs[1].read_bytes())
    return dst, half


def test_a_half_truncated_wav_is_flagged_by_data_check_and_recorded_in_result_json(
        damaged_corpus, tmp_path, capsys):
    corpus, half = damaged_corpus
    assert cli.main(["data", "check", str(corpus)]) == 0
    report = capsys.readouterr().out
    assert half.name in report and "cut short" in report
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "mlp", "--data-dir", str(corpus), "--rounds", "1",
                     "--no-progress", "--max-speakers", "4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 clip(s) skipped, 1 suspicious clip(s) kept" in err
    problems = json.loads((out / "federated" / "result.json").read_text())["extra"][
        "corpus_problems"]
    assert [p["path"] for p in problems["suspicious"]] == [str(half)]
    assert problems["skipped"][0]["path"].endswith("not_a_cremad_name.wav")
    assert cli.main(["train", "--model", "mlp", "--data-dir", str(corpus), "--rounds", "1",
                     "--no-progress", "--max-speakers", "4", "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err


def test_a_missing_class_is_said_in_the_metrics_not_silently_averaged_away():
    from tff_ser.metrics import classification_metrics
    m = classification_metrics([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 1], num_classes=4,
                               class_names=["NEU", "HAP", "SAD", "ANG"])
    assert m["missing_classes"] == ["ANG"]
    assert "missing_classes" not in classification_metrics([0, 1, 2, 3], [0, 1, 2, 3])


def test_corpus_problems_name_a_class_without_clips(small_corpus_dir):
    from tff_ser.corpus import resolve_corpus
    from tff_ser.corpus.problems import corpus_problems, format_problems
    from tff_ser.features.pipeline import extract
    load = resolve_corpus(None, size="small", progress=False)
    clips = [c for c in load.clips if c.emotion != "ANG"][:40]
    fs = extract(clips, "clip_stats", progress=False)
    problems = corpus_problems(load, fs, ("NEU", "HAP", "SAD", "ANG"))
    assert problems["missing_classes"] == ["ANG"]
    assert "no clips of ANG" in format_problems(problems)


def test_a_path_that_is_not_utf8_says_so_instead_of_calling_good_wavs_corrupt(tmp_path,
                                                                              small_corpus_dir):
    from tff_ser.corpus.audio import probe_audio
    src = sorted(os.listdir(os.path.join(small_corpus_dir, "AudioWAV")))[0]
    folder = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9")
    os.makedirs(folder)
    target = os.path.join(folder, os.fsencode(src))
    shutil.copy(os.path.join(small_corpus_dir, "AudioWAV", src), target)
    problem = probe_audio(os.fsdecode(target))
    if sys.getfilesystemencoding().lower() != "utf-8":
        pytest.skip("the file system encoding here is not UTF-8")
    assert problem is not None and problem.kind == "path-encoding"
    assert "not valid utf-8" in problem.message.lower() and "Rename" in problem.message


# --------------------------------------------------------------------------
# 5. no silent numbers
# --------------------------------------------------------------------------

@pytest.mark.parametrize("knobs, says", [
    (["--client-optimizer", "sgd", "--client-lr", "1e20"], "client learning rate"),
    (["--server-lr", "1e30"], "server learning rate"),
])
def test_a_run_that_stops_training_stops_with_the_knob_named(knobs, says, capsys,
                                                             small_corpus_dir):
    base = ["train", *SMALL, "--max-speakers", "4", "--rounds", "4", *knobs]
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert says in err and "--allow-nonfinite" in err
    assert cli.main([*base, "--allow-nonfinite"]) == 0


@pytest.mark.parametrize("option, value", [
    ("--max-speakers", "-1"), ("--max-speakers", "0"), ("--folds", "0"), ("--folds", "1"),
    ("--server-lr", "inf"), ("--client-lr", "nan"), ("--client-lr", "0"), ("--rounds", "0"),
    ("--client-fraction", "-0.5"), ("--dp-clip", "inf"),
])
def test_every_numeric_option_is_range_checked(option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", option, value])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err


def test_the_config_refuses_infinite_learning_rates():
    from tff_ser.fedconfig import FederatedConfig
    with pytest.raises(ValueError, match="finite"):
        FederatedConfig(server_lr=float("inf"))


# --------------------------------------------------------------------------
# 6. no orphans, no litter, no passwords
# --------------------------------------------------------------------------

def _hpo_workers_of(pid):
    import psutil
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "tff_ser.cli hpo worker" in cmd and f"{pid}" in str(_parent_chain(p)):
            found.append(p)
    return found


def _parent_chain(p):
    try:
        return [q.pid for q in p.parents()]
    except Exception:
        return []


def test_no_hpo_worker_survives_a_sigkilled_hpo_run(tmp_path, small_corpus_dir):
    import psutil
    proc = subprocess.Popen([sys.executable, "-m", "tff_ser.cli", "hpo", "run", "--quick",
                             "--dir", str(tmp_path / "d"), "--workers", "2", "--threads", "1",
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers = []
    while time.time() < deadline and len(workers) < 2 and proc.poll() is None:
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "hpo" in " ".join(c.cmdline()) and "worker" in c.cmdline()]
        time.sleep(0.1)
    assert len(workers) == 2, "hpo run did not start its two workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=20)
    for p in alive:
        p.kill()
    assert not alive, f"{len(alive)} hpo worker(s) outlived their SIGKILLed parent"


def test_a_killed_run_leaves_its_temp_folder_for_the_next_process_to_sweep(tmp_path):
    from tff_ser import tempdir
    base = tmp_path / "tmp"
    base.mkdir()
    env = dict(os.environ, TMPDIR=str(base))
    code = ("import os, tempfile, tff_ser.tempdir as t; d = t.use_private_tempdir(); "
            "open(os.path.join(d, '__autograph_generated_file_x.py'), 'w').close(); "
            "print(d, flush=True); os.kill(os.getpid(), 9)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    left = p.stdout.strip()
    assert left.startswith(str(base)) and os.path.isdir(left)
    assert left in tempdir.sweep_orphans(str(base))
    assert not os.path.exists(left)
    clean = subprocess.run([sys.executable, "-c", code.replace("os.kill(os.getpid(), 9)", "")],
                           capture_output=True, text=True, env=env, timeout=120)
    assert not os.path.exists(clean.stdout.strip())   # a clean exit removes its own


def test_passwords_are_masked_in_anything_printed():
    from tff_ser.hpo.storage import mask_url, open_storage
    assert "s3cret" not in mask_url("postgresql://user:s3cret@db.example:5432/hpo")
    assert mask_url("results/hpo_grid/study.journal") == "results/hpo_grid/study.journal"
    with pytest.raises((ValueError, RuntimeError)) as exc:
        open_storage("notadialect://user:s3cret@localhost/x")
    assert "s3cret" not in str(exc.value)


def test_a_bad_storage_url_is_one_line_without_the_password(tmp_path):
    p = _cli("hpo", "report", "--quick", "--dir", str(tmp_path),
             "--storage", "notadialect://user:s3cret@localhost/x", timeout=300)
    assert p.returncode == 2
    assert "s3cret" not in p.stdout + p.stderr
    assert len(_ours(p.stderr)) <= 2, p.stderr


# --------------------------------------------------------------------------
# 7. messages, not tracebacks
# --------------------------------------------------------------------------

def test_user_errors_are_one_or_two_lines_and_debug_shows_the_traceback(tmp_path):
    p = _cli("train", "--data-dir", str(tmp_path / "nowhere"), "--rounds", "1")
    assert p.returncode == 2 and len(_ours(p.stderr)) <= 2, p.stderr
    assert "Traceback" not in p.stderr
    d = _cli("--debug", "train", "--data-dir", str(tmp_path / "nowhere"), "--rounds", "1")
    assert "Traceback" in d.stderr


def test_a_truncated_engine_state_is_named_with_the_choice(tmp_path, small_corpus_dir, capsys):
    base = ["train", *SMALL, "--max-speakers", "4", "--rounds", "1", "--checkpoint-dir",
            str(tmp_path / "c")]
    assert cli.main(base) == 0
    state = tmp_path / "c" / "engine_state.npz"
    state.write_bytes(state.read_bytes()[:50])
    capsys.readouterr()
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert str(state) in err and "Delete the folder" in err and "resume" in err


def test_a_garbled_history_is_named(tmp_path, small_corpus_dir, capsys):
    base = ["train", *SMALL, "--max-speakers", "4", "--rounds", "1", "--checkpoint-dir",
            str(tmp_path / "c")]
    assert cli.main(base) == 0
    (tmp_path / "c" / "history.json").write_text("[{\"round\": 1,")
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert "history.json" in err and "delete the folder" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_ends_with_one_line_saying_where_it_stopped(sig, tmp_path,
                                                                 small_corpus_dir):
    ckpt = tmp_path / "c"
    # SIGINT as a terminal delivers it: a suite started in the background (`cmd &` from a
    # script) ignores SIGINT, its children inherit that, and Python keeps it ignored
    proc = subprocess.Popen([sys.executable, "-m", "tff_ser.cli", "train", *SMALL,
                             "--max-speakers", "4", "--rounds", "100000", "--threads", "1",
                             "--checkpoint-dir", str(ckpt)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not (ckpt / "engine_state.npz").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err[-2000:]
    lines = _ours(err)
    assert len(lines) == 1 and "interrupted in round" in lines[0], err[-2000:]
    assert "are saved in" in lines[0] and "run the same command again to resume" in lines[0]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
def test_a_sigterm_whose_exception_a_finalizer_swallowed_still_stops_the_run(tmp_path):
    # Python raises a signal handler's exception in the next Python code that runs; when
    # that is a finalizer (TensorFlow runs many), it prints "Exception ignored in" and goes
    # on.  A background experiment sent SIGTERM was seen training on that way.  The
    # handler records the request, and the next round raises it.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from helpers import synthetic_task
    from tff_ser import errors
    from tff_ser.fedconfig import FederatedConfig
    from tff_ser.federated import train_federated

    class SignalledDuringFinalizer:
        def __del__(self):
            cli._on_signal(signal.SIGTERM, None)

    def signal_in_round_2(round_num, metrics, weights):
        if round_num == 2:
            SignalledDuringFinalizer()  # dropped at once: its __del__ raises, and is ignored

    config = FederatedConfig(rounds=6, local_epochs=1, batch_size=8, seed=0, eval_every=0)
    try:
        with pytest.raises(errors.TrainingInterrupted, match="in round 3 of 6; rounds 1..2"):
            train_federated(synthetic_task(n_train_clients=3), config, progress=False,
                            callbacks=[signal_in_round_2], checkpoint_dir=str(tmp_path / "c"),
                            checkpoint_every=1, federated_eval=False)
    finally:
        errors.request_stop(None)


_SPAWN_THEN_WAIT = r"""
import subprocess, sys, threading, time
from tff_ser.runtime import dies_with_parent
for _ in range(8):  # a threaded parent, as under TensorFlow and gRPC
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
child = subprocess.Popen(dies_with_parent(["/bin/sleep", "600"]))
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_child_started_by_dies_with_parent_is_the_program_and_dies_with_a_sigkilled_parent():
    import psutil
    parent = subprocess.Popen([sys.executable, "-c", _SPAWN_THEN_WAIT],
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 20
        while psutil.Process(pid).name() != "sleep":  # the launcher execs in place
            assert time.monotonic() < deadline, psutil.Process(pid).cmdline()
            time.sleep(0.05)
        assert psutil.Process(pid).ppid() == parent.pid
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child outlived its SIGKILLed parent"
            time.sleep(0.05)
    finally:
        parent.kill()


def test_ctrl_c_inside_a_c_call_is_an_interrupt_saying_where_it_stopped(tmp_path):
    """SIGINT inside NumPy's __array__ under tf.constant surfaced as a SystemError (CI)."""
    from helpers import synthetic_task
    from tff_ser.errors import TrainingInterrupted, interrupt_in_chain
    from tff_ser.federated import FederatedConfig, train_federated

    def c_call_interrupted(round_num, metrics, weights):
        if round_num == 2:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise SystemError("<built-in method __array__> returned a result with an "
                                  "exception set") from exc

    assert not interrupt_in_chain(SystemError("a real one"))
    with pytest.raises(TrainingInterrupted, match=r"interrupted in round 2.*rounds 1\.\.1 are saved"):
        train_federated(synthetic_task(n_train_clients=3, n_val_clients=1, per_client=12),
                        FederatedConfig(rounds=4, batch_size=8), progress=False,
                        checkpoint_dir=str(tmp_path / "c"), callbacks=[c_call_interrupted])
