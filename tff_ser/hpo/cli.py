"""``tff-ser hpo run | worker | report``: paper 000's grid from the command line.

* ``tff-ser hpo run [--quick] [--workers N]`` creates the study (or opens
  it), enqueues every grid point not yet there, runs N local workers until
  the grid is finished, then writes the report;
* ``tff-ser hpo worker --storage URL`` joins an existing study -- what a
  second machine runs against a shared PostgreSQL URL;
* ``tff-ser hpo report`` writes tables, figures and ``summary.md``;
* ``tff-ser hpo confirm`` re-reads the finished grid on a selection / test
  split of the held-out speakers and retrains its answers with several seeds
  (:mod:`tff_ser.hpo.confirm`).

Registered into the main parser by :func:`add_hpo_parser`.
"""
from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import time


def _common(p, *, storage_required: bool = False):
    p.add_argument("--quick", action="store_true",
                   help="the 8-point CI grid on the 12-speaker test corpus")
    p.add_argument("--dir", default=None,
                   help="study folder (default results/hpo_grid; quick: "
                        "results/_scratch/hpo_grid-quick); trajectories and the default "
                        "journal live here")
    p.add_argument("--storage", default=None, required=storage_required,
                   help="journal file path or RDB URL (postgresql://user:pass@host/db needs "
                        "`pip install psycopg2-binary`); default $TFF_SER_HPO_STORAGE, else "
                        "<dir>/study.journal")
    p.add_argument("--study", default=None, help="study name (default paper000_grid[_quick])")


def add_hpo_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``hpo run|worker|report`` under the ``tff-ser`` parser's subparsers."""
    from tff_ser.hpo.objective import DEFAULT_CHECKPOINT_EVERY, DEFAULT_SERVER_LR, ENGINES
    from tff_ser.hpo.storage import DEFAULT_GRACE_PERIOD, DEFAULT_HEARTBEAT_INTERVAL
    from tff_ser.hpo.readout import SAMPLERS
    p = subparsers.add_parser("hpo", help="paper 000's 576-point hyperparameter grid (Optuna)")
    sub = p.add_subparsers(dest="hpo_cmd", required=True)

    run = sub.add_parser("run", help="create/enqueue the grid study and finish it locally")
    _common(run)
    run.add_argument("--normalization", choices=("pooled", "federated", "per_client"),
                     default="pooled",
                     help="feature standardization of the task (default pooled, paper 000's); "
                          "another is its own study in results/hpo_<grid>-<normalization>")
    run.add_argument("--workers", type=int, default=1,
                     help="local worker processes (0: evaluate in this process)")
    run.add_argument("--threads", type=int, default=None,
                     help="TensorFlow threads per worker (default: cores / workers)")
    run.add_argument("--data-dir", default=None, help="corpus directory (default: data/generated, or data/CREMA-D where it exists)")
    run.add_argument("--engine", choices=ENGINES, default="batched",
                     help="batched (Dense/Dropout models, default) or tf (any model), both with "
                          "trajectories; tff (one full run per point: the reference, slow)")
    run.add_argument("--server-lr", type=float, default=DEFAULT_SERVER_LR,
                     help="server Adam learning rate, fixed over the grid")
    run.add_argument("--seed", type=int, default=0, help="training seed")
    run.add_argument("--no-report", action="store_true", help="do not write the report")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(handler=_cmd_run)

    worker = sub.add_parser("worker", help="join an existing grid study and evaluate points")
    _common(worker)
    worker.add_argument("--data-dir", default=None,
                        help="corpus directory, if not where the study's creator had it")
    worker.add_argument("--threads", type=int, default=None, help="TensorFlow threads")
    worker.add_argument("--heartbeat-interval", type=int, default=DEFAULT_HEARTBEAT_INTERVAL)
    worker.add_argument("--grace-period", type=int, default=DEFAULT_GRACE_PERIOD,
                        help="seconds without a heartbeat before a running point is retried")
    worker.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY,
                        help="save trajectories every this many rounds")
    worker.add_argument("--max-trials", type=int, default=None)
    worker.add_argument("--no-wait", action="store_true",
                        help="exit when the queue is empty instead of waiting for running "
                             "points (whose retries this worker would pick up)")
    worker.add_argument("--no-progress", action="store_true")
    worker.set_defaults(handler=_cmd_worker)

    report = sub.add_parser("report", help="tables, figures and summary.md of a study")
    _common(report)
    report.add_argument("--out", default=None, help="report folder (default: --dir)")
    report.add_argument("--samplers", default=",".join(SAMPLERS),
                        help=f"comma-separated, from {SAMPLERS}")
    report.add_argument("--sampler-seeds", type=int, default=5)
    report.add_argument("--budget", type=int, default=None,
                        help="distinct points per sampler run (default: a third of the grid)")
    report.set_defaults(handler=_cmd_report)

    confirm = sub.add_parser(
        "confirm", help="the grid's answers over seeds, chosen on selection speakers and "
                        "reported on test speakers the selection never saw (73 / 9 / 9)")
    _common(confirm)
    confirm.add_argument("--out", default=None,
                         help="folder (default results/hpo_confirm; quick: "
                              "results/_scratch/hpo_confirm-quick)")
    confirm.add_argument("--seeds", type=int, nargs="+", default=None,
                         help="training seeds (default 0 1 2 3 4)")
    confirm.add_argument("--top", type=int, default=None,
                         help="candidates by selection accuracy (default 10)")
    confirm.add_argument("--split-seed", type=int, default=None,
                         help="seed of the selection / test draw (default 0)")
    confirm.add_argument("--data-dir", default=None)
    confirm.set_defaults(handler=_cmd_confirm)

    repair = sub.add_parser(
        "repair", help="cut a study journal with a bad record back to its sound records "
                       "(the cut lines are kept in <journal>.torn)")
    _common(repair)
    repair.set_defaults(handler=_cmd_repair)

    privacy = sub.add_parser(
        "privacy", help="beyond paper 000: recipe x DP noise x CD, objectives accuracy, "
                        "epsilon and bytes (3-objective Pareto front)")
    privacy.add_argument("--quick", action="store_true",
                         help="the 12-speaker test corpus and a 1 x 2 x 2 space (CI size)")
    privacy.add_argument("--data-dir", default=None)
    privacy.add_argument("--out", default=None,
                         help="folder (default results/hpo_privacy; quick: "
                              "results/_scratch/hpo_privacy-quick)")
    privacy.add_argument("--rounds", type=int, default=None, help="NGE of every point")
    privacy.add_argument("--no-progress", action="store_true")
    privacy.set_defaults(handler=_cmd_privacy)
    return p


