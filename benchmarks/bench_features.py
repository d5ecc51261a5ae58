"""Cold vs warm cost of the features stage on synthetic clips.

Writes ``--clips`` synthetic 16 kHz clips in CREMA-D layout (voiced
harmonic tones with a wandering pitch, plus noise) to a scratch directory
outside the repository, then times :func:`tff_ser.features.extract` for each
kind twice into a fresh cache: cold (decode + compute + write the cache) and
warm (read it back). The stage's promise is warm < 5 % of cold.

    .venv/bin/python benchmarks/bench_features.py --clips 500 --kind paper001 --kind clip_stats
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import soundfile

from tff_ser.corpus.records import EMOTIONS_4, Clip
from tff_ser.features import extract

SR = 16000


def synthetic_clip(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A voiced-sounding clip: 5 harmonics of a gliding f0 under an envelope, plus noise."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t) ** 2
    signal = 0.2 * voiced * envelope + 0.01 * rng.normal(size=n)
    return (signal / np.abs(signal).max() * 0.7).astype(np.float32)


def write_corpus(directory: str, n_clips: int, seconds: float, seed: int = 0) -> list:
    audio = os.path.join(directory, "AudioWAV")
    os.makedirs(audio, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n_clips):
        speaker = str(1001 + i % 91)
        emotion = EMOTIONS_4[i % 4]
        path = os.path.join(audio, f"{speaker}_S{i:04d}_{emotion}_XX.wav")
        if not os.path.exists(path):
            soundfile.write(path, synthetic_clip(rng, seconds), SR, subtype="PCM_16")
        clips.append(Clip(path=path, speaker=speaker, emotion=emotion, sentence=f"S{i:04d}",
                          corpus="generated"))
    return clips


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--kind", action="append", default=None,
                        help="feature kind to time (repeatable; default paper001 and clip_stats)")
    parser.add_argument("--jobs", type=int, default=None, help="workers (default: all cores)")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(),
                                                      "tff_ser_bench_features"),
                        help="scratch directory for the clips and cache (kept for reuse)")
    args = parser.parse_args(argv)

    clips = write_corpus(args.dir, args.clips, args.seconds)
    print(f"{len(clips)} clips of {args.seconds} s in {args.dir}; n_jobs={args.jobs or 'all'}")
    print(f"{'kind':<12} {'shape':<14} {'cold s':>8} {'warm s':>8} {'warm/cold':>10} "
          f"{'cold ms/clip':>13} {'warm ms/clip':>13}")
    for kind in args.kind or ["paper001", "clip_stats"]:
        cache_dir = os.path.join(args.dir, "cache")
        shutil.rmtree(cache_dir, ignore_errors=True)
        t0 = time.perf_counter()
        cold = extract(clips, kind, cache_dir=cache_dir, n_jobs=args.jobs, progress=False)
        t1 = time.perf_counter()
        warm = extract(clips, kind, cache_dir=cache_dir, n_jobs=args.jobs, progress=False)
        t2 = time.perf_counter()
        assert np.array_equal(cold.x, warm.x)
        c, w = t1 - t0, t2 - t1
        print(f"{kind:<12} {str(cold.x.shape[1:]):<14} {c:8.2f} {w:8.3f} {w / c:10.1%} "
              f"{1000 * c / len(clips):13.2f} {1000 * w / len(clips):13.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
