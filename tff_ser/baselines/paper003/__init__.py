"""Paper 003, Sun et al., *EmotionNAS: a two-stream neural architecture search framework for SER*.

Registers the spectrogram branch's models ``darts_search`` (the DARTS search
network) and ``darts_derived`` (a searched cell rebuilt as a plain network);
DARTS itself is :mod:`tff_ser.darts`, the search across clients (FedNAS)
:mod:`tff_ser.nas` and :mod:`tff_ser.engines.fednas`.  What is built and what
is measured: this folder's README.md.
"""
import pathlib

from tff_ser.baselines import Baseline, register_baseline
from tff_ser.baselines.paper003 import configs
from tff_ser.experiments.registry import Experiment, register_experiment
from tff_ser.models import FEATURE_SHAPES, ModelSpec, register_model

_SHAPE = FEATURE_SHAPES["spectrogram"]
for _spec in (
        ModelSpec("darts_search", "tff_ser.baselines.paper003.models:darts_search_003", "spectrogram", _SHAPE,
                  "003 2.1, 3.3",
                  "DARTS search network: L 3 cells of N 4 nodes, C 6, 8 candidate operations "
                  "per edge, 0.13 M parameters"),
        ModelSpec("darts_derived", "tff_ser.baselines.paper003.models:darts_derived_003", "spectrogram", _SHAPE,
                  "003 2.1, 4.4",
                  "a searched DARTS cell (genotype=) as a plain network: L 3, C 6; default "
                  "DARTS's CIFAR-10 cell"),
        ModelSpec("attention_rnn", "tff_ser.baselines.paper003.models:attention_rnn_003",
                  "paper001", FEATURE_SHAPES["paper001"], "003 2.2",
                  "second stream: 2 x GRU 256 over frames -> attention pooling -> FC 128 -> "
                  "softmax (paper 001 frames, log-Mel or a user's embeddings)"),
        ModelSpec("fusion_mlp", "tff_ser.baselines.paper003.models:fusion_mlp_003",
                  "fusion", (8,), "003 2.3, 3.3",
                  "decision-level fusion: the two branches' probabilities (8) -> FC 8 -> FC 4 "
                  "-> softmax, 128 parameters")):
    register_model(_spec)

register_experiment(Experiment(
    "paper003_nas", configs.PAPER003_NAS, configs.PAPER003_NAS_QUICK,
    "paper 003 Tables 2-3: DARTS vs FedNAS search of the spectrogram branch, the searched cells "
    "vs hand-designed ones, the recurrent stream, decision- and feature-level fusion"))

BASELINE = register_baseline(Baseline(
    "paper003", "Sun et al., EmotionNAS: a two-stream neural architecture search framework "
                "for speech emotion recognition",
    models=("darts_search", "darts_derived", "attention_rnn", "fusion_mlp"),
    experiments=("paper003_nas",),
    readme=pathlib.Path(__file__).with_name("README.md")))
