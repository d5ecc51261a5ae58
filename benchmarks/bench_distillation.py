"""Paper 002's efficiency half of Table II, measured here: teachers against their students.

For each teacher (paper 001's ``conv1d`` and ``dense``) and its student
(``conv1d_student``, ``dense_student``, :mod:`tff_ser.baselines.paper002`):

* parameters, and size on disk (the Keras weights file);
* inference time per clip at batch 1 and batch 64: the median over ``--reps``
  timed calls of the traced model, the models alternating (ABAB...) in one run
  so the machine's noise falls on all of them alike;
* bytes per client per FL round (down = up: the model's weights, float32);
* the real-time factor of :func:`tff_ser.stream.score_stream` on ``--seconds``
  of continuous audio (2.5 s windows every 1 s): features and model, and the
  model alone.

It prints the student / teacher ratios beside paper 002's (BERT-2 student:
55.1 % of the parameters, 59.8 % of the inference time) and writes
``results/benchmarks/distillation.md`` and ``.json`` (``--out`` elsewhere).
Weights are freshly initialised: time and size do not depend on training.

    .venv/bin/python benchmarks/bench_distillation.py [--reps 20] [--seconds 30] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAIRS = (("conv1d", "conv1d_student"), ("dense", "dense_student"))
#: Paper 002 Table II: BERT_BASE-VGGish teacher vs the BERT-2 student.
PAPER = {"params": 87.03 / 157.91, "ms": 19.60 / 32.80}


def _timer(model, batch: int, reps: int, rng):
    import tensorflow as tf
    x = tf.constant(rng.normal(size=(batch,) + tuple(model.input_shape[1:])).astype(np.float32))
    call = tf.function(lambda v: model(v, training=False))
    call(x)  # trace
    call(x)

    def once():
        t = time.perf_counter()
        np.asarray(call(x))
        return (time.perf_counter() - t) / batch
    return once


def measure(pairs, reps: int, seconds: float) -> dict:
    from tff_ser.communication import round_bytes
    from tff_ser.models import build_model
    from tff_ser.stream import score_stream
    names = [n for pair in pairs for n in pair]
    rng = np.random.default_rng(0)
    models = {n: build_model(n, seed=0) for n in names}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, m in models.items():
            path = os.path.join(tmp, f"{n}.weights.h5")
            m.save_weights(path)
            weights = ([w.numpy() for w in m.trainable_weights],
                       [w.numpy() for w in m.non_trainable_weights])
            rows[n] = {"model": n, "parameters": int(m.count_params()),
                       "size_bytes": os.path.getsize(path),
                       "bytes_per_client_round": round_bytes(weights, 1,
                                                             compressed=False)["bytes_down"]}
    timers = {(n, b): _timer(models[n], b, reps, rng) for n in names for b in (1, 64)}
    samples = {key: [] for key in timers}
    for _ in range(reps):  # ABAB: every model in every repetition
        for key, once in timers.items():
            samples[key].append(once())
    for (n, b), values in samples.items():
        rows[n][f"ms_per_clip_batch{b}"] = 1000 * statistics.median(values)
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    audio = (0.3 * np.sin(2 * np.pi * (180 + 40 * np.sin(t)) * t)
             + 0.02 * rng.normal(size=t.size)).astype(np.float32)
    for n in names:
        scores = score_stream(models[n], audio, sr, feature_kind="paper001", window_s=2.5,
                              hop_s=1.0)
        windows = len(scores.starts)
        rows[n]["stream_windows"] = windows
        rows[n]["rtf"] = scores.real_time_factor
        rows[n]["rtf_model_only"] = (rows[n]["ms_per_clip_batch64"] / 1000 * windows) / seconds
    ratios = []
    for teacher, student in pairs:
        a, b = rows[teacher], rows[student]
        ratios.append({"teacher": teacher, "student": student,
                       "parameters": b["parameters"] / a["parameters"],
                       "size": b["size_bytes"] / a["size_bytes"],
                       "ms_batch1": b["ms_per_clip_batch1"] / a["ms_per_clip_batch1"],
                       "ms_batch64": b["ms_per_clip_batch64"] / a["ms_per_clip_batch64"],
                       "bytes_per_round": b["bytes_per_client_round"]
                       / a["bytes_per_client_round"]})
    return {"rows": list(rows.values()), "ratios": ratios}


def report(data: dict, args) -> str:
    import tensorflow as tf
    import keras
    lines = ["# Paper 002's efficiency table: teachers vs students", "",
             f"`{' '.join(['benchmarks/bench_distillation.py'] + sys.argv[1:])}`; "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"TensorFlow {tf.__version__}, Keras {keras.__version__}; median of {args.reps} "
             f"timed calls per model and batch, models alternating; freshly initialised "
             "weights (time and size do not depend on training).", "",
             "| model | parameters | size on disk (MB) | ms / clip, batch 1 | ms / clip, batch 64 "
             "| MB per client per round (each way) | RTF, features + model | RTF, model only |",
             "|---|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        lines.append(f"| `{r['model']}` | {r['parameters']:,} | {r['size_bytes'] / 1e6:.2f} | "
                     f"{r['ms_per_clip_batch1']:.3f} | {r['ms_per_clip_batch64']:.4f} | "
                     f"{r['bytes_per_client_round'] / 1e6:.2f} | {r['rtf']:.4f} | "
                     f"{r['rtf_model_only']:.5f} |")
    lines += ["", "Student / teacher (paper 002, BERT-2 student / teacher: parameters "
              f"{PAPER['params']:.3f}, inference time {PAPER['ms']:.3f}):", "",
              "| student / teacher | parameters | size | ms batch 1 | ms batch 64 | bytes per round |",
              "|---|---|---|---|---|---|"]
    for q in data["ratios"]:
        lines.append(f"| `{q['student']}` / `{q['teacher']}` | {q['parameters']:.3f} | "
                     f"{q['size']:.3f} | {q['ms_batch1']:.3f} | {q['ms_batch64']:.3f} | "
                     f"{q['bytes_per_round']:.3f} |")
    lines += ["", f"RTF: compute time over audio time for {args.seconds:g} s of continuous audio "
              "scored in 2.5 s windows every 1 s (`tff_ser.stream.score_stream`, paper 001 "
              "frames); below 1 keeps up with live audio on this machine. "
              "The model-only column is the windows' batch-64 inference time over the audio's "
              "length.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true",
                        help="conv1d pair only, 3 reps, 6 s of audio (a smoke run)")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks"))
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.seconds = 3, 6.0
    from tff_ser.runtime import quiet_logs
    quiet_logs()
    data = measure(PAIRS[:1] if args.quick else PAIRS, args.reps, args.seconds)
    text = report(data, args)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "distillation.md").write_text(text)
    (out / "distillation.json").write_text(json.dumps({"args": vars(args), **data}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
