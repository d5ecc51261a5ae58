"""Paper 002, Nguyen et al., *Enhancing Speech Emotion Recognition through Knowledge Distillation*: the baseline.

Registers the students ``conv1d_student`` and ``dense_student``
(:mod:`.models`) and the experiments ``paper002_kd``, ``paper002_kd_dense`` and ``paper002_kd_sensitivity`` (:mod:`.configs`); the distillation itself is :mod:`tff_ser.distillation`
(any teacher, any student, centralized and federated).  What is built, what
is not yet measured, and why the system is audio-only: this folder's README.md.
"""
import pathlib

from tff_ser.baselines import Baseline, register_baseline
from tff_ser.baselines.paper002 import configs
from tff_ser.experiments.registry import Experiment, register_experiment
from tff_ser.models import FEATURE_SHAPES, ModelSpec, register_model

_SHAPE = FEATURE_SHAPES["paper001"]
for _spec in (
        ModelSpec("conv1d_student", "tff_ser.baselines.paper002.models:conv1d_student_002",
                  "paper001", _SHAPE, "002 II.B",
                  "student of conv1d: 2 x Conv1D (64/32) -> Dense 256 -> softmax, 0.80 M "
                  "parameters"),
        ModelSpec("dense_student", "tff_ser.baselines.paper002.models:dense_student_002",
                  "paper001", _SHAPE, "002 II.B",
                  "student of dense: Conv1D 128 -> Dense 512 -> softmax, 6.44 M parameters")):
    register_model(_spec)

register_experiment(Experiment(
    "paper002_kd", configs.PAPER002_KD, configs.PAPER002_KD_QUICK,
    "paper 002 Table II: conv1d teacher, conv1d_student with and without KD (logits; logits + "
    "feature), federated on 73 speaker clients and centralized, 20 rounds"))

register_experiment(Experiment(
    "paper002_kd_dense", configs.PAPER002_KD_DENSE, configs.PAPER002_KD_DENSE_QUICK,
    "paper 002 Table II on the dense pair: dense teacher (26.0 M parameters), dense_student "
    "(6.4 M) with and without KD, federated on 73 speaker clients and centralized, 20 rounds"))

register_experiment(Experiment(
    "paper002_kd_sensitivity", configs.PAPER002_KD_SENSITIVITY,
    configs.PAPER002_KD_SENSITIVITY_QUICK,
    "paper 002 II.C: conv1d_student distilled federated across alpha {0.25, 0.5, 0.75} x "
    "T {1, 2, 4} (logits + feature), one seed"))

BASELINE = register_baseline(Baseline(
    "paper002", "Nguyen et al., Enhancing Speech Emotion Recognition through Knowledge "
                "Distillation",
    models=("conv1d_student", "dense_student"), experiments=("paper002_kd", "paper002_kd_dense", "paper002_kd_sensitivity"),
    readme=pathlib.Path(__file__).with_name("README.md")))
