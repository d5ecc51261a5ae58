"""The papers' systems as baselines: each paper's models, experiments, tables and README.

A baseline is a package under ``tff_ser/baselines/`` (or another distribution's
package, through the ``tff_ser.baselines`` entry-point group) that, when
imported, registers what it brings:

* its models (:func:`tff_ser.models.register_model`, with a lazy
  ``"module:function"`` builder so that finding them imports no Keras);
* its experiments (:func:`tff_ser.experiments.registry.register_experiment`:
  full-size and quick configs, subclasses of
  :class:`~tff_ser.experiments.configs.ExperimentConfig` whose hooks write
  the paper's own section of ``summary.md``);
* itself (:func:`register_baseline`): the paper, its README with the expected
  numbers and the one command for each experiment.

:func:`tff_ser.plugins.discover` imports them all before any registry
answers, so the core names no paper.  Built in: ``paper000`` (Mishchenko et
al.), ``paper001`` (Chau & Garces), ``paper004`` (Latif et al.).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Baseline:
    """A registered baseline.

    Attributes
    ----------
    name : str
        ``paper<NNN>``; its experiments' names start with it.
    paper : str
        The paper it reproduces (authors, title).
    models : tuple of str
        The model names it registers.
    experiments : tuple of str
        The experiment names it registers.
    readme : pathlib.Path
        Its README: what it reproduces, expected results, the command for each.
    """

    name: str
    paper: str
    models: Tuple[str, ...]
    experiments: Tuple[str, ...]
    readme: pathlib.Path


#: Registered baselines by name (filled by :func:`tff_ser.plugins.discover`).
BASELINES: Dict[str, Baseline] = {}


def register_baseline(baseline: Baseline, *, replace: bool = False) -> Baseline:
    """Register ``baseline``; its experiments must carry its name as their prefix."""
    if not isinstance(baseline, Baseline):
        raise TypeError(f"register_baseline takes a Baseline; got {type(baseline).__name__}")
    wrong = [e for e in baseline.experiments if not e.startswith(baseline.name + "_")]
    if wrong:
        raise ValueError(f"baseline {baseline.name!r}'s experiments must be named "
                         f"'{baseline.name}_<what>'; got {wrong}")
    if not pathlib.Path(baseline.readme).is_file():
        raise ValueError(f"baseline {baseline.name!r} has no README at {baseline.readme}")
    if baseline.name in BASELINES and not replace and BASELINES[baseline.name] != baseline:
        raise ValueError(f"baseline {baseline.name!r} is registered already; pass "
                         "replace=True to register it again")
    BASELINES[baseline.name] = baseline
    return baseline


def get_baseline(name: str) -> Baseline:
    """The registered baseline ``name``; ValueError listing the known ones."""
    from tff_ser.plugins import discover
    discover()
    try:
        return BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(sorted(BASELINES))}") \
            from None
