"""The experiments by name, the ``tff-ser experiment`` command and the main job.

``tff-ser experiment NAME [--quick] [--data-dir DIR] [--out DIR]`` runs one
of :data:`EXPERIMENTS` through :func:`tff_ser.experiments.runner.run_experiment`
and writes its results folder (default ``results/NAME``; quick runs go to
``results/_scratch/NAME-quick`` so they never overwrite a full run's results).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import sys
import re
from typing import Dict, Optional, Sequence

from tff_ser.plugins import DiscoveredRegistry


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: its full-size and quick configs.

    Attributes
    ----------
    name : str
    full : experiment config
        The paper's settings.
    quick : experiment config
        Small corpus, few rounds: minutes on a laptop, what CI runs.
    summary : str
        One line for ``--help`` and listings.
    """

    name: str
    full: object
    quick: object
    summary: str

    def config(self, quick: bool = False):
        return self.quick if quick else self.full


#: Registered experiments by name (``tff-ser experiment NAME``); names follow
#: ``paper<NNN>_<what>`` (``paper001_exp1``, ``paper000_per_speaker``).
EXPERIMENTS: Dict[str, Experiment] = DiscoveredRegistry()

#: How an experiment's name reads: the baseline it belongs to, then what it is.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*_[a-z0-9_]+$")


def register_experiment(experiment: Experiment, *, replace: bool = False) -> Experiment:
    """Register ``experiment`` (``tff-ser experiment NAME``, notebooks, the registry).

    Its name must follow ``<baseline>_<what>`` (lower case), start with the
    name of its configs, and not be taken (unless ``replace=True``).
    """
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register_experiment takes an Experiment; got {type(experiment).__name__}")
    name = experiment.name
    if not NAME_PATTERN.match(name):
        raise ValueError(f"experiment names read '<baseline>_<what>' in lower case "
                         f"(e.g. 'mypaper_table2'); got {name!r}")
    for variant in (experiment.full, experiment.quick):
        if getattr(variant, "name", name) != name:
            raise ValueError(f"experiment {name!r} holds a config named {variant.name!r}; "
                             "give both variants the experiment's name")
    if dict.__contains__(EXPERIMENTS, name) and not replace \
            and dict.__getitem__(EXPERIMENTS, name) != experiment:
        raise ValueError(f"experiment {name!r} is registered already; pass replace=True to "
                         "register it again")
    dict.__setitem__(EXPERIMENTS, name, experiment)
    return experiment


#: The main job (``tff-ser run`` / ``make run``): paper 000's per-speaker
#: federation at full size, 3 seeds, beside the centralized MLP.
MAIN_JOB = "paper000_per_speaker"

#: Where the main job writes (always retrained; never a committed results folder).
MAIN_JOB_OUT = os.path.join("results", "_scratch", "main_job")


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``; ValueError listing the names otherwise."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)}") from None


def default_out_dir(name: str, quick: bool = False) -> str:
    """``results/NAME`` for full runs, ``results/_scratch/NAME-quick`` for quick ones."""
    return os.path.join("results", "_scratch", f"{name}-quick") if quick \
        else os.path.join("results", name)


def experiment_command(name: str, *, quick: bool = False, data_dir: Optional[str] = None,
                       out: Optional[str] = None, engine: Optional[str] = None,
                       seeds=None, only=None, models=None) -> str:
    """The ``tff-ser experiment`` command line that runs these arguments."""
    parts = ["tff-ser", "experiment", name]
    if quick:
        parts.append("--quick")
    if engine:
        parts += ["--engine", engine]
    if seeds:
        parts += ["--seeds"] + [str(s) for s in seeds]
    if models:
        parts += ["--models"] + list(models)
    if data_dir:
        parts += ["--data-dir", data_dir]
    if out:
        parts += ["--out", out]
    for pattern in only or ():
        parts += ["--only", pattern]
    return " ".join(shlex.quote(p) for p in parts)


