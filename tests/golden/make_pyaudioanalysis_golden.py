"""Write ``pyaudioanalysis_0.3.14.npz``: pyAudioAnalysis' own 34 short-term features of a few clips.

The golden file that ``tests/unit/test_pyaudioanalysis_golden.py`` checks
``tff_ser.features.pyaudioanalysis.short_term_features`` against.  Made with
the real library, not with tff_ser:

    .venv/bin/python tests/golden/make_pyaudioanalysis_golden.py

downloads the pyAudioAnalysis 0.3.14 source distribution (``pip download
--no-deps``; nothing is installed), imports its ``ShortTermFeatures`` module
(numpy, scipy, matplotlib and tqdm only, all in the lock file) and calls
``ShortTermFeatures.feature_extraction(signal, sr, window, step,
deltas=False)`` on: two clips of the small generated corpus (first speaker's
NEU and ANG, read as 16-bit PCM) and a synthetic chirp with noise.  The input
signals are stored beside the features, so the test needs neither the
library nor the corpus.
"""
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

VERSION = "0.3.14"
SR = 16000
WINDOW, STEP = 0.2, 0.025  # paper 001's window; tff_ser's step
OUT = pathlib.Path(__file__).with_name(f"pyaudioanalysis_{VERSION}.npz")


def _library(workdir: pathlib.Path):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "-q", "-d", str(workdir), f"pyAudioAnalysis=={VERSION}"], check=True)
    archive = next(workdir.glob("pyAudioAnalysis-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir)
    sys.path.insert(0, str(workdir / f"pyAudioAnalysis-{VERSION}"))
    from pyAudioAnalysis import ShortTermFeatures
    return ShortTermFeatures


def _signals() -> dict:
    import soundfile
    root = pathlib.Path(__file__).resolve().parents[2] / "data" / "generated-small" / "AudioWAV"
    wavs = sorted(root.glob("*.wav"))
    if not wavs:
        raise SystemExit(f"no clips in {root}: run `tff-ser data generate --size small` first")
    first = wavs[0].name.split("_")[0]
    signals = {}
    for emotion in ("NEU", "ANG"):
        path = next(p for p in wavs if p.name.startswith(first) and f"_{emotion}_" in p.name)
        pcm, sr = soundfile.read(path, dtype="int16")
        assert sr == SR, f"{path} is {sr} Hz"
        signals[path.stem] = pcm.astype(np.float64)
    t = np.arange(int(1.3 * SR)) / SR
    rng = np.random.default_rng(34)
    chirp = 0.4 * np.sin(2 * np.pi * (150 * t + 900 * t ** 2)) + 0.05 * rng.normal(size=t.size)
    signals["chirp_noise"] = np.round(chirp * 32767.0)
    return signals


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stf = _library(pathlib.Path(tmp))
        arrays = {}
        for name, pcm in _signals().items():
            features, names = stf.feature_extraction(pcm, SR, int(WINDOW * SR), int(STEP * SR),
                                                     deltas=False)
            arrays[f"signal/{name}"] = pcm.astype(np.int16)
            arrays[f"features/{name}"] = np.asarray(features, dtype=np.float64).T  # (frames, 34)
        arrays["names"] = np.array(names)
        arrays["params"] = np.array([SR, WINDOW, STEP])
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}: {sorted(k for k in arrays if k.startswith('features/'))}")


if __name__ == "__main__":
    main()
