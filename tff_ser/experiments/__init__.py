"""Experiments as declared configs: one per paper table or figure.

The public API (what notebooks and users import from here):

* :func:`get_experiment`, :data:`EXPERIMENTS`, :func:`default_out_dir`,
  :func:`register_experiment` -- the registered experiments (each baseline
  of :mod:`tff_ser.baselines` registers its own) and where their results go;
* :class:`ExperimentConfig` -- the base class of every experiment's config;
* :func:`run_experiment` -- run one, writing its results folder;
* :func:`load_kept_model` -- the trained model of a run that kept its weights (a teacher);
* :func:`with_overrides` -- a config with some settings changed;
* :func:`results_view`, :func:`seed_summary`, :func:`describe_corpus` -- the
  tables (a paper's own comparison tables live in its baseline);
  :func:`compare_results` -- one results folder against another, condition by
  condition, paired over seeds.

Imported lazily, so ``tff-ser`` starts without pandas.
"""
_API = {
    "EXPERIMENTS": "tff_ser.experiments.registry",
    "get_experiment": "tff_ser.experiments.registry",
    "default_out_dir": "tff_ser.experiments.registry",
    "register_experiment": "tff_ser.experiments.registry",
    "ExperimentConfig": "tff_ser.experiments.configs",
    "with_overrides": "tff_ser.experiments.configs",
    "run_experiment": "tff_ser.experiments.runner",
    "load_kept_model": "tff_ser.experiments.runner",
    "results_view": "tff_ser.experiments.report",
    "compare_results": "tff_ser.experiments.report",
    "seed_summary": "tff_ser.experiments.report",
    "describe_corpus": "tff_ser.corpus.summary",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tff_ser.experiments' has no attribute {name!r}")
