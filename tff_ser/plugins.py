"""Baselines are plugins: the core finds them, it never names them.

A *baseline* is a paper's system as tff_ser reproduces it: its models, its
experiment configs, its comparison tables and a README with the expected
numbers (:mod:`tff_ser.baselines`).  Each lives in a package that registers
what it brings when imported (``register_model``, ``register_experiment``,
``register_baseline``).  The registries of the core (:data:`tff_ser.models.MODELS`,
:data:`tff_ser.experiments.registry.EXPERIMENTS`) call :func:`discover`
before they answer, which imports

* every package under ``tff_ser/baselines/`` (the built-in baselines), and
* every entry point of the group ``tff_ser.baselines`` (a baseline another
  distribution ships: ``[options.entry_points] tff_ser.baselines =
  mypaper = mypackage.baseline``),

once per process.  A new baseline is therefore one package with its
registrations, and nothing in the core changes.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import List

_LOG = logging.getLogger(__name__)

#: The package whose subpackages are the built-in baselines.
BUILTIN_PACKAGE = "tff_ser.baselines"
#: The entry-point group through which other distributions add baselines.
ENTRY_POINT_GROUP = "tff_ser.baselines"

_STATE = {"done": False, "running": False, "loaded": []}


def discover() -> List[str]:
    """Import every baseline once; returns the module names imported (in order).

    Re-entrant calls (a baseline's import asking a registry) return at once:
    the registrations made so far stand, and the rest follow.
    """
    if _STATE["done"] or _STATE["running"]:
        return list(_STATE["loaded"])
    _STATE["running"] = True
    try:
        package = importlib.import_module(BUILTIN_PACKAGE)
        names = [f"{BUILTIN_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                 if m.ispkg]
        for name in sorted(names):
            importlib.import_module(name)
            _STATE["loaded"].append(name)
        for entry in _entry_points():
            try:
                entry.load()
            except Exception as exc:  # a broken third-party baseline must not hide ours
                _LOG.warning("baseline entry point %r (%s) failed to load: %s",
                             entry.name, entry.value, exc)
                continue
            _STATE["loaded"].append(entry.value)
        _STATE["done"] = True
    finally:
        _STATE["running"] = False
    return list(_STATE["loaded"])


def _entry_points():
    from importlib.metadata import entry_points
    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except TypeError:  # Python 3.9: a dict of groups
        return list(entry_points().get(ENTRY_POINT_GROUP, ()))


class DiscoveredRegistry(dict):
    """A registry (name -> entry) that runs :func:`discover` before it answers.

    :data:`tff_ser.models.MODELS` and
    :data:`tff_ser.experiments.registry.EXPERIMENTS` are these: reading one
    (``REG[name]``, ``name in REG``, iteration, ``len``) first imports every
    baseline, each of which registers its entries with ``dict.__setitem__``
    through its registry's ``register_*`` function.
    """

    def _discovered(self):
        discover()
        return self

    def __getitem__(self, name):
        return dict.__getitem__(self._discovered(), name)

    def __contains__(self, name):
        return dict.__contains__(self._discovered(), name)

    def __iter__(self):
        return dict.__iter__(self._discovered())

    def __len__(self):
        return dict.__len__(self._discovered())

    def get(self, name, default=None):
        return dict.get(self._discovered(), name, default)

    def keys(self):
        return dict.keys(self._discovered())

    def values(self):
        return dict.values(self._discovered())

    def items(self):
        return dict.items(self._discovered())
