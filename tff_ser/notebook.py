"""The set-up every numbered notebook starts with, in one call.

>>> from tff_ser.notebook import setup          # doctest: +SKIP
>>> nb = setup(QUICK, DATA_DIR, OUT_DIR, experiment="paper001_exp2")  # doctest: +SKIP

It works from the repository root wherever Jupyter was started (so ``data/``
and ``results/`` are the project's own), prints the package version and
where it writes, and returns the settings the notebook's cells use.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Optional


@dataclasses.dataclass(frozen=True)
class NotebookSetup:
    """What a notebook runs on.

    Attributes
    ----------
    root : pathlib.Path
        The repository root (the working directory from now on).
    quick : bool
        The quick variant (small corpus, few rounds: a smoke run).
    data_dir : str or None
        Corpus directory; None: ``data/CREMA-D`` if present, else the generated corpus.
    out_dir : str or None
        The results folder (for an experiment notebook).
    experiment : registered experiment or None
    config : experiment config or None
        ``experiment.config(quick)``.
    """

    root: pathlib.Path
    quick: bool
    data_dir: Optional[str]
    out_dir: Optional[str]
    experiment: object = None
    config: object = None


def find_root(start: Optional[os.PathLike] = None) -> pathlib.Path:
    """The repository root: ``start`` (default the working directory) or a parent of it
    holding ``tff_ser/`` and ``notebooks/``."""
    here = pathlib.Path(start or pathlib.Path.cwd()).resolve()
    # /content/tff_ser: where the notebooks' Colab cell clones the repository
    for candidate in (here, *here.parents, pathlib.Path("/content/tff_ser")):
        if (candidate / "tff_ser").is_dir() and (candidate / "notebooks").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no tff_ser repository at or above {here}: open the notebook from the repository's "
        "notebooks/ folder (or its root), e.g. after `git clone` and `make setup`")


def setup(quick: bool = False, data_dir: Optional[str] = None, out_dir: Optional[str] = None,
          *, experiment: Optional[str] = None) -> NotebookSetup:
    """Change to the repository root and say what the notebook will run on.

    ``experiment`` names a registered experiment (``"paper001_exp1"``,
    ...); its results folder defaults to ``results/NAME`` (quick:
    ``results/_scratch/NAME-quick``).
    """
    import tff_ser
    from tff_ser.runtime import quiet_logs
    quiet_logs()
    root = find_root()
    os.chdir(root)
    print("tff_ser", tff_ser.__version__, "in", root)
    if experiment is None:
        return NotebookSetup(root, quick, data_dir, out_dir)
    from tff_ser.experiments import default_out_dir, get_experiment
    registered = get_experiment(experiment)
    out_dir = out_dir or default_out_dir(registered.name, quick)
    print(registered.summary)
    print("results folder:", out_dir)
    return NotebookSetup(root, quick, data_dir, out_dir, registered, registered.config(quick))
