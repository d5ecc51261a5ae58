"""The HPO grid before and after its trajectories went through ``train_federated``.

Until commit 28de1e8 the grid ran its own loop over ``BatchedFedAvg.run_rounds``
(``hpo/objective._advance``); now every trajectory is a ``train_federated``
run extended point by point (``hpo/objective.extend_trajectory``).  This
script checks out the old commit in a temporary git worktree and, in one
run, alternates the two source trees (ABAB..., each in a fresh process on
the same core set):

* ``grid`` -- ``run_grid(quick=True, workers=0)``: the 8-point quick grid on
  the 12-speaker corpus (the issue's measure), wall time of the call;
* ``trajectory`` -- one full-size point (NLE 1, LR 0.01, BS 32, CD 0.5) to
  NGE 50 with milestones 10/25/50: wall time of ``evaluate_point`` and its CT.

The objectives (Acc of every point) must be equal in the two trees; the
script says so, prints the medians and the after/before ratios, and writes
``results/benchmarks/hpo_loop.md`` and ``.json``.  Ratios, never absolute
targets: the machines are shared.

    .venv/bin/python benchmarks/bench_hpo_loop.py [--before 28de1e8] [--reps 3]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, time
what, data_small, data_full = sys.argv[1], sys.argv[2], sys.argv[3]
import tff_ser
assert os.path.dirname(tff_ser.__file__).startswith(os.environ["PYTHONPATH"]), tff_ser.__file__
out = {}
with tempfile.TemporaryDirectory() as d:
    if what == "grid":
        try:
            from tff_ser.hpo.workers import run_grid
        except ImportError:  # the tree before the HPO study was split by role
            from tff_ser.hpo.study import run_grid
        t = time.perf_counter()
        run = run_grid(quick=True, directory=d, workers=0, data_dir=data_small, progress=False)
        out["wall"] = time.perf_counter() - t
        table = run.table.sort_values("trial")
        out["acc"] = {row.trajectory + f"@{row.rounds}": row.accuracy for row in table.itertuples()}
        out["ct"] = float(table["computation_time"].sum())
    else:
        from tff_ser.hpo.objective import RunSettings, evaluate_point, task_fingerprint
        try:
            from tff_ser.hpo.workers import load_study_task
        except ImportError:
            from tff_ser.hpo.study import load_study_task
        task, fp, _ = load_study_task({"size": "full"}, data_dir=data_full)
        point = {"rounds": 50, "local_epochs": 1, "client_lr": 0.01, "batch_size": 32,
                 "client_fraction": 0.5}
        t = time.perf_counter()
        r = evaluate_point(task, point, RunSettings(), trajectory_root=d,
                           milestones=(10, 25, 50), final_round=200, fingerprint=fp)
        out["wall"] = time.perf_counter() - t
        out["acc"] = {"nge50": r.accuracy}
        out["ct"] = r.computation_time
print("RESULT " + json.dumps(out))
"""


def _worktree(rev: str) -> pathlib.Path:
    path = pathlib.Path(tempfile.mkdtemp(prefix="bench_hpo_before_"))
    path.rmdir()
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev],
                   check=True)
    return path


def _measure(tree: pathlib.Path, what: str, cores: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = ["taskset", "-c", cores, sys.executable, "-c", CHILD, what,
           str(ROOT / "data" / "generated-small"), str(ROOT / "data" / "generated")]
    done = subprocess.run(cmd, cwd=str(tree), env=env, capture_output=True, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{what} in {tree} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="28de1e8", help="commit with the grid's own loop")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cores", default="0", help="taskset core list for every process")
    parser.add_argument("--only", choices=("grid", "trajectory"))
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "hpo_loop"))
    args = parser.parse_args(argv)
    before = _worktree(args.before)
    trees = {"before": before, "after": ROOT}
    runs = {w: {"before": [], "after": []} for w in ("grid", "trajectory")
            if args.only in (None, w)}
    try:
        for rep in range(args.reps):
            for what in runs:
                order = ("before", "after") if rep % 2 == 0 else ("after", "before")
                for name in order:
                    r = _measure(trees[name], what, args.cores)
                    runs[what][name].append(r)
                    print(f"{what:10s} rep {rep + 1} {name:6s} wall {r['wall']:7.2f} s  "
                          f"CT {r['ct']:7.3f} s", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                       check=False)
    rows, report = [], {}
    for what, by in runs.items():
        wall = {n: statistics.median(r["wall"] for r in by[n]) for n in by}
        ct = {n: statistics.median(r["ct"] for r in by[n]) for n in by}
        accs = [r["acc"] for n in by for r in by[n]]
        same = all(a == accs[0] for a in accs)
        worst = max(abs(a[k] - accs[0][k]) for a in accs for k in accs[0])
        report[what] = {"wall_median": wall, "ct_median": ct, "same_objectives": same,
                        "max_acc_difference": worst,
                        "wall_ratio_after_over_before": wall["after"] / wall["before"],
                        "ct_ratio_after_over_before": ct["after"] / ct["before"], "runs": by}
        rows.append(f"| {what} | {wall['before']:.2f} | {wall['after']:.2f} | "
                    f"{wall['after'] / wall['before']:.2f} | {ct['before']:.3f} | "
                    f"{ct['after']:.3f} | {ct['after'] / ct['before']:.2f} | "
                    f"{'yes' if same else f'no (max diff {worst:.2g})'} |")
    machine = f"{_cpu_name()}, {os.cpu_count()} cores, taskset {args.cores}"
    md = "\n".join([
        "# HPO grid: own loop (before) vs `train_federated` (after)", "",
        f"`.venv/bin/python benchmarks/bench_hpo_loop.py --before {args.before} "
        f"--reps {args.reps}`, {time.strftime('%Y-%m-%d')}, {machine}. Medians of "
        f"{args.reps} alternating runs, each in a fresh process. grid: the quick grid "
        "(8 points, 12-speaker corpus), wall of `run_grid`; trajectory: one full-size point "
        "(NLE 1, LR 0.01, BS 32, CD 0.5) to NGE 50, wall of `evaluate_point`. CT: the sum of "
        "per-round training times (paper 000's objective).", "",
        "| measure | wall before (s) | wall after (s) | after/before | CT before (s) | "
        "CT after (s) | after/before | same Acc |",
        "|---|---|---|---|---|---|---|---|", *rows, ""])
    print("\n" + md)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return 0 if all(r["same_objectives"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
