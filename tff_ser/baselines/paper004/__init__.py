"""Paper 004, Latif et al., *Federated learning for speech emotion recognition applications*.

Registers the models ``cnn_logmel``, ``lstm_logmel`` (:mod:`.models`) and the
experiment ``paper004_fedavg`` (:mod:`.configs`).  Expected numbers: this
folder's README.md.
"""
import pathlib

from tff_ser.baselines import Baseline, register_baseline
from tff_ser.baselines.paper004 import configs
from tff_ser.experiments.registry import Experiment, register_experiment
from tff_ser.models import FEATURE_SHAPES, ModelSpec, register_model

_SHAPE = FEATURE_SHAPES["logmel"]
for _spec in (
        ModelSpec("cnn_logmel", "tff_ser.baselines.paper004.models:cnn_logmel_004", "logmel",
                  _SHAPE, "004 3.2",
                  "Conv2D 16x5x5 -> MaxPool 4x4 -> FC 128 -> FC 64 -> softmax (sizes ours)"),
        ModelSpec("lstm_logmel", "tff_ser.baselines.paper004.models:lstm_logmel_004", "logmel",
                  _SHAPE, "004 3.2", "LSTM 128 -> FC 128 -> FC 64 -> softmax (sizes ours)")):
    register_model(_spec)

register_experiment(Experiment(
    "paper004_fedavg", configs.PAPER004_FEDAVG, configs.PAPER004_FEDAVG_QUICK,
    "paper 004 Fig 2: FedAvg (SGD 0.01, server lr 1.0), CNN and LSTM on 40-d log-Mel, "
    "K {5, 10} x E {1, 5} x B {10, 20} class-balanced clients, 200 rounds, UAR (the LSTM: "
    "K {5, 10} at E 1 B 10, one seed: the budget a CPU affords)"))

BASELINE = register_baseline(Baseline(
    "paper004", "Latif et al., Federated learning for speech emotion recognition applications",
    models=("cnn_logmel", "lstm_logmel"), experiments=("paper004_fedavg",),
    readme=pathlib.Path(__file__).with_name("README.md")))
