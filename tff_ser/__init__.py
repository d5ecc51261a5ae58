"""tff_ser: federated speech emotion recognition on TensorFlow Federated.

Data flows one way through the subpackages:
corpus -> features -> partition -> (centralized | federated) -> metrics ->
experiments / hpo -> plots.
"""
__version__ = "0.1.0"

# The public API, imported lazily so that `import tff_ser` stays cheap (TF and
# TFF take seconds to import) and the CLI can start fast.
_API = {
    "Clip": "tff_ser.corpus.records",
    "resolve_corpus": "tff_ser.corpus",
    "load_corpus": "tff_ser.corpus",
    "extract": "tff_ser.features.pipeline",
    "build_model": "tff_ser.models",
    "MODELS": "tff_ser.models",
    "KerasModel": "tff_ser.models",
    "recipe": "tff_ser.fedconfig",
    "RECIPES": "tff_ser.fedconfig",
    "register_algorithm": "tff_ser.algorithms",
    "register_engine": "tff_ser.engines.base",
    "EarlyStopping": "tff_ser.callbacks",
    "dp_epsilon": "tff_ser.privacy",
    "Task": "tff_ser.task",
    "make_task": "tff_ser.task",
    "prepare_task": "tff_ser.task",
    "task_from_features": "tff_ser.task",
    "task_for_speakers": "tff_ser.task",
    "TaskRecipe": "tff_ser.task",
    "FederatedConfig": "tff_ser.federated",
    "train_federated": "tff_ser.federated",
    "CentralizedConfig": "tff_ser.centralized",
    "train_centralized": "tff_ser.centralized",
    "classification_metrics": "tff_ser.metrics",
    "RunResult": "tff_ser.results",
    "set_threads": "tff_ser.runtime",
    "quiet_logs": "tff_ser.runtime",
    "speaker_folds": "tff_ser.crossval",
    "cross_validate": "tff_ser.crossval",
    "cross_validate_settings": "tff_ser.crossval",
    "compare_settings": "tff_ser.crossval",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tff_ser' has no attribute {name!r}")