def add_experiment_parser(subparsers) -> None:
    """Add ``experiment`` to the ``tff-ser`` subcommands."""
    listing = "\n".join(f"  {e.name}: {e.summary}" for e in EXPERIMENTS.values())
    import argparse
    p = subparsers.add_parser(
        "experiment", help="run a paper experiment and write results/NAME",
        description=f"Run one paper experiment.\n\nexperiments:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME",
                   help="one of: " + ", ".join(EXPERIMENTS))
    p.add_argument("--quick", action="store_true",
                   help="the quick variant: small corpus, few rounds (minutes)")
    p.add_argument("--data-dir", default=None,
                   help="corpus directory (default: data/CREMA-D if present, else the "
                        "generated corpus)")
    p.add_argument("--out", default=None,
                   help="results folder (default results/NAME; quick: "
                        "results/_scratch/NAME-quick)")
    from tff_ser.engines.base import ENGINE_NAMES  # the registry (light: no TensorFlow)
    p.add_argument("--engine", choices=ENGINE_NAMES, default=None,
                   help="FedAvg engine (default: the config's): tff (TFF's process, the "
                        "reference), auto (the fastest engine for each model), batched "
                        "(Dense/Dropout models such as the mlp), tf (plain TensorFlow, any model), "
                        "jax (Keras 3 on JAX, KERAS_BACKEND=jax: all clients at once)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="training seeds of every run (default: the config's, e.g. 0 1 2; "
                        "run ids end in -s<seed>)")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="only these of the experiment's models (e.g. --models mlp on a noisy "
                        "copy of the corpus): the summary covers them alone")
    p.add_argument("--fresh", action="store_true",
                   help="retrain every run even if a finished one with the same settings is "
                        "saved in the results folder")
    p.add_argument("--only", action="append", default=None, metavar="PATTERN",
                   help="train only the runs whose id matches this shell pattern (repeatable, "
                        "e.g. --only 'lstm-*'); the others are read back if saved, and the "
                        "table, figures and summary are written once every run is saved")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs at once, each in its own process with cores/N threads "
                        "(-1: one per core; the metrics do not change; default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_experiment)


def _cmd_experiment(args) -> int:
    from tff_ser.experiments.runner import run_experiment
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        print(f"error: --data-dir {args.data_dir} is not a directory; give a CREMA-D "
              "directory (with AudioWAV/) or leave it out to use the generated corpus",
              file=sys.stderr)
        return 2
    from tff_ser.experiments.configs import with_overrides
    config = get_experiment(args.name).config(args.quick)
    if args.engine:
        config = with_overrides(config, engine=args.engine)
    if args.seeds:
        config = with_overrides(config, seeds=tuple(args.seeds), seed_counts=())
    if args.models:
        try:
            config = only_models(config, args.models)
        except ValueError as exc:
            print(f"error: --models: {exc}", file=sys.stderr)
            return 2
    out = args.out or default_out_dir(args.name, args.quick)
    command = experiment_command(args.name, quick=args.quick, data_dir=args.data_dir,
                                 out=args.out, engine=args.engine, seeds=args.seeds,
                                 only=args.only, models=args.models)
    outcome = run_experiment(config, out, data_dir=args.data_dir, command=command,
                             progress=not args.no_progress, reuse=not args.fresh,
                             only=args.only, jobs=args.jobs)
    _print_outcome(outcome)
    return 0


def only_models(config, models: Sequence[str]):
    """``config`` running only ``models`` of its own (in its order); ValueError naming them
    otherwise, or when the experiment's runs are not declared per model."""
    from tff_ser.experiments.configs import with_overrides
    own = tuple(config.models)
    unknown = [m for m in models if m not in own]
    if unknown:
        raise ValueError(f"{config.name} has no model {', '.join(map(repr, unknown))}; its "
                         f"models are {', '.join(own)}")
    if "models" not in {f.name for f in dataclasses.fields(config)}:
        raise ValueError(f"{config.name} declares its runs across its models together "
                         "(they read each other's results); run it whole, or pick runs with "
                         "--only")
    return with_overrides(config, models=tuple(m for m in own if m in models),
                          seed_counts=tuple((m, n) for m, n in config.seed_counts if m in models))


