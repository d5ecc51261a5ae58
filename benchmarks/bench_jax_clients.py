"""engine="jax": a per-speaker FedAvg round with every client vmapped vs one client after another.

Paper 001's per-speaker federation (73 speaker clients of ~54 clips, BS 20:
~3 local steps each) is where an accelerator idles when clients run one by
one.  This script times one round of :class:`tff_ser.engines.jax_fedavg.JaxFedAvg`
two ways on the same task, in one process, interleaved (vmapped, sequential,
vmapped, ...), so that load from other processes hits both alike:

* *vmapped*: the sampled clients in chunks of C (the engine's own choice,
  its docstring says how; on a GPU all 73 at once);
* *sequential*: ``TFF_SER_JAX_CHUNK=1``, the same compiled client code run
  for one client at a time (what the ``tf`` engine does on one model).

Models and recipes: paper 001's dense, conv1d and lstm on its frames (100 x
34), client and server Adam 1e-3, BS 20, NLE 1, CD 1.0; paper 000's mlp on
clip statistics (136): NLE 5, LR 0.01, BS 16, CD 0.5, client and server
Adam.  Compilation runs first and is left
out; the report gives the median round and the range over the repetitions.

It needs only NumPy, JAX and Keras 3 (``KERAS_BACKEND=jax``), no
TensorFlow: the features travel as a *bundle* made here, on CPU, by
``prepare`` (the full generated corpus's per-speaker split; paper 001's
frames quantized to 8 bits per feature to fit the GPU machine's 64 MiB
upload -- timing does not depend on the values, and the dequantized features
are within 1/255 of the feature's range of the real ones).

Usage::

    # here (TensorFlow stack): the bundle and the wheels the GPU machine lacks
    .venv-current/bin/python benchmarks/bench_jax_clients.py prepare .device/jax_bench
    # anywhere with JAX and Keras 3 (the GPU machine: see benchmarks/README.md)
    KERAS_BACKEND=jax python benchmarks/bench_jax_clients.py run .device/jax_bench/bundle.npz OUT
    # CI: a tiny synthetic bundle, one repetition
    KERAS_BACKEND=jax python benchmarks/bench_jax_clients.py run --tiny OUT

Writes ``OUT/jax_clients.md`` and ``OUT/jax_clients.json``.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

#: model -> (feature kind of the bundle, FederatedConfig keyword arguments)
RECIPES = {
    "dense": ("paper001", dict(local_epochs=1, batch_size=20, client_fraction=1.0,
                               client_lr=1e-3, server_lr=1e-3)),
    "conv1d": ("paper001", dict(local_epochs=1, batch_size=20, client_fraction=1.0,
                                client_lr=1e-3, server_lr=1e-3)),
    "lstm": ("paper001", dict(local_epochs=1, batch_size=20, client_fraction=1.0,
                              client_lr=1e-3, server_lr=1e-3)),
    "mlp": ("clip_stats", dict(local_epochs=5, batch_size=16, client_fraction=0.5,
                               client_lr=0.01, server_lr=0.01)),
}
#: Wheels the GPU machine lacks (Python 3.12, manylinux x86-64): its image has JAX, NumPy,
#: SciPy, pandas, scikit-learn, h5py, rich, absl-py (/work/.library/device/KINDS.md), no Keras.
WHEELS = ("keras==3.13.2", "namex", "optree")


# --------------------------------------------------------------------------
# the bundle: per-speaker tasks as plain arrays
# --------------------------------------------------------------------------

def _quantize(x: np.ndarray):
    flat = x.reshape(len(x), -1)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    scale = np.where(hi > lo, (hi - lo) / 255.0, 1.0).astype(np.float32)
    q = np.clip(np.round((flat - lo) / scale), 0, 255).astype(np.uint8)
    return q, lo.astype(np.float32), scale


def write_bundle(path: str, tasks: dict, note: str) -> None:
    """``tasks``: feature kind -> Task (training clients only are kept)."""
    arrays, meta = {}, {"note": note, "kinds": {}}
    for kind, task in tasks.items():
        ids = sorted(task.train_clients)
        rows = np.concatenate([np.asarray(task.train_clients[c]) for c in ids])
        sizes = [len(task.train_clients[c]) for c in ids]
        q, lo, scale = _quantize(task.x[rows])
        arrays.update({f"{kind}/q": q, f"{kind}/lo": lo, f"{kind}/scale": scale,
                       f"{kind}/y": task.y[rows].astype(np.int8)})
        meta["kinds"][kind] = {"shape": list(task.input_shape), "clients": ids, "sizes": sizes}
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez_compressed(path, **arrays)


def read_bundle(path: str) -> dict:
    """Feature kind -> (x float32, y int32, {client: rows}), and the bundle's note."""
    out = {}
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        for kind, info in meta["kinds"].items():
            x = data[f"{kind}/q"].astype(np.float32) * data[f"{kind}/scale"] + data[f"{kind}/lo"]
            x = x.reshape((-1,) + tuple(info["shape"]))
            starts = np.concatenate([[0], np.cumsum(info["sizes"])])
            clients = {c: np.arange(starts[i], starts[i + 1])
                       for i, c in enumerate(info["clients"])}
            out[kind] = (x, data[f"{kind}/y"].astype(np.int32), clients)
    return out, meta["note"]


