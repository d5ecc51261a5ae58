"""Paper 000's hyperparameter optimisation: the 576-point grid, run fast and shared.

* :mod:`~tff_ser.hpo.space` -- the grid (NGE x NLE x LR x BS x CD) and a
  quick CI grid;
* :mod:`~tff_ser.hpo.objective` -- one point's accuracy and computation
  time on the batched engine, reusing one training *trajectory* for the
  four NGE values of each (NLE, LR, BS, CD);
* the Optuna study, which any number of workers on any machines finish once:
  :mod:`~tff_ser.hpo.storage` (storages, the study, its queue of points),
  :mod:`~tff_ser.hpo.recovery` (killed workers), :mod:`~tff_ser.hpo.workers`
  (workers, local worker processes), :mod:`~tff_ser.hpo.readout` (tables,
  samplers compared by lookup, the report);
* :mod:`~tff_ser.hpo.report` and :mod:`~tff_ser.hpo.plots` -- Tables I-II,
  Figs 2-4, sensitivity and sampler comparison;
* :mod:`~tff_ser.hpo.confirm` -- the held-out test protocol: the grid's
  answers chosen on selection speakers, reported on test speakers, over seeds;
* :mod:`~tff_ser.hpo.cli` -- ``tff-ser hpo run | worker | report | confirm``.

The study
Storage
-------
A study lives in an Optuna storage: by default a journal file
``<dir>/study.journal`` (:class:`optuna.storages.JournalStorage` over
:class:`optuna.storages.journal.JournalFileBackend`, safe for several
processes on one machine or on a shared file system), or any RDB URL
(``postgresql://user:pass@host/db`` -- needs ``pip install psycopg2-binary``
-- or ``sqlite:///file.db``), which is how workers on several machines share
one study.

Every point exactly once (Optuna's public API only)
---------------------------------------------------
:func:`create_grid_study` makes a two-objective study (Acc maximised, CT
minimised) and **enqueues every grid point once** (``study.enqueue_trial``,
the point also kept as the user attribute ``tff_ser:point``): a point
already present as a waiting, running or finished trial is skipped, so
creating the study again is a no-op.  Workers (:func:`run_worker`) run
``study.optimize(objective, n_trials=1)`` while trials wait: ``optimize``
pops an enqueued trial (Optuna's own atomic WAITING -> RUNNING transition),
runs the RDB heartbeat and tells the result.  No sampler is ever asked for a
point: a trial that was not popped from the queue (two workers raced for
the last waiting one) and a popped trial whose point is already finished, or
running under a lower-numbered trial, are closed as PRUNED without
training (``not_queued`` / ``duplicate_of``).  The queue order
(:meth:`GridSpace.points`) keeps concurrent workers on different
trajectories.

Killed workers
--------------
A running trial records who runs it (host, boot time, pid) and a heartbeat:

* RDB storages support Optuna's heartbeat (``heartbeat_interval`` /
  ``grace_period`` of :class:`~optuna.storages.RDBStorage`);
  :func:`optuna.storages.fail_stale_trials` fails stale trials and the
  storage's callback re-enqueues their points;
* :class:`~optuna.storages.JournalStorage` has no heartbeat in Optuna 5
  (it is not a ``BaseHeartbeat``), so workers write a ``tff_ser:heartbeat``
  user attribute every ``heartbeat_interval`` seconds instead and treat a
  trial silent for ``grace_period`` as stale;
* on either storage, a trial whose worker ran on this machine and whose
  process is gone is stale at once (no waiting out the grace period).

A stale trial is failed with ``study.tell(number, state=FAIL)`` (exactly one
worker wins that transition: the others' tell raises) and its point is
enqueued again (``retry_of``).  The retry resumes the point's
trajectory from its last checkpoint (:mod:`tff_ser.hpo.objective`), so a
kill costs at most ``checkpoint_every`` rounds; finished points are never
recomputed.  A point whose every trial failed (e.g. an error) is queued again
by the next :func:`create_grid_study` (``tff-ser hpo run``).

Samplers
--------
:func:`compare_samplers` runs TPE, NSGA-II and random search on the same
categorical space.  The objective is deterministic per point, so those
studies are scored by **looking up the grid's recorded values**, not by
training again.

The public API (what notebook 04 and users' scripts import) is this
package's ``__all__``; the study and report functions load on first use.
Nothing here imports TensorFlow or TFF at import time.
"""
from typing import NamedTuple, Optional

from tff_ser.hpo.space import (PAPER_000_DEFAULT, PAPER_000_GRID, QUICK_GRID, VARIABLES,
                               GridSpace, get_grid, trajectory_key)

#: name -> module it lives in (loaded lazily by __getattr__).
_LAZY = {name: "tff_ser.hpo.storage" for name in (
    "existing_study", "load_study", "completed_points", "default_storage", "DEFAULT_DIRS",
    "STUDY_NAMES")}
_LAZY.update({name: "tff_ser.hpo.workers" for name in ("run_grid", "run_worker")})
_LAZY.update({name: "tff_ser.hpo.readout" for name in (
    "report_study", "study_counts", "grid_table")})
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
    from tff_ser.hpo.storage import DEFAULT_DIRS, STUDY_NAMES, default_storage
    space = get_grid(quick)
    directory = directory or DEFAULT_DIRS[space.name]
    return GridLocation(space, directory, storage or default_storage(directory),
                        STUDY_NAMES[space.name])


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tff_ser.hpo' has no attribute {name!r}")
