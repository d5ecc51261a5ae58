"""The tf engine's round on the current stack (TF 2.20, Keras 3) vs the reference stack (TF 2.14, Keras 2) and TFF.

Paper 001's three models (dense 26.0 M, conv1d 1.83 M and lstm 3.48 M
parameters) at the 12-speaker size: 4 IID clients of 130 clips of (100, 34)
features (random values: time does not depend on them), BS 20, NLE 1,
client and server Adam (paper 001's recipe), every client every round.
``--models`` takes any registered model: each reads clips of its own input
shape and trains with its paper's recipe (paper 004's ``cnn_logmel`` and
``lstm_logmel``: (300, 40) log-Mel frames, BS 10, client SGD 0.01, server
SGD 1.0, i.e. FedAvg's plain average).  The ways of computing the same round:

* ``tf`` engine on the current stack's venv,
* ``tf`` engine on the reference stack's venv,
* TFF 0.87's own process on the reference stack's venv (``--no-tff``: left out),
* with ``--jax``, the ``jax`` engine on the current stack's venv (``KERAS_BACKEND=jax``);

each measurement is a fresh worker process (one warm-up round, then
``--rounds`` timed rounds; the median is kept), and the three are
interleaved model by model and repetition by repetition, so that load from
other processes on the machine hits all of them alike.  Ratios are of
medians measured side by side in this one run.

Usage (both venvs: ``make setup`` and ``make setup STACK=current``)::

    .venv/bin/python benchmarks/bench_stacks.py \\
        --reference .venv/bin/python --current .venv-current/bin/python   # ~20 min on 2 cores
    .venv/bin/python benchmarks/bench_stacks.py --models cnn_logmel lstm_logmel --jax \\
        --no-tff --out stacks_paper004                                    # ~10 min on one core

Writes ``results/benchmarks/stacks.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ("dense", "conv1d", "lstm")
CLIENTS, CLIPS = 4, 130


def recipe(model: str):
    """The FederatedConfig of ``model``'s paper as its experiment declares it, one round of NLE 1.

    Paper 004's models: ``PAPER004_FEDAVG.fl`` (BS 10, client SGD 0.01, server
    SGD 1.0); every other model: paper 001's knobs (``EXPERIMENT_FL``: BS 20,
    client and server Adam 1e-3).
    """
    import dataclasses
    from tff_ser.baselines.paper004.configs import PAPER004_FEDAVG
    from tff_ser.experiments.configs import EXPERIMENT_FL
    from tff_ser.models import get_spec
    fl = PAPER004_FEDAVG.fl if get_spec(model).paper.startswith("004") else EXPERIMENT_FL
    return dataclasses.replace(fl, local_epochs=1, client_fraction=1.0, eval_every=0, seed=0)


def _worker(model: str, engine: str, rounds: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tff_ser  # noqa: F401
    import dataclasses
    from tff_ser.federated import train_federated
    from tff_ser.models import get_spec
    from tff_ser.stack import stack_info
    from tff_ser.task import Task
    rng = np.random.default_rng(0)
    n = CLIENTS * CLIPS
    x = rng.normal(size=(n, *get_spec(model).input_shape)).astype(np.float32)
    y = rng.integers(0, 4, size=n).astype(np.int32)
    clients = {f"c{i}": np.arange(i * CLIPS, (i + 1) * CLIPS) for i in range(CLIENTS)}
    task = Task(model, x, y, clients, {}, info={"corpus": "random, 12-speaker size"})
    config = dataclasses.replace(recipe(model), rounds=rounds + 1)
    result = train_federated(task, config, engine=engine, progress=False)
    seconds = [h["seconds"] for h in result.history][1:]  # round 1 warms up
    print(json.dumps({"model": model, "engine": engine, "seconds": seconds,
                      "stack": stack_info()}))


def _measure(python: str, model: str, engine: str, rounds: int) -> dict:
    env = {**os.environ, "PYTHONPATH": ROOT}
    if engine == "jax":
        env["KERAS_BACKEND"] = "jax"
    out = subprocess.run([python, os.path.abspath(__file__), "--worker", model, engine,
                          str(rounds)], capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{python} {model} {engine} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=os.path.join(ROOT, ".venv", "bin", "python"))
    parser.add_argument("--current", default=os.path.join(ROOT, ".venv-current", "bin", "python"))
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--no-tff", action="store_true", help="leave TFF's process out")
    parser.add_argument("--jax", action="store_true",
                        help="add the jax engine on the current stack (KERAS_BACKEND=jax)")
    parser.add_argument("--out", default="stacks",
                        help="file name under results/benchmarks/ (default stacks: .md and .json)")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "ENGINE", "ROUNDS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    ways = [("current tf", args.current, "tf"), ("reference tf", args.reference, "tf")]
    if not args.no_tff:
        ways.append(("reference tff", args.reference, "tff"))
    if args.jax:
        ways.append(("current jax", args.current, "jax"))
    samples = {(m, w[0]): [] for m in args.models for w in ways}
    stacks = {}
    t0 = time.perf_counter()
    for rep in range(args.reps):
        for model in args.models:
            order = ways if rep % 2 == 0 else ways[::-1]
            for label, python, engine in order:
                r = _measure(python, model, engine, args.rounds)
                samples[(model, label)] += r["seconds"]
                stacks[label] = r["stack"]
                print(f"rep {rep} {model:7s} {label:14s} "
                      f"{statistics.median(r['seconds']):8.2f} s/round", flush=True)
    from tff_ser.models import get_spec
    rows = []
    for model in args.models:
        med = {label: statistics.median(samples[(model, label)]) for label, _, _ in ways}
        row = {"model": model, **{f"{k} s": v for k, v in med.items()},
               "current / reference (tf)": med["current tf"] / med["reference tf"]}
        if "reference tff" in med:
            row["current tf / TFF"] = med["current tf"] / med["reference tff"]
        if "current jax" in med:
            row["current jax / tf"] = med["current jax"] / med["current tf"]
        rows.append(row)
    out_dir = os.path.join(ROOT, "results", "benchmarks")
    os.makedirs(out_dir, exist_ok=True)
    meta = {"date": datetime.date.today().isoformat(), "wall_seconds": time.perf_counter() - t0,
            "reps": args.reps, "rounds": args.rounds, "stacks": stacks,
            "command": "benchmarks/bench_stacks.py " + " ".join(a for a in (argv or sys.argv[1:]))}
    with open(os.path.join(out_dir, f"{args.out}.json"), "w") as fh:
        json.dump({"meta": meta, "rows": rows,
                   "samples": {f"{m}|{l}": s for (m, l), s in samples.items()}}, fh, indent=1)
    cols = list(rows[0])
    recipes = "; ".join(f"{m}: {CLIENTS} IID clients x {CLIPS} clips of "
                        f"{get_spec(m).input_shape}, BS {c.batch_size}, NLE 1, client "
                        f"{c.client_optimizer} {c.client_lr:g}, server {c.server_optimizer} "
                        f"{c.server_lr:g}" for m, c in ((m, recipe(m)) for m in args.models))
    lines = [f"# FedAvg round by stack and engine (tf on both stacks; TFF; jax), {meta['date']}", "",
             f"{recipes}; median of {args.reps} x {args.rounds} rounds per cell, interleaved; "
             f"{meta['wall_seconds']:.0f} s wall. Stacks: " + "; ".join(
                 f"{k}: TF {v.get('tensorflow')}, Keras {v.get('keras')}"
                 for k, v in stacks.items()), "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c])
                                       for c in cols) + " |")
    with open(os.path.join(out_dir, f"{args.out}.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
