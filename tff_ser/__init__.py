"""tff_ser: federated speech emotion recognition on TensorFlow Federated.

Data flows one way through the subpackages:
corpus -> features -> partition -> (centralized | federated) -> metrics ->
experiments / hpo -> plots.
"""
import os as _os

# TensorFlow prints C++ start-up chatter on a CPU machine, three lines of it at
# error level ("Unable to register cuDNN / cuFFT / cuBLAS factory") and, on the
# batched engine, "SetPriority unimplemented": none of it is an error of the run.
# Level 3 silences TF's C++ log (Python exceptions still carry real errors);
# TFF_SER_VERBOSE=1 (or `tff-ser --verbose`) brings the log back, and a level the
# user set themselves is kept.
_QUIET_TF_LEVEL = "1" if _os.environ.get("TFF_SER_VERBOSE", "") not in ("", "0") else "3"
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _QUIET_TF_LEVEL)
# gRPC (TFF's link to its C++ workers) logs "skipping fork() handlers" at info
# level each time a second worker starts; errors still show.
_os.environ.setdefault("GRPC_VERBOSITY", "INFO" if _QUIET_TF_LEVEL == "1" else "ERROR")

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
    "EarlyStopping": "tff_ser.callbacks",
    "dp_epsilon": "tff_ser.privacy",
    "Task": "tff_ser.task",
    "make_task": "tff_ser.task",
    "prepare_task": "tff_ser.experiments.common",
    "task_from_features": "tff_ser.experiments.common",
    "FederatedConfig": "tff_ser.federated",
    "train_federated": "tff_ser.federated",
    "CentralizedConfig": "tff_ser.centralized",
    "train_centralized": "tff_ser.centralized",
    "classification_metrics": "tff_ser.metrics",
    "RunResult": "tff_ser.results",
    "set_threads": "tff_ser.runtime",
    "speaker_folds": "tff_ser.crossval",
    "cross_validate": "tff_ser.crossval",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tff_ser' has no attribute {name!r}")
