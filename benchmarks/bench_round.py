"""One FedAvg round, TFF process vs BatchedFedAvg, side by side at CREMA-D scale.

Paper 000's grid (NGE x NLE x LR x BS x CD = 4 x 3 x 3 x 4 x 4 = 576 runs)
costs days through TFF 0.87, whose executor spends a fixed time per client
per round.  This script measures, in one process and under the same load:

* the naive round: ``process.next`` of :func:`tff_ser.engines.tff_process.build_processes`'s
  FedAvg (client Adam + server Adam) on per-round ``tf.data`` client
  datasets built exactly as :func:`tff_ser.federated.train_federated` does
  (building the datasets is not timed, as there);
* the engine round: :meth:`tff_ser.engines.BatchedFedAvg.run_rounds` for one
  round, everything included (batching plan, local steps, aggregation,
  server step), compilation excluded (reported separately);

for NLE 1, 3, 5 at BS 32 and CD 1.0 (73 clients x 54 clips of 136
features, paper 000's MLP with dropout 0.2, LR 0.001), warmed up first and
interleaved so load from other processes hits both alike.  It then
estimates the naive and the engine time of the whole grid: naive round time
is modelled as ``fixed + clients * (per_client + per_step * local_steps)``
fitted to the naive measurements (the ones above plus BS 8 and CD 0.1
points), the engine's is measured at every (NLE, BS, CD) of the grid.

Features and labels are random (timing does not depend on their values).

Usage::

    .venv/bin/python benchmarks/bench_round.py            # ~3-4 min on 2 cores
    .venv/bin/python benchmarks/bench_round.py --quick    # ~1 min, fewer rounds

Writes ``results/benchmarks/round_ratio.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Paper 000's grid, equations (2)-(6).
GRID = {"NGE": (50, 100, 150, 200), "NLE": (1, 3, 5), "LR": (0.1, 0.01, 0.001),
        "BS": (8, 16, 32, 64), "CD": (0.10, 0.50, 0.75, 1.0)}
#: CREMA-D in paper 000: 73 training speakers; ~54 clips of the 4 emotions each.
CLIENTS, CLIPS_PER_CLIENT, FEATURES = 73, 54, 136


def crema_scale_task(n_clients: int = CLIENTS, clips: int = CLIPS_PER_CLIENT,
                     n_features: int = FEATURES, seed: int = 0):
    """A Task with CREMA-D's client count and sizes and random clip statistics."""
    from tff_ser.task import Task
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_clients * clips, n_features)).astype(np.float32)
    y = rng.integers(0, 4, size=n_clients * clips).astype(np.int32)
    clients = {f"actor{i:03d}": np.arange(i * clips, (i + 1) * clips) for i in range(n_clients)}
    return Task("mlp", x, y, clients, {}, info={"corpus": "random, CREMA-D scale"})


def local_steps(clips: int, local_epochs: int, batch_size: int) -> int:
    return math.ceil(local_epochs * clips / batch_size)


class NaiveRounds:
    """The TFF process, one round at a time, as tff_ser.federated runs it."""

    def __init__(self, task, seed: int = 0):
        from tff_ser import fedconfig
        from tff_ser.engines import tff_process
        from tff_ser.runtime import get_tff
        self.federated, self.tff, self.task = tff_process, get_tff(), task
        self.fedconfig = fedconfig
        self.process, _ = tff_process.build_processes(task.model, task.input_shape,
                                                    task.num_classes)
        trainable, non_trainable = fedconfig.initial_model_weights(
            task.model, task.input_shape, task.num_classes, seed)
        self.initial = self.process.set_model_weights(
            self.process.initialize(), self.tff.learning.models.ModelWeights(trainable,
                                                                             non_trainable))

    def start(self, config):
        return self.federated.set_learning_rates(self.process, self.initial, config.client_lr,
                                                 config.server_lr)

    def round(self, state, config, round_num):
        """(seconds of process.next, new state)."""
        f, task = self.federated, self.task
        ids = sorted(task.train_clients)
        datasets = []
        for cid in self.fedconfig.sample_clients(ids, config.client_fraction, round_num, config.seed):
            clips = task.train_clients[cid]
            order = self.fedconfig.client_order(len(clips), config.local_epochs, config.seed,
                                                round_num, ids.index(cid))
            datasets.append(f._client_dataset(task, clips, order, config.batch_size))
        t0 = time.perf_counter()
        output = self.process.next(state, datasets)
        return time.perf_counter() - t0, output.state


