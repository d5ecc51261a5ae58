"""tff_ser: federated speech emotion recognition on TensorFlow Federated.

Data flows one way through the subpackages:
corpus -> features -> partition -> (centralized | federated) -> metrics ->
experiments / hpo -> plots.
"""
__version__ = "0.1.0"
