"""The on-disk feature cache: warm runs compute nothing, changes recompute exactly what changed.

The feature function of the ``paper001`` kind is wrapped in a call counter, so
hits and misses are counted, never timed.
"""
import dataclasses
import glob
import os

import numpy as np
import pytest
import soundfile

from tff_ser.corpus.records import Clip
from tff_ser.features import cache as cache_module
from tff_ser.features import extract, pipeline
from tff_ser.features.cache import FeatureCache, resolve_cache_root
from tff_ser.features.pipeline import FEATURE_KINDS

SR = 16000


def write_wav(path, signal):
    soundfile.write(str(path), signal, SR, subtype="PCM_16")
    return str(path)


def signal_for(i, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t)).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    """Five clips in CREMA-D layout: four tones and one silent clip."""
    audio = tmp_path / "CREMA-D" / "AudioWAV"
    audio.mkdir(parents=True)
    clips = [Clip(path=write_wav(audio / f"100{i}_DFA_NEU_XX.wav", signal_for(i)),
                  speaker=f"100{i}", emotion="NEU", sentence="DFA") for i in range(4)]
    silent = write_wav(audio / "1009_DFA_SAD_XX.wav", np.zeros(SR, np.float32))
    clips.append(Clip(path=silent, speaker="1009", emotion="SAD", sentence="DFA"))
    return clips


@pytest.fixture
def calls(monkeypatch):
    """Signal lengths passed to the paper001 feature function, one per call."""
    seen = []
    spec = FEATURE_KINDS["paper001"]

    def counting(signal, sr, **params):
        seen.append(len(signal))
        return spec.function(signal, sr, **params)

    monkeypatch.setitem(FEATURE_KINDS, "paper001", dataclasses.replace(spec, function=counting))
    return seen


def run(clips, cache_dir, **params):
    return extract(clips, "paper001", cache_dir=cache_dir, n_jobs=1, progress=False, **params)


def test_second_extract_reads_the_cache_without_computing_anything(corpus, calls, tmp_path):
    cold = run(corpus, tmp_path / "cache")
    assert len(calls) == 4  # the silent clip is skipped before any feature is computed
    warm = run(corpus, tmp_path / "cache")
    assert len(calls) == 4
    np.testing.assert_array_equal(warm.x, cold.x)
    assert warm.clips == cold.clips
    assert warm.skipped == cold.skipped and warm.skipped[0][1].startswith("silent")


def test_warm_extract_reads_one_pack_instead_of_per_clip_entries(corpus, calls, tmp_path,
                                                                 monkeypatch):
    cold = run(corpus, tmp_path / "cache")

    def no_entry_reads(self, key):
        raise AssertionError("warm run read a per-clip entry")

    monkeypatch.setattr(FeatureCache, "get", no_entry_reads)
    np.testing.assert_array_equal(run(corpus, tmp_path / "cache").x, cold.x)


def test_changing_one_file_recomputes_only_that_clip(corpus, calls, tmp_path):
    cold = run(corpus, tmp_path / "cache")
    changed = corpus[2].path
    write_wav(changed, signal_for(7, seconds=1.5))  # new size ...
    stat = os.stat(changed)
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # ... and mtime
    warm = run(corpus, tmp_path / "cache")
    assert calls == [SR] * 4 + [int(1.5 * SR)]
    np.testing.assert_array_equal(np.delete(warm.x, 2, axis=0), np.delete(cold.x, 2, axis=0))
    assert not np.array_equal(warm.x[2], cold.x[2])


def test_touching_a_file_without_changing_it_still_invalidates_its_entry(corpus, calls, tmp_path):
    run(corpus, tmp_path / "cache")
    stat = os.stat(corpus[0].path)
    os.utime(corpus[0].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    run(corpus, tmp_path / "cache")
    assert len(calls) == 5


def test_changing_a_parameter_recomputes_every_clip_and_keeps_the_old_entries(corpus, calls,
                                                                              tmp_path):
    run(corpus, tmp_path / "cache")
    shorter = run(corpus, tmp_path / "cache", n_frames=50)
    assert len(calls) == 8 and shorter.x.shape == (4, 50, 34)
    run(corpus, tmp_path / "cache")  # the default parameters are still cached
    assert len(calls) == 8


def test_changing_the_sample_rate_or_code_version_recomputes(corpus, calls, tmp_path,
                                                             monkeypatch):
    run(corpus, tmp_path / "cache")
    extract(corpus, "paper001", sr=8000, cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert len(calls) == 8
    monkeypatch.setattr(pipeline, "FEATURE_CODE_VERSION", pipeline.FEATURE_CODE_VERSION + 1)
    run(corpus, tmp_path / "cache")
    assert len(calls) == 12


def test_an_interrupted_extraction_resumes_where_it_stopped(corpus, monkeypatch, tmp_path):
    spec = FEATURE_KINDS["paper001"]
    done = []

    def dies_on_third_clip(signal, sr, **params):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(1)
        return spec.function(signal, sr, **params)

    monkeypatch.setitem(FEATURE_KINDS, "paper001",
                        dataclasses.replace(spec, function=dies_on_third_clip))
    with pytest.raises(KeyboardInterrupt):
        run(corpus, tmp_path / "cache")
    monkeypatch.setitem(FEATURE_KINDS, "paper001", spec)
    resumed = []

    def counting(signal, sr, **params):
        resumed.append(1)
        return spec.function(signal, sr, **params)

    monkeypatch.setitem(FEATURE_KINDS, "paper001", dataclasses.replace(spec, function=counting))
    assert len(run(corpus, tmp_path / "cache")) == 4
    assert len(resumed) == 2


def _flip_middle_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))