def _cmd_privacy(args) -> int:
    import dataclasses
    from tff_ser.task import TaskRecipe
    from tff_ser.hpo.privacy_study import (QUICK_PRIVACY_SPACE, PrivacySpace, run_privacy_study,
                                           write_privacy_report)
    space = QUICK_PRIVACY_SPACE if args.quick else PrivacySpace()
    if args.rounds:
        space = dataclasses.replace(space, rounds=args.rounds)
    out = pathlib.Path(args.out or ("results/_scratch/hpo_privacy-quick" if args.quick
                                    else "results/hpo_privacy"))
    out.mkdir(parents=True, exist_ok=True)
    task = TaskRecipe("mlp", partition="by_speaker").prepare(
        size="small" if args.quick else "full", data_dir=args.data_dir,
        progress=not args.no_progress)
    print(task.info["description"], flush=True)
    t0 = time.perf_counter()
    study = run_privacy_study(task, space, storage=f"sqlite:///{out / 'study.db'}",
                              progress=not args.no_progress)
    files = write_privacy_report(out, study, space, task=task, command=_command_line(),
                                 wall_seconds=time.perf_counter() - t0)
    for key, path in files.items():
        print(f"{key}: {path}")
    return 0


def _cmd_confirm(args) -> int:
    from tff_ser.hpo import confirm
    _, directory, storage, name = _locate(args)
    try:
        outcome = confirm.run_confirmation(
            quick=args.quick, grid_dir=directory, storage=storage, study_name=name,
            out_dir=args.out,
            seeds=args.seeds if args.seeds is not None else confirm.DEFAULT_SEEDS,
            top=args.top if args.top is not None else confirm.DEFAULT_TOP,
            split_seed=args.split_seed if args.split_seed is not None
            else confirm.DEFAULT_SPLIT_SEED, data_dir=args.data_dir, command=_command_line())
    except ValueError as exc:
        from tff_ser.hpo.storage import mask_url
        print(f"cannot confirm the grid in {mask_url(storage)}: {exc}", file=sys.stderr)
        return 2
    chosen = outcome["answers"]["chosen"]
    print(f"chosen on the selection speakers: "
          f"{' '.join(f'{k}{chosen[k]:g}' for k in ('NGE', 'NLE', 'LR', 'BS', 'CD'))}; "
          f"test accuracy {chosen['test mean']:.3f} over {int(chosen['seeds'])} seed(s)")
    print(f"summary: {outcome['out_dir']}/summary.md")
    return 0


def _locate(args):
    """(space, directory, storage, study name) from the common arguments."""
    from tff_ser.hpo.space import get_grid
    from tff_ser.hpo.storage import DEFAULT_DIRS, STUDY_NAMES, default_storage
    space = get_grid(args.quick)
    directory, study = DEFAULT_DIRS[space.name], STUDY_NAMES[space.name]
    normalization = getattr(args, "normalization", "pooled")
    if normalization != "pooled":  # its own grid: its own folder and study
        import dataclasses
        space = dataclasses.replace(space, name=f"{space.name}-{normalization}",
                                    normalization=normalization)
        directory, study = f"{directory}-{normalization}", f"{study}_{normalization}"
    directory = args.dir or directory
    import os
    from tff_ser.hpo.workers import STORAGE_ENV
    storage = args.storage or os.environ.get(STORAGE_ENV) or default_storage(directory)
    return space, directory, storage, args.study or study