def side_by_side(naive: NaiveRounds, engine, task, config, naive_rounds: int,
                 engine_per_naive: int) -> dict:
    """Median round times of both, warmed up, interleaved round by round."""
    state = naive.start(config)
    _, state = naive.round(state, config, 1)                       # warm-up
    compile_before = engine.compile_seconds
    estate, _ = engine.run_rounds(task, config, start_round=1, end_round=1)  # warm-up
    naive_s, engine_s = [], []
    next_round = 2
    for i in range(naive_rounds):
        seconds, state = naive.round(state, config, 2 + i)
        naive_s.append(seconds)
        estate, rows = engine.run_rounds(task, config, start_round=next_round,
                                         end_round=next_round + engine_per_naive - 1,
                                         state=estate)
        next_round += engine_per_naive
        engine_s += [r["seconds"] for r in rows]
    return {"naive_ms": 1000 * statistics.median(naive_s), "naive_min_ms": 1000 * min(naive_s),
            "engine_ms": 1000 * statistics.median(engine_s),
            "engine_min_ms": 1000 * min(engine_s),
            "ratio": statistics.median(naive_s) / statistics.median(engine_s),
            "ratio_of_minimums": min(naive_s) / min(engine_s),
            "naive_rounds": len(naive_s), "engine_rounds": len(engine_s),
            "engine_compile_s": engine.compile_seconds - compile_before}


def naive_only(naive: NaiveRounds, config, rounds: int) -> float:
    """Fastest of ``rounds`` warmed-up naive rounds."""
    state = naive.start(config)
    _, state = naive.round(state, config, 1)
    times = []
    for r in range(rounds):
        seconds, state = naive.round(state, config, 2 + r)
        times.append(seconds)
    return min(times)


def fit_naive_model(points) -> dict:
    """Least squares of t = fixed + clients * (per_client + per_step * steps)."""
    a = np.array([[1.0, p["clients"], p["clients"] * p["steps"]] for p in points])
    t = np.array([p["seconds"] for p in points])
    coef, *_ = np.linalg.lstsq(a, t, rcond=None)
    predicted = a @ coef
    return {"fixed_s": float(coef[0]), "per_client_s": float(coef[1]),
            "per_client_step_s": float(coef[2]),
            "max_relative_error": float(np.max(np.abs(predicted - t) / t))}


def grid_seconds(round_seconds) -> float:
    """Sum over the 576 grid points of NGE x round time(NLE, BS, CD)."""
    return sum(nge * round_seconds(nle, bs, cd)
               for nge, nle, _lr, bs, cd in itertools.product(*GRID.values()))