def _print_outcome(outcome) -> None:
    from tff_ser.experiments.report import PARTIAL_FILE, results_view
    print(outcome.corpus)
    if outcome.missing:
        print(f"not finished: {len(outcome.results)} run(s) saved, still missing: "
              f"{', '.join(outcome.missing)} (see {outcome.out_dir / PARTIAL_FILE}); "
              f"no results table or summary written yet")
    table = results_view(outcome.table).to_string(
        index=False, float_format=lambda v: f"{v:.3f}")
    print(table)
    if outcome.reused:
        print(f"read back from an earlier run (not retrained): {', '.join(outcome.reused)}")
    if outcome.missing:
        print(f"wall time {outcome.wall_seconds:.0f} s; runs saved in {outcome.out_dir}")
    else:
        print(f"wall time {outcome.wall_seconds:.0f} s; results in {outcome.out_dir} "
              f"(summary: {outcome.summary_path})")


def main_job_table(outcome):
    """The main job's short table: per setting, mean ± sd over seeds and the F1 interval."""
    from tff_ser.experiments.report import results_view
    view = results_view(outcome.table)
    return view[["model", "setup", "clients", "seeds", "accuracy", "UAR", "F1 (macro)",
                 "F1 95 % CI", "train time (s)"]]


#: Processes the main job trains its runs in (-1: one per core).
MAIN_JOB_JOBS = -1


def run_main_job(data_dir: Optional[str] = None, out: Optional[str] = None,
                 progress: bool = False) -> int:
    """The main job: paper 000's per-speaker federation, a real result in minutes.

    Trains :data:`MAIN_JOB` at full size (one client per training speaker, 73
    clients on the generated corpus; the MLP at paper 000's best point NGE 50,
    NLE 5, LR 0.01, BS 16, CD 0.5, on the batched engine) and the centralized
    MLP, each with 3 seeds, on the 18 held-out speakers; the corpus is
    generated on first use (or ``data_dir`` / ``data/CREMA-D`` is read).  Writes
    ``results/_scratch/main_job`` (always retrained: this is the demonstration
    that training works), prints the table, the reading over seeds, where the
    figures are and what to run next.  Returns 0.
    """
    from tff_ser.experiments.report import seed_comparisons
    from tff_ser.experiments.runner import run_experiment
    experiment = get_experiment(MAIN_JOB)
    out = out or MAIN_JOB_OUT
    command = "tff-ser run" + (f" --data-dir {shlex.quote(data_dir)}" if data_dir else "")
    # One MLP run keeps one core busy, so the 6 runs train two at a time (same metrics).
    outcome = run_experiment(experiment.full, out, data_dir=data_dir, command=command,
                             reuse=False, progress=progress, checkpoint=False,
                             jobs=MAIN_JOB_JOBS)
    config = experiment.full
    print(f"\n{config.paper}: one client per training speaker vs the centralized MLP")
    print(outcome.corpus)
    print(main_job_table(outcome).to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    conditions = list(dict.fromkeys(outcome.table["condition"]))
    for line in seed_comparisons(outcome.table, config.comparison_pairs(conditions)):
        print(line[2:])
    print(f"\nwall time {outcome.wall_seconds:.0f} s")
    print(f"summary:  {outcome.summary_path}")
    for name, path in outcome.figures.items():
        print(f"figure:   {path}")
    print(f"per run:  {outcome.out_dir / 'runs'}/<run>/result.json, history.csv")
    print("\nnext: `make test`; the papers' experiments: `tff-ser experiment --help`; "
          "notebooks/ (01 corpus, 02 paper 001 Exp 1, 03 Exp 2, 04 HPO grid, 05 this job, "
          "06 algorithms and privacy, 07 each speaker's own model, 08 distillation, 09 EmotionNAS, "
          "10 paper 004's FedAvg with SGD); your own run: `tff-ser train --help`")
    return 0