def _command_line() -> str:
    return "tff-ser " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv and sys.argv[0].endswith(("tff-ser", "cli.py")) else " ".join(sys.argv)


def _cmd_run(args) -> int:
    from tff_ser.hpo.objective import RunSettings
    from tff_ser.hpo.storage import mask_url
    from tff_ser.hpo.readout import report_study, study_counts
    from tff_ser.hpo.workers import run_grid
    from tff_ser.rundir import check_writable
    space, directory, storage, name = _locate(args)
    if args.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {args.workers}")
    check_writable(directory, need_bytes=2_000_000 if args.quick else 200_000_000,
                   what="HPO folder (--dir)")
    settings = RunSettings(seed=args.seed, server_lr=args.server_lr, engine=args.engine)
    print(f"grid {space.name}: {len(space)} points, {len(space.trajectories())} trajectories; "
          f"study {name!r} in {mask_url(storage)}; {args.workers} worker(s)", flush=True)
    outcome = run_grid(quick=args.quick, storage=storage, directory=directory,
                       workers=args.workers, data_dir=args.data_dir, settings=settings,
                       study_name=name, threads=args.threads, progress=not args.no_progress,
                       space=space)
    counts = study_counts(outcome.study)
    states = {k: v for k, v in counts.items() if k != "points_complete"}
    print(f"corpus: {outcome.corpus}")
    print(f"enqueued {outcome.enqueued} new point(s); points complete "
          f"{counts['points_complete']} of {len(space)}; trials by state {states}; "
          f"wall time {outcome.wall_seconds:.0f} s", flush=True)
    if counts["points_complete"] < len(space):
        print(f"{len(space) - counts['points_complete']} point(s) unfinished; see "
              f"{directory}/logs and run the same command again", file=sys.stderr)
    if not args.no_report:
        files = report_study(storage, name, directory=directory, command=_command_line())
        print(f"report: {files['summary']}")
    for i, code in enumerate(outcome.worker_returncodes):
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            print(f"worker {i} {how} (log: {directory}/logs/worker-{i}.log); its running "
                  "trial was failed and its point re-queued for the other workers", flush=True)
    # The exit status says whether the study is complete, not whether every
    # worker lived: a dead worker's point is finished by the others.
    return 0 if counts["points_complete"] >= len(space) else 1


def _cmd_worker(args) -> int:
    from tff_ser.hpo.workers import run_worker
    _, directory, storage, name = _locate(args)
    t0 = time.perf_counter()
    summary = run_worker(storage, name, directory=directory, data_dir=args.data_dir,
                         threads=args.threads, progress=not args.no_progress,
                         heartbeat_interval=args.heartbeat_interval,
                         grace_period=args.grace_period, checkpoint_every=args.checkpoint_every,
                         max_trials=args.max_trials, wait_for_running=not args.no_wait)
    print(f"worker done in {time.perf_counter() - t0:.0f} s: {len(summary.completed)} point(s) "
          f"evaluated, {summary.rounds_computed} round(s) trained, "
          f"{len(summary.duplicates)} duplicate(s) skipped, "
          f"{len(summary.recovered)} stale trial(s) re-queued", flush=True)
    return 0


def _cmd_repair(args) -> int:
    import os
    from tff_ser.hpo.journal import check_journal, repair_journal
    from tff_ser.hpo.storage import is_rdb_url
    _, _, storage, _ = _locate(args)
    if is_rdb_url(storage):
        raise ValueError("hpo repair mends journal files; an RDB storage is its database's "
                         "to repair")
    if not os.path.isfile(storage):
        raise FileNotFoundError(f"no study journal at {storage}; pass --dir or --storage")
    done = repair_journal(storage, cut_middle=True)
    check = check_journal(storage)
    print(done or f"{storage}: sound, {check.records} record(s); nothing to repair")
    return 0


def _cmd_report(args) -> int:
    from tff_ser.hpo.readout import SAMPLERS, report_study
    _, directory, storage, name = _locate(args)
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        print(f"unknown sampler(s) {unknown}; choose from {SAMPLERS}", file=sys.stderr)
        return 2
    try:
        files = report_study(storage, name, directory=directory, out_dir=args.out,
                             samplers=samplers, sampler_seeds=range(args.sampler_seeds),
                             budget=args.budget, command=_command_line())
    except ValueError as exc:  # no such study, or no point finished yet
        from tff_ser.hpo.storage import mask_url
        print(f"cannot report on study {name!r} in {mask_url(storage)}: {exc}", file=sys.stderr)
        return 2
    for key, path in files.items():
        print(f"{key}: {path}")
    return 0
