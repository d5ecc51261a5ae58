"""Paper 000, Mishchenko et al., *Hyperparameter optimization for FL: a SER case study*.

Registers the models ``mlp`` (and ``mlp_egemaps``, ``mlp_compare`` on
openSMILE's sets; :mod:`.models`) and the experiments ``paper000_per_speaker``
(the main job of ``make run``) and ``paper000_algorithms`` (:mod:`.configs`), and
``paper000_personalization`` (:mod:`.personalization`).
The 576-point grid is :data:`tff_ser.hpo.space.PAPER_000_GRID` (``tff-ser
hpo``).  Expected numbers: this folder's README.md.
"""
import pathlib

from tff_ser.baselines import Baseline, register_baseline
from tff_ser.baselines.paper000 import configs, personalization
from tff_ser.experiments.registry import Experiment, register_experiment
from tff_ser.models import FEATURE_SHAPES, ModelSpec, register_model

_MLP = "tff_ser.baselines.paper000.models:mlp_000"
for _spec in (
        ModelSpec("mlp", _MLP, "clip_stats", FEATURE_SHAPES["clip_stats"], "000 IV.A",
                  "MLP [256, 128] ReLU, dropout 0.2 -> softmax"),
        ModelSpec("mlp_egemaps", _MLP, "egemaps", FEATURE_SHAPES["egemaps"], "000 IV.A",
                  "paper 000's MLP on openSMILE's 88 eGeMAPSv02 functionals"),
        ModelSpec("mlp_compare", _MLP, "compare", FEATURE_SHAPES["compare"], "000 IV.A",
                  "paper 000's MLP on openSMILE's 6,373 ComParE_2016 functionals")):
    register_model(_spec)

for _experiment in (
        Experiment("paper000_per_speaker", configs.PAPER000_PER_SPEAKER,
                   configs.PAPER000_PER_SPEAKER_QUICK,
                   "paper 000 IV.A: one client per speaker, MLP at NGE 50 NLE 5 LR 0.01 BS 16 "
                   "CD 0.5, against the centralized MLP"),
        Experiment("paper000_algorithms", configs.PAPER000_ALGORITHMS,
                   configs.PAPER000_ALGORITHMS_QUICK,
                   "beyond the papers: paper 000's per-speaker MLP across FedAvg, FedAdam, "
                   "FedYogi, FedProx, compressed FedAvg and DP-FedAvg at 3 noise levels "
                   "(epsilon, bytes)"),
        Experiment("paper000_personalization", personalization.PAPER000_PERSONALIZATION,
                   personalization.PAPER000_PERSONALIZATION_QUICK,
                   "beyond the papers: each speaker's own model on paper 000's 73 speaker "
                   "clients (MLP on clip statistics, eGeMAPS, ComParE; conv1d on frames): "
                   "normalization pooled / federated / per_client x fine-tuning, FedPer, FedRep, "
                   "Ditto; new-speaker enrollment; half the clients with 30 % noisy labels "
                   "(FedAvg, FedProx, FedPer, Ditto)")):
    register_experiment(_experiment)

BASELINE = register_baseline(Baseline(
    "paper000", "Mishchenko et al., Hyperparameter optimization for federated learning: "
                "a speech emotion recognition case study",
    models=("mlp", "mlp_egemaps", "mlp_compare"),
    experiments=("paper000_per_speaker", "paper000_algorithms", "paper000_personalization"),
    readme=pathlib.Path(__file__).with_name("README.md")))