def tiny_bundle(path: str) -> None:
    """12 synthetic clients of 5-9 clips, short inputs: the CI-size run."""
    from tff_ser.task import Task
    rng = np.random.default_rng(0)
    tasks = {}
    for kind, shape in (("paper001", (14, 34)), ("clip_stats", (136,))):
        sizes = rng.integers(5, 10, size=12)
        x = rng.normal(size=(int(sizes.sum()),) + shape).astype(np.float32)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        clients = {f"s{i:02d}": np.arange(starts[i], starts[i + 1]) for i in range(12)}
        tasks[kind] = Task("mlp", x, rng.integers(0, 4, len(x)), clients, {})
    write_bundle(path, tasks, "tiny synthetic bundle (CI size), not a corpus")


def prepare(out_dir: str, wheels: bool) -> None:
    """The full generated corpus's per-speaker tasks (and the wheels), for the GPU machine."""
    from tff_ser.task import prepare_task
    os.makedirs(out_dir, exist_ok=True)
    tasks = {"paper001": prepare_task("dense", partition="by_speaker", progress=False),
             "clip_stats": prepare_task("mlp", partition="by_speaker", progress=False)}
    path = os.path.join(out_dir, "bundle.npz")
    write_bundle(path, tasks, "the generated corpus (not CREMA-D), full size, one client per "
                 "training speaker; paper 001 frames quantized to 8 bits per feature")
    print(f"wrote {path}: {os.path.getsize(path) / 2**20:.1f} MiB")
    if wheels:
        import subprocess
        folder = os.path.join(out_dir, "wheels")
        subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary=:all:",
                        "--python-version", "3.12", "--platform", "manylinux2014_x86_64",
                        "--platform", "manylinux_2_17_x86_64", "--no-deps", "-d", folder,
                        *WHEELS], check=True)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        print(f"wheels in {folder}: {size / 2**20:.1f} MiB")


# --------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------

def _engine(model: str, bundle: dict, chunk):
    from tff_ser.engines.jax_fedavg import JaxFedAvg
    from tff_ser.engines.state import EngineState
    from tff_ser.fedconfig import FederatedConfig, initial_model_weights
    from tff_ser.task import Task
    kind, kwargs = RECIPES[model]
    x, y, clients = bundle[kind]
    task = Task(model, x, y, clients, {})
    config = FederatedConfig(rounds=1, seed=0, **kwargs)
    if chunk:
        os.environ["TFF_SER_JAX_CHUNK"] = str(chunk)
    else:
        os.environ.pop("TFF_SER_JAX_CHUNK", None)
    engine = JaxFedAvg(task, config)
    trainable, non_trainable = initial_model_weights(model, task.input_shape, task.num_classes, 0)
    engine.set_state(EngineState(0, trainable, non_trainable, 0, [], []))
    return engine, task


