"""Paper 000's hyperparameter optimisation: the 576-point grid, run fast and shared.

* :mod:`~tff_ser.hpo.space` -- the grid (NGE x NLE x LR x BS x CD) and a
  quick CI grid;
* :mod:`~tff_ser.hpo.objective` -- one point's accuracy and computation
  time on the batched engine, reusing one training *trajectory* for the
  four NGE values of each (NLE, LR, BS, CD);
* :mod:`~tff_ser.hpo.study` -- the Optuna study: every point enqueued once,
  workers on one or several machines, killed workers recovered; TPE /
  NSGA-II / random compared by lookup;
* :mod:`~tff_ser.hpo.report` and :mod:`~tff_ser.hpo.plots` -- Tables I-II,
  Figs 2-4, sensitivity and sampler comparison;
* :mod:`~tff_ser.hpo.confirm` -- the held-out test protocol: the grid's
  answers chosen on selection speakers, reported on test speakers, over seeds;
* :mod:`~tff_ser.hpo.cli` -- ``tff-ser hpo run | worker | report | confirm``.

The public API (what notebook 04 and users' scripts import) is this
package's ``__all__``; the study and report functions load on first use.
Nothing here imports TensorFlow or TFF at import time.
"""
from typing import NamedTuple, Optional

from tff_ser.hpo.space import (PAPER_000_DEFAULT, PAPER_000_GRID, QUICK_GRID, VARIABLES,
                               GridSpace, get_grid, trajectory_key)

#: name -> module it lives in (loaded lazily by __getattr__).
_LAZY = {name: "tff_ser.hpo.study" for name in (
    "run_grid", "run_worker", "existing_study", "load_study", "report_study", "study_counts",
    "completed_points", "grid_table", "default_storage", "DEFAULT_DIRS", "STUDY_NAMES")}
_LAZY.update({name: "tff_ser.hpo.report" for name in (
    "soo_table", "pareto_table", "paper_tables", "sensitivity_table", "sensitivity_summary")})
_LAZY.update({name: "tff_ser.hpo.confirm" for name in (
    "run_confirmation", "split_heldout_speakers")})
_LAZY.update({name: "tff_ser.hpo.privacy_study" for name in (
    "run_privacy_study", "PrivacySpace", "QUICK_PRIVACY_SPACE")})

__all__ = ["GridSpace", "PAPER_000_GRID", "QUICK_GRID", "PAPER_000_DEFAULT", "VARIABLES",
           "get_grid", "trajectory_key", "GridLocation", "grid_location", *sorted(_LAZY)]


class GridLocation(NamedTuple):
    """Where a grid study lives: its space, folder, storage and study name."""

    space: GridSpace
    directory: str
    storage: str
    study_name: str


def grid_location(quick: bool = False, directory: Optional[str] = None,
                  storage: Optional[str] = None) -> GridLocation:
    """Paper 000's grid (or the quick one) and where ``tff-ser hpo run`` keeps it.

    ``directory`` defaults to ``results/hpo_grid`` (quick:
    ``results/_scratch/hpo_grid-quick``), ``storage`` to its journal file.
    """
    from tff_ser.hpo.study import DEFAULT_DIRS, STUDY_NAMES, default_storage
    space = get_grid(quick)
    directory = directory or DEFAULT_DIRS[space.name]
    return GridLocation(space, directory, storage or default_storage(directory),
                        STUDY_NAMES[space.name])


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tff_ser.hpo' has no attribute {name!r}")