def clients_at(cd: float, n: int = CLIENTS) -> int:
    # As tff_ser.federated.sample_clients rounds it.
    return max(1, int(round(cd * n)))


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import tensorflow as tf
    from tff_ser.runtime import get_tff
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "tensorflow": tf.__version__, "tensorflow_federated": get_tff().__version__,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier numbers)")
    parser.add_argument("--out", default="results/benchmarks/round_ratio",
                        help="output path without extension (.md and .json are written)")
    args = parser.parse_args(argv)
    naive_rounds, engine_per_naive = (2, 2) if args.quick else (4, 3)

    from tff_ser.engines import BatchedFedAvg
    from tff_ser.federated import FederatedConfig
    task = crema_scale_task()
    info = machine()
    info["load_average_start"] = os.getloadavg()
    print(f"{info['date']}  {info['nproc']} x {info['cpu']}  load {info['load_average_start']}",
          flush=True)
    t_start = time.perf_counter()
    naive = NaiveRounds(task)
    engine = BatchedFedAvg.for_task(task)
    base = FederatedConfig(rounds=200, batch_size=32, client_fraction=1.0, client_lr=0.001,
                           server_lr=0.001)

    rows = []
    print(f"{'NLE':>3} {'BS':>3} {'CD':>4} {'naive ms':>9} {'engine ms':>9} {'ratio':>6} "
          f"{'(of minimums)':>13}", flush=True)
    for nle in GRID["NLE"]:
        config = FederatedConfig(**{**base.to_dict(), "local_epochs": nle})
        r = side_by_side(naive, engine, task, config, naive_rounds, engine_per_naive)
        r.update(NLE=nle, BS=32, CD=1.0, clients=CLIENTS)
        rows.append(r)
        print(f"{nle:>3} {32:>3} {1.0:>4} {r['naive_ms']:>9.0f} {r['engine_ms']:>9.1f} "
              f"{r['ratio']:>6.1f} {r['ratio_of_minimums']:>13.1f}", flush=True)

    # Naive cost model, fitted to the fastest (least disturbed) rounds: the
    # side-by-side points plus two that separate the per-client and per-step terms.
    points = [{"clients": CLIENTS, "steps": local_steps(CLIPS_PER_CLIENT, r["NLE"], 32),
               "seconds": r["naive_min_ms"] / 1000, "NLE": r["NLE"], "BS": 32, "CD": 1.0}
              for r in rows]
    for nle, bs, cd in ((1, 8, 1.0), (1, 32, 0.1)):
        config = FederatedConfig(**{**base.to_dict(), "local_epochs": nle, "batch_size": bs,
                                    "client_fraction": cd})
        seconds = naive_only(naive, config, max(2, naive_rounds - 1))
        points.append({"clients": clients_at(cd), "steps": local_steps(CLIPS_PER_CLIENT, nle, bs),
                       "seconds": seconds, "NLE": nle, "BS": bs, "CD": cd})
        print(f"naive only: NLE {nle} BS {bs} CD {cd}: {1000 * seconds:.0f} ms", flush=True)
    model = fit_naive_model(points)

    def naive_round(nle, bs, cd):
        return model["fixed_s"] + clients_at(cd) * (
            model["per_client_s"] + model["per_client_step_s"]
            * local_steps(CLIPS_PER_CLIENT, nle, bs))

    # The engine at every (NLE, BS, CD) of the grid; one compile each, reused across LR and NGE.
    engine_grid = {}
    compile_before = engine.compile_seconds
    engine_rounds = 2 if args.quick else 3
    # CD outermost: the engine keeps one client count's working copies at a time.
    for cd, nle, bs in itertools.product(GRID["CD"], GRID["NLE"], GRID["BS"]):
        config = FederatedConfig(**{**base.to_dict(), "local_epochs": nle, "batch_size": bs,
                                    "client_fraction": cd})
        state, _ = engine.run_rounds(task, config, end_round=1)
        _, timed = engine.run_rounds(task, config, start_round=2, end_round=1 + engine_rounds,
                                     state=state)
        engine_grid[(nle, bs, cd)] = min(r["seconds"] for r in timed)
    engine_compile = engine.compile_seconds - compile_before

    naive_grid = grid_seconds(naive_round)
    engine_grid_total = grid_seconds(lambda nle, bs, cd: engine_grid[(nle, bs, cd)])
    info["load_average_end"] = os.getloadavg()
    summary = {
        "machine": info,
        "setup": {"clients": CLIENTS, "clips_per_client": CLIPS_PER_CLIENT,
                  "features": FEATURES, "model": "mlp (136-256-128-4, dropout 0.2)",
                  "client_optimizer": "adam", "server_optimizer": "adam", "lr": 0.001,
                  "naive_timing": "process.next only (datasets built untimed, as in "
                                  "tff_ser.federated)",
                  "engine_timing": "whole round incl. batching plan; compilation excluded"},
        "side_by_side": rows,
        "naive_model": {**model, "points": points},
        "grid": {"points": 576,
                 "naive_hours": naive_grid / 3600,
                 "engine_hours": engine_grid_total / 3600,
                 "engine_compile_seconds": engine_compile,
                 "engine_round_ms": {f"NLE{k[0]}_BS{k[1]}_CD{k[2]}": 1000 * v
                                     for k, v in engine_grid.items()},
                 "naive_model_round_ms": {f"NLE{k[0]}_BS{k[1]}_CD{k[2]}": 1000 * naive_round(*k)
                                          for k in engine_grid},
                 "speedup": naive_grid / (engine_grid_total + engine_compile)},
        "benchmark_seconds": time.perf_counter() - t_start,
    }
    print(f"grid of 576 runs, training time only: naive (TFF) ~{naive_grid / 3600:.1f} h, "
          f"engine ~{engine_grid_total / 3600:.2f} h + {engine_compile:.0f} s compiling "
          f"(x{summary['grid']['speedup']:.0f})", flush=True)
    write_outputs(args.out, summary)
    print(f"wrote {args.out}.md and {args.out}.json "
          f"({summary['benchmark_seconds']:.0f} s)", flush=True)
    return 0