def _peak_bytes():
    import jax
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def measure(model: str, bundle: dict, reps: int) -> dict:
    from tff_ser.fedconfig import sampled_per_round
    engines = {"vmapped": _engine(model, bundle, None)[0], "sequential": _engine(model, bundle, 1)[0]}
    for engine in engines.values():  # compile (left out) and one warm round
        engine.run_round(1)
    times = {name: [] for name in engines}
    for rep in range(reps):
        for name, engine in engines.items():
            row = engine.run_round(rep + 2)
            times[name].append(row["seconds"])
    vm, sq = (statistics.median(times[n]) for n in ("vmapped", "sequential"))
    chunk, steps = engines["vmapped"].chunk, engines["vmapped"].max_steps
    compile_s = {n: e.compile_seconds for n, e in engines.items()}
    peak = _peak_bytes()
    _free(engines)
    return {"model": model, "clients": len(bundle[RECIPES[model][0]][2]),
            "sampled_per_round": sampled_per_round(len(bundle[RECIPES[model][0]][2]),
                                                   RECIPES[model][1]["client_fraction"]),
            "clients_per_chunk": chunk, "local_steps_padded_to": steps,
            "vmapped_s": vm, "sequential_s": sq, "speedup": sq / vm,
            "vmapped_range": [min(times["vmapped"]), max(times["vmapped"])],
            "sequential_range": [min(times["sequential"]), max(times["sequential"])],
            "compile_s": compile_s, "peak_device_bytes": peak}


def _free(engines: dict) -> None:
    """Drop a model's engines and compiled functions before the next model sizes its chunk
    (on CPU the chunk is sized to the RAM available when the engine is made)."""
    import gc
    import jax
    engines.clear()
    gc.collect()
    jax.clear_caches()


def device_info() -> dict:
    import jax
    import keras
    device = jax.devices()[0]
    return {"platform": device.platform, "device": getattr(device, "device_kind", str(device)),
            "devices": len(jax.devices()), "jax": jax.__version__, "keras": keras.__version__,
            "python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
            "machine": platform.node(), "when": datetime.datetime.now().isoformat(timespec="seconds")}


def report(rows, info, note, out_dir) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "jax_clients.json"), "w") as f:
        json.dump({"device": info, "bundle": note, "rows": rows}, f, indent=1)
    lines = ["# engine='jax': per-speaker FedAvg round, clients vmapped vs one after another",
             "", f"Device: {info['platform']} ({info['device']}), JAX {info['jax']}, Keras "
             f"{info['keras']}, Python {info['python']}, {info['cpus']} CPUs, {info['when']}.",
             f"Data: {note}.", "",
             "| model | clients (sampled) | chunk | steps (padded) | vmapped s/round | sequential s/round "
             "| speedup | peak device MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        peak = f"{r['peak_device_bytes'] / 2**20:,.0f}" if r["peak_device_bytes"] else "n/a"
        lines.append(f"| {r['model']} | {r['clients']} ({r['sampled_per_round']}) | "
                     f"{r['clients_per_chunk']} | "
                     f"{r['local_steps_padded_to']} | {r['vmapped_s']:.3f} "
                     f"({r['vmapped_range'][0]:.3f}-{r['vmapped_range'][1]:.3f}) | "
                     f"{r['sequential_s']:.3f} ({r['sequential_range'][0]:.3f}-"
                     f"{r['sequential_range'][1]:.3f}) | {r['speedup']:.2f}x | {peak} |")
    lines += ["", "Median over the repetitions (range in brackets), compilation left out. "
              f"Command: `KERAS_BACKEND=jax python {' '.join(sys.argv)}`."]
    with open(os.path.join(out_dir, "jax_clients.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="the bundle (and wheels) for the GPU machine")
    p.add_argument("out_dir")
    p.add_argument("--no-wheels", action="store_true")
    r = sub.add_parser("run", help="time the rounds")
    r.add_argument("bundle", nargs="?", help="bundle.npz from prepare (omit with --tiny)")
    r.add_argument("out_dir")
    r.add_argument("--tiny", action="store_true", help="a synthetic 12-client bundle (CI)")
    r.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    r.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.out_dir, wheels=not args.no_wheels)
        return
    from tff_ser.engines.jax_fedavg import backend_reason
    reason = backend_reason()
    if reason:
        raise SystemExit(reason)
    path = args.bundle
    if args.tiny:
        os.makedirs(args.out_dir, exist_ok=True)
        path = os.path.join(args.out_dir, "tiny_bundle.npz")
        tiny_bundle(path)
    elif not path:
        raise SystemExit("give the bundle made by `prepare`, or --tiny")
    bundle, note = read_bundle(path)
    info, rows = device_info(), []
    for model in args.models:
        rows.append(measure(model, bundle, args.reps))
        report(rows, info, note, args.out_dir)


if __name__ == "__main__":
    main()
