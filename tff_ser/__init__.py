"""tff_ser: federated speech emotion recognition on TensorFlow Federated.

Data flows one way through the subpackages:
corpus -> features -> partition -> (centralized | federated) -> metrics ->
experiments / hpo -> plots.
"""
import os as _os

# TensorFlow prints pages of C++ start-up chatter (CUDA, TensorRT, oneDNN) on a
# CPU machine; keep it quiet unless the user asked for a level themselves.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
