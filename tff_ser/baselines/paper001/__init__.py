"""Paper 001, Chau & Garces, *Federated Learning for Emotion Recognition*: the baseline.

Registers the models ``dense``, ``conv1d``, ``lstm`` (:mod:`.models`) and the
experiments ``paper001_exp1``, ``paper001_exp2``, ``paper001_per_speaker``
(:mod:`.configs`); what each reproduces and the numbers to expect are in
this folder's README.md.
"""
import pathlib

from tff_ser.baselines import Baseline, register_baseline
from tff_ser.baselines.paper001 import configs
from tff_ser.experiments.registry import Experiment, register_experiment
from tff_ser.models import FEATURE_SHAPES, ModelSpec, register_model

_SHAPE = FEATURE_SHAPES["paper001"]
for _spec in (
        ModelSpec("dense", "tff_ser.baselines.paper001.models:dense_001", "paper001", _SHAPE,
                  "001 Fig 4", "Conv1D 512 -> Dense 512 -> Dense 512 -> softmax, 26.0 M "
                               "parameters"),
        ModelSpec("conv1d", "tff_ser.baselines.paper001.models:conv1d_001", "paper001", _SHAPE,
                  "001 Fig 6", "4 x Conv1D (512/128/128/64) -> Dense 256 -> softmax, 1.83 M "
                               "parameters"),
        ModelSpec("lstm", "tff_ser.baselines.paper001.models:lstm_001", "paper001", _SHAPE,
                  "001 Fig 5", "LSTM 512 -> LSTM 512 -> Dense 512 -> softmax, 3.48 M "
                               "parameters")):
    register_model(_spec)

for _experiment in (
        Experiment("paper001_exp1", configs.PAPER001_EXP1, configs.PAPER001_EXP1_QUICK,
                   "paper 001 Tables 1-3: dense/conv1d/lstm x {baseline, 4 IID clients, "
                   "4 single-emotion clients}, 20 rounds"),
        Experiment("paper001_exp2", configs.PAPER001_EXP2, configs.PAPER001_EXP2_QUICK,
                   "paper 001 Fig 7: macro F1 against k = 1..8 IID clients, dense and conv1d, "
                   "10 rounds"),
        Experiment("paper001_per_speaker", configs.PAPER001_PER_SPEAKER,
                   configs.PAPER001_PER_SPEAKER_QUICK,
                   "paper 001 future work: dense/conv1d/lstm with one client per speaker "
                   "(73 clients), 20 rounds, plain-TF engine; baselines from paper001_exp1")):
    register_experiment(_experiment)

BASELINE = register_baseline(Baseline(
    "paper001", "Chau & Garces, Federated Learning for Emotion Recognition",
    models=("dense", "conv1d", "lstm"),
    experiments=("paper001_exp1", "paper001_exp2", "paper001_per_speaker"),
    readme=pathlib.Path(__file__).with_name("README.md")))
