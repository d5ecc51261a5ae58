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
* :mod:`~tff_ser.hpo.cli` -- ``tff-ser hpo run | worker | report``.

Nothing here imports TensorFlow or TFF at import time.
"""
from tff_ser.hpo.space import (PAPER_000_DEFAULT, PAPER_000_GRID, QUICK_GRID, VARIABLES,
                               GridSpace, get_grid, trajectory_key)

__all__ = ["GridSpace", "PAPER_000_GRID", "QUICK_GRID", "PAPER_000_DEFAULT", "VARIABLES",
           "get_grid", "trajectory_key"]
