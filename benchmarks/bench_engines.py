"""TFF round vs plain-TF engine round vs a plain Keras epoch, side by side, for paper 001's models.

For dense, conv1d and lstm at paper 001's input (100 frames x 34 features),
client and server Adam (lr 1e-3), BS 20, NLE 1, CD 1.0, in three settings:

* ``small4``: 4 IID clients at the 12-speaker corpus size (220 training clips);
* ``full4``: 4 IID clients at the full generated corpus size (3,942 clips);
* ``speaker``: one client per speaker at full size (73 clients x 54 clips).

Each cell measures, in one process, interleaved (TFF, tf, Keras, TFF, tf,
Keras, ...) so that load from other processes hits all three alike:

* *tff*: ``process.next`` of TFF 0.87's ``build_weighted_fed_avg`` (as
  ``train_federated`` times it: the client datasets are built before);
* *tf*: one round of :class:`tff_ser.engines.plain_tf.PlainTFFedAvg`, all of
  it (client resets, local steps, accumulation, server step);
* *keras*: ``model.fit`` for one epoch over the same clips, BS 20, Adam.

Warm-up (tracing, graph optimisation, TFF's compilation) runs first on
two-clip clients and is excluded.  The report gives the median and the range
of the measured repetitions, the ratios tf / keras and tf / tff, and the
physical floor of the Keras epoch: bytes it must move per step (10 passes
over the float32 weights: forward read, backward read, gradient write, Adam's
reads of w, m, v, g and writes of w, m, v; activations left out) times the
steps, over this machine's memory bandwidth (measured here with a NumPy copy
of 512 MB).  TFF is not run for dense with one client per speaker: its
worker grows to ~23 GB and is OOM-killed on a 24 GB machine (issue 12).

Features and labels are random: timing does not depend on their values.

Usage::

    .venv/bin/python benchmarks/bench_engines.py                    # every cell, ~1-2 h on 2 cores
    .venv/bin/python benchmarks/bench_engines.py --settings small4  # ~3 min
    .venv/bin/python benchmarks/bench_engines.py --settings speaker --models conv1d --reps 3

Writes ``results/benchmarks/engines.md`` and ``engines.json`` after every
cell (cells measured in earlier runs are kept unless measured again).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SETTINGS = {
    # name: (clients, clips per client)
    "small4": (4, 55),
    "full4": (4, 985),
    "speaker": (73, 54),
}
MODELS = ("dense", "conv1d", "lstm")
OUT = os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks")
SKIP_TFF = {("speaker", "dense"): "not run: TFF's worker is OOM-killed at ~23 GB (24 GB machine)"}


def _task(n_clients: int, per_client: int, seed: int = 0):
    from tff_ser.task import Task
    rng = np.random.default_rng(seed)
    n = n_clients * per_client
    x = rng.normal(size=(n, 100, 34)).astype(np.float32)
    y = rng.integers(0, 4, size=n).astype(np.int32)
    clients = {f"c{i:02d}": np.arange(i * per_client, (i + 1) * per_client)
               for i in range(n_clients)}
    return Task("dense", x, y, clients, {})


def memory_bandwidth_gbs() -> float:
    """Copy bandwidth (read + write bytes per second) of a 512 MB NumPy copy, best of 5."""
    a = np.ones(128 * 2**20, np.float32)
    b = np.empty_like(a)
    best = min(_timed(lambda: np.copyto(b, a)) for _ in range(5))
    return 2 * a.nbytes / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Cell:
    """One (setting, model): the three contenders, warmed up."""

    def __init__(self, setting: str, model: str):
        import dataclasses
        import tensorflow as tf
        from tff_ser.fedconfig import FederatedConfig
        from tff_ser.models import build_model
        n_clients, per_client = SETTINGS[setting]
        self.task = dataclasses.replace(_task(n_clients, per_client), model=model)
        self.tiny = dataclasses.replace(_task(n_clients, 2), model=model)
        self.config = FederatedConfig(rounds=10**6, local_epochs=1, batch_size=20,
                                      client_lr=1e-3, server_lr=1e-3, seed=0)
        self.round = 0
        self.params = build_model(model).count_params()
        self.steps = sum(-(-len(v) // 20) for v in self.task.train_clients.values())
        self.skip_tff = SKIP_TFF.get((setting, model))
        # tf engine: trace, and run a client with no clips once
        from tff_ser.engines.plain_tf import PlainTFFedAvg
        from tff_ser.engines.state import EngineState
        from tff_ser.fedconfig import initial_model_weights
        self.engine = PlainTFFedAvg(self.task, self.config)
        tr, nt = initial_model_weights(model, (100, 34), 4, 0)
        self.engine.set_state(EngineState(0, tr, nt, 0, [], []))
        self.engine.warm_up()
        # Keras: compile, and fit two batches
        self.keras = build_model(model, seed=0)
        self.keras.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                           loss=tf.keras.losses.SparseCategoricalCrossentropy())
        rows = self.task.train_indices
        self.kx, self.ky = self.task.x[rows], self.task.y[rows]
        self.keras.fit(self.kx[:40], self.ky[:40], batch_size=20, epochs=1, verbose=0)
        if not self.skip_tff:
            from tff_ser.engines.tff_process import TffEngine
            self.tff = TffEngine(self.task, self.config)
            self.tff.start()
            tiny = TffEngine(self.tiny, self.config)
            tiny.start()
            tiny.round(1)

    def measure(self) -> dict:
        self.round += 1
        out = {}
        if not self.skip_tff:
            out["tff"] = self.tff.round(self.round)["seconds"]
        out["tf"] = self.engine.run_round(self.round)["seconds"]
        out["keras"] = _timed(lambda: self.keras.fit(self.kx, self.ky, batch_size=20, epochs=1,
                                                     shuffle=True, verbose=0))
        return out


def _summary(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "n": len(times)}


def write_report(report: dict) -> None:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "engines.json"), "w") as f:
        json.dump(report, f, indent=1)
    bw = report["memory_bandwidth_gbs"]
    lines = [
        "# FedAvg round: TFF vs plain-TF engine vs a Keras epoch (paper 001 models)", "",
        "Written by " + "; then ".join(f"`{c}`" for c in report.get("commands", [report["command"]]))
        + f" (last run {report['date']}; {report['machine']}; load average at its start "
        f"{report['load_start']:.2f}, at its end {report.get('load_end', 0):.2f}).",
        f"Memory bandwidth (NumPy copy, read + write): {bw:.1f} GB/s.", "",
        "Seconds per round (per epoch for Keras): median [min-max] of n interleaved repetitions "
        "after warm-up. Client + server Adam 1e-3, BS 20, NLE 1, CD 1.0, input (100, 34). "
        "Floor: 10 passes over the float32 weights per step x steps / bandwidth.", "",
        "| setting | model | params | steps | TFF round | tf round | Keras epoch | tf / Keras "
        "| tf / TFF | Keras floor (s) | Keras / floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(report["cells"], key=lambda k: (list(SETTINGS).index(k.split("/")[0]),
                                                     MODELS.index(k.split("/")[1]))):
        c = report["cells"][key]
        setting, model = key.split("/")

        def cell(name):
            s = c.get(name)
            if s is None:
                return c.get("tff_note", "-")
            return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}] (n={s['n']})"

        floor = c["steps"] * 10 * 4 * c["params"] / (bw * 1e9)
        ratio_tff = (f"{c['tf']['median'] / c['tff']['median']:.2f}" if c.get("tff") else "-")
        lines.append(
            f"| {setting} | {model} | {c['params']:,} | {c['steps']} | {cell('tff')} | "
            f"{cell('tf')} | {cell('keras')} | {c['tf']['median'] / c['keras']['median']:.2f} | "
            f"{ratio_tff} | {floor:.2f} | {c['keras']['median'] / floor:.0f} |")
    lines += ["", "Targets (issue 12, printed, never asserted in a test): tf / Keras <= 1.2 "
              "everywhere, tf / TFF <= 1, and the per-speaker dense round runs (TFF OOMs there) "
              "under 8 GB resident (see README for the measured peak).",
              f"Peak resident memory of this whole benchmark process: "
              f"{report.get('peak_rss_gib', 0):.2f} GiB."]
    missing = [f"{s}/{m}" for s in SETTINGS for m in MODELS if f"{s}/{m}" not in report["cells"]]
    if missing:
        lines += ["", f"Not measured yet: {', '.join(missing)}."]
    with open(os.path.join(OUT, "engines.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--reps", type=int, default=2, help="measured repetitions per cell")
    args = p.parse_args(argv)
    path = os.path.join(OUT, "engines.json")
    old = json.load(open(path)) if os.path.exists(path) else {}
    report = {"command": "python benchmarks/bench_engines.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_start": os.getloadavg()[0], "memory_bandwidth_gbs": memory_bandwidth_gbs(),
              "cells": old.get("cells", {})}
    report["commands"] = old.get("commands", []) + [report["command"]]
    import tensorflow as tf
    report["gpu"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    for setting in args.settings:
        for model in args.models:
            cell = Cell(setting, model)
            runs = [cell.measure() for _ in range(args.reps)]
            entry = {"params": cell.params, "steps": cell.steps,
                     "measured": runs, "date": report["date"]}
            for name in ("tff", "tf", "keras"):
                values = [r[name] for r in runs if name in r]
                if values:
                    entry[name] = _summary(values)
            if cell.skip_tff:
                entry["tff_note"] = cell.skip_tff
            report["cells"][f"{setting}/{model}"] = entry
            report["load_end"] = os.getloadavg()[0]
            report["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            write_report(report)
            print(f"{setting}/{model}: " + ", ".join(
                f"{k} {entry[k]['median']:.2f}s" for k in ("tff", "tf", "keras") if k in entry),
                flush=True)
            del cell
            import gc
            gc.collect()
    from tff_ser.runtime import shutdown
    shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