def test_corrupt_pack_and_entries_are_recomputed_not_trusted(corpus, calls, tmp_path):
    cold = run(corpus, tmp_path / "cache")
    packs = glob.glob(str(tmp_path / "cache" / "paper001" / "*" / "packs" / "*.npz"))
    entries = sorted(glob.glob(str(tmp_path / "cache" / "paper001" / "*" / "entries" / "*" /
                                   "*.npz")))
    assert len(packs) == 1 and len(entries) == 5  # the silent clip's outcome is cached too
    _flip_middle_byte(packs[0])
    ok_entries = [e for e in entries if os.path.getsize(e) > 13600]  # 100 x 34 float32
    _flip_middle_byte(ok_entries[0])
    with open(ok_entries[1], "r+b") as f:  # and one truncated, as by a full disk
        f.truncate(100)
    warm = run(corpus, tmp_path / "cache")
    assert len(calls) == 4 + 2
    np.testing.assert_array_equal(warm.x, cold.x)
    run(corpus, tmp_path / "cache")  # repaired: a fresh pack serves the next run
    assert len(calls) == 6


def test_use_cache_false_computes_everything_and_writes_nothing(corpus, calls, tmp_path):
    for _ in range(2):
        extract(corpus, "paper001", use_cache=False, cache_dir=tmp_path / "cache", n_jobs=1,
                progress=False)
    assert len(calls) == 8
    assert not (tmp_path / "cache").exists()


def test_default_cache_sits_next_to_the_corpus_audiowav(corpus, monkeypatch, tmp_path):
    monkeypatch.delenv("TFF_SER_CACHE", raising=False)
    root = resolve_cache_root([c.path for c in corpus])
    assert root == str(tmp_path / "CREMA-D" / ".tff_ser_cache")


def test_tff_ser_cache_environment_variable_overrides_the_default(corpus, monkeypatch, tmp_path):
    monkeypatch.setenv("TFF_SER_CACHE", str(tmp_path / "elsewhere"))
    assert resolve_cache_root([c.path for c in corpus]) == str(tmp_path / "elsewhere")


def test_unwritable_corpus_falls_back_to_the_user_cache(corpus, monkeypatch, tmp_path):
    monkeypatch.delenv("TFF_SER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    corpus_cache = str(tmp_path / "CREMA-D" / ".tff_ser_cache")
    real = cache_module._writable_directory
    monkeypatch.setattr(cache_module, "_writable_directory",
                        lambda path: path != corpus_cache and real(path))
    assert resolve_cache_root([c.path for c in corpus]) == str(tmp_path / "home-cache" /
                                                                "tff_ser")


def test_an_explicit_unwritable_cache_dir_is_an_error_with_the_way_out(corpus, tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    with pytest.raises(ValueError, match="use_cache=False"):
        extract(corpus, "paper001", cache_dir=not_a_directory, progress=False)


WORKER_USE = r"""
import numpy as np, librosa
from tff_ser.features.pipeline import extract_clip  # noqa: F401  (what a feature worker imports)
y = np.random.default_rng(0).normal(size=16000).astype(np.float32)
librosa.feature.melspectrogram(y=y, sr=16000)
librosa.yin(y, fmin=60, fmax=500, sr=16000, frame_length=1024)
"""


def test_after_the_parents_warm_up_a_worker_only_reads_librosas_numba_cache(tmp_path):
    # numba#10128: two processes compiling librosa's gufuncs at once on a cold cache can
    # leave a mixed pair of cache files that segfaults a later reader. warm_librosa_cache()
    # (run before every worker pool) writes the whole cache; a worker then writes nothing.
    import subprocess
    import sys
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    subprocess.run([sys.executable, "-c", "from tff_ser.features.pipeline import "
                    "warm_librosa_cache; warm_librosa_cache()"], env=env, check=True,
                   timeout=300)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "numba").rglob("*.nb*")}
    assert len([p for p in before if p.suffix == ".nbi"]) >= 10
    subprocess.run([sys.executable, "-c", WORKER_USE], env=env, check=True, timeout=300)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "numba").rglob("*.nb*")}
    assert after == before
