"""Experiments as declared configs: one per paper table or figure.

The public API (what notebooks and users import from here):

* :func:`get_experiment`, :data:`EXPERIMENTS`, :func:`default_out_dir` -- the
  registered experiments and where their results go;
* :func:`run_experiment` -- run one, writing its results folder;
* :func:`with_overrides` -- a config with some settings changed;
* :func:`results_view`, :func:`seed_summary`, :func:`paper001_comparison`,
  :func:`per_speaker_comparison`, :func:`f1_by_clients`,
  :func:`paper000_comparison`, :func:`describe_corpus` -- the tables.

Imported lazily, so ``tff-ser`` starts without pandas.
"""
_API = {
    "EXPERIMENTS": "tff_ser.experiments.registry",
    "get_experiment": "tff_ser.experiments.registry",
    "default_out_dir": "tff_ser.experiments.registry",
    "with_overrides": "tff_ser.experiments.configs",
    "run_experiment": "tff_ser.experiments.runner",
    "results_view": "tff_ser.experiments.runner",
    "seed_summary": "tff_ser.experiments.runner",
    "paper001_comparison": "tff_ser.experiments.runner",
    "per_speaker_comparison": "tff_ser.experiments.runner",
    "f1_by_clients": "tff_ser.experiments.runner",
    "paper000_comparison": "tff_ser.experiments.runner",
    "algorithm_comparison": "tff_ser.experiments.runner",
    "paper004_comparison": "tff_ser.experiments.runner",
    "describe_corpus": "tff_ser.experiments.runner",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tff_ser.experiments' has no attribute {name!r}")
