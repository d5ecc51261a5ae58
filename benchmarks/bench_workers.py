"""TFF's FedAvg round on 1 vs several C++ workers, side by side (issue: beyond one process).

The TFF engine runs a round's clients on one C++ ``worker_binary`` by default.
``tff_ser.runtime.set_workers(n)`` installs TFF 0.87's mergeable-computation
context over ``n`` workers: the round's clients are split into one subround
per worker, run concurrently and merged.  This script measures
``process.next`` (client datasets built beforehand, as
:func:`tff_ser.federated.train_federated` does) for

* ``mlp73``: paper 000's per-speaker shape, 73 clients x 54 clips of 136
  features, the MLP, BS 32, NLE 1, CD 1.0;
* ``dense4``: paper 001's Exp 1 shape, 4 IID clients x 985 clips of
  100 x 34 features, the 26 M-parameter dense model, BS 20, NLE 1;

each warmed up on every worker count first, then interleaved round by round
(1, n, 1, n, ...) so load from other processes hits both alike.  The weights
after the measured rounds are compared too (they must agree to float32
rounding; dropout and Adam near a random-label optimum amplify that: the
equality test is ``tests/integration/test_multi_worker.py``), and the cores kept busy
(CPU seconds of this process and its workers per second of the round).
Features and labels are random (timing does not depend on them).

Usage::

    .venv/bin/python benchmarks/bench_workers.py                 # ~6 min on 2 cores (mlp73, dense4_small)
    .venv/bin/python benchmarks/bench_workers.py --settings mlp73 --reps 3

Writes ``results/benchmarks/workers.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_engines import _task as _dense_task  # noqa: E402
from bench_round import NaiveRounds, crema_scale_task  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "results", "benchmarks")
#: name -> (description, task builder, config knobs)
SETTINGS = {
    "mlp73": ("73 clients x 54 clips, MLP (paper 000 per speaker), BS 32, NLE 1",
              lambda: crema_scale_task(), {"batch_size": 32, "local_epochs": 1}),
    "dense4": ("4 IID clients x 985 clips, dense 26 M params (paper 001 Exp 1), BS 20, NLE 1",
               lambda: _dense_task(4, 985), {"batch_size": 20, "local_epochs": 1}),
    # The same model and client count on a quarter of the clips (~4x cheaper a round).
    "dense4_small": ("4 IID clients x 246 clips, dense 26 M params, BS 20, NLE 1",
                     lambda: _dense_task(4, 246), {"batch_size": 20, "local_epochs": 1}),
}


def measure(setting: str, workers: int, reps: int) -> dict:
    import tensorflow as tf
    from tff_ser import runtime
    from tff_ser.federated import FederatedConfig
    description, make_task, knobs = SETTINGS[setting]
    task = make_task()
    config = FederatedConfig(rounds=reps + 1, client_lr=0.001, server_lr=0.001, seed=0,
                             client_fraction=1.0, **knobs)
    naive = NaiveRounds(task)
    counts = (1, workers)
    states = {}
    for k in counts:  # warm-up: compiles each context's computations once
        runtime.set_workers(k)
        _, states[k] = naive.round(naive.start(config), config, 1)
    seconds = {k: [] for k in counts}
    cores = {k: [] for k in counts}
    for r in range(reps):
        for k in (counts if r % 2 == 0 else counts[::-1]):
            runtime.set_workers(k)
            before = _cpu_seconds()
            s, states[k] = naive.round(states[k], config, 2 + r)
            seconds[k].append(s)
            cores[k].append((_cpu_seconds() - before) / s)
    runtime.set_workers(1)
    flat = {k: [np.asarray(a) for a in tf.nest.flatten(
        naive.process.get_model_weights(states[k]).trainable)] for k in counts}
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(flat[1], flat[workers]))
    med = {k: statistics.median(v) for k, v in seconds.items()}
    return {"setting": setting, "description": description, "workers": workers, "reps": reps,
            "seconds": {str(k): v for k, v in seconds.items()},
            "median_seconds": {str(k): m for k, m in med.items()},
            "cores_busy": {str(k): statistics.median(v) for k, v in cores.items()},
            "speedup": med[1] / med[workers], "max_weight_difference": diff}


def _cpu_seconds() -> float:
    """CPU seconds of this process and every TFF worker it runs (user + system)."""
    import psutil
    from tff_ser import runtime
    total = 0.0
    for pid in [os.getpid(), *runtime.live_workers()]:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def write_report(rows, args) -> None:
    os.makedirs(OUT, exist_ok=True)
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "command": "python benchmarks/bench_workers.py " + " ".join(sys.argv[1:])}
    with open(os.path.join(OUT, "workers.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = ["# TFF round on 1 vs several C++ workers (mergeable-computation context)", "",
             f"{meta['date']}, {meta['machine']}; `{meta['command']}`. Median of "
             f"{args.reps} interleaved rounds after a warm-up round on each; "
             "`process.next` only (datasets built before).", "",
             "| setting | workers | 1 worker s/round | n workers s/round | speed-up | cores busy (1 / n) | max weight diff |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["median_seconds"]
        lines.append(f"| {r['description']} | {r['workers']} | {m['1']:.2f} | "
                     f"{m[str(r['workers'])]:.2f} | x{r['speedup']:.2f} | "
                     f"{r['cores_busy']['1']:.2f} / {r['cores_busy'][str(r['workers'])]:.2f} | "
                     f"{r['max_weight_difference']:.1e} |")
    with open(os.path.join(OUT, "workers.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--settings", nargs="+", choices=sorted(SETTINGS),
                   default=["mlp73", "dense4_small"])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                   help="worker count compared with 1 (default: one per core)")
    p.add_argument("--reps", type=int, default=4, help="measured rounds per worker count")
    args = p.parse_args(argv)
    rows = []
    for setting in args.settings:
        rows.append(measure(setting, args.workers, args.reps))
        print(json.dumps(rows[-1]), flush=True)
    write_report(rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