def write_outputs(out: str, summary: dict) -> None:
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    m, g, nm = summary["machine"], summary["grid"], summary["naive_model"]
    per_config = [(k, g["naive_model_round_ms"][k] / v) for k, v in g["engine_round_ms"].items()]
    lo, hi = min(per_config, key=lambda kv: kv[1]), max(per_config, key=lambda kv: kv[1])
    lines = [
        "# One FedAvg round: TFF process vs BatchedFedAvg",
        "",
        f"Measured {m['date']} on {m['nproc']} x {m['cpu']} (load average "
        f"{m['load_average_start'][0]:.1f} at start, {m['load_average_end'][0]:.1f} at end; "
        f"the machine is shared), TensorFlow {m['tensorflow']}, TFF "
        f"{m['tensorflow_federated']}, by `benchmarks/bench_round.py`.",
        "",
        "CREMA-D scale: 73 clients x 54 clips, 136 random features, paper 000's MLP "
        "(dropout 0.2), client and server Adam, LR 0.001, BS 32, CD 1.0.  Round times "
        "after warm-up, the two interleaved round by round (median, and fastest in "
        "brackets); naive = `process.next`, engine = whole round.",
        "",
        "| NLE | naive ms | engine ms | naive / engine | of fastest rounds |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in summary["side_by_side"]:
        lines.append(f"| {r['NLE']} | {r['naive_ms']:.0f} ({r['naive_min_ms']:.0f}) | "
                     f"{r['engine_ms']:.1f} ({r['engine_min_ms']:.1f}) | {r['ratio']:.1f} | "
                     f"{r['ratio_of_minimums']:.1f} |")
    lines += [
        "",
        "## Paper 000's grid (576 runs), training time only",
        "",
        "Sum over the grid of NGE x round time (fastest rounds on both sides).",
        "",
        f"- naive (TFF): ~{g['naive_hours']:.1f} h, from the fitted round time "
        f"{nm['fixed_s'] * 1000:.0f} ms + clients x ({nm['per_client_s'] * 1000:.1f} ms + "
        f"{nm['per_client_step_s'] * 1000:.2f} ms x local steps) (max error "
        f"{100 * nm['max_relative_error']:.0f}% on the {len(nm['points'])} measured points)",
        f"- engine: ~{g['engine_hours']:.2f} h measured at every (NLE, BS, CD), plus "
        f"{g['engine_compile_seconds']:.0f} s compiling once per (NLE, BS, CD)",
        f"- speed-up on the grid: x{g['speedup']:.0f}; per (NLE, BS, CD) the round is "
        f"{lo[1]:.0f}x ({lo[0]}) to {hi[1]:.0f}x ({hi[0]}) faster",
        "",
    ]
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
