"""Paper 000 (Mishchenko et al., *HPO for FL: SER case study*): its experiments.

* :class:`PerSpeakerFederation`, section IV.A: one client per speaker (73
  training, 18 held out), the MLP at paper 000's best point (NGE 50, NLE 5,
  LR 0.01, BS 16, CD 0.5), against the centralized MLP.  The main job of
  ``make run``.
* :class:`AlgorithmComparison`, beyond the paper (which names privacy and
  communication as the next objectives): the same task under FedAvg,
  FedAdam, FedYogi, FedProx, compressed FedAvg and DP-FedAvg.

Paper 000's 576-point HPO grid is :data:`tff_ser.hpo.space.PAPER_000_GRID`
(``tff-ser hpo``).
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import pandas as pd

from tff_ser.experiments.configs import (CENTRALIZED, EXPERIMENT_FL, FEDERATED, SETUP_LABELS,
                                         ExperimentConfig, with_overrides)
from tff_ser.experiments.report import (TIME_FORMATS, interval, markdown_table, mean_sd,
                                        seed_summary)
from tff_ser.fedconfig import FederatedConfig

#: Paper 000 Table I, "Optimal Accuracy" row: mean accuracy of the 18
#: held-out clients and the FL training time (CT) in seconds.
PAPER_000_BEST = {"client_mean_accuracy": 0.771, "train_seconds": 97,
                  "rounds": 50, "local_epochs": 5, "client_lr": 0.01, "batch_size": 16,
                  "client_fraction": 0.5}


@dataclasses.dataclass(frozen=True)
class PerSpeakerFederation(ExperimentConfig):
    """Paper 000 section IV.A: one client per speaker, the MLP, against the centralized MLP.

    Parameters
    ----------
    models : tuple of str
        Paper 000's MLP (136-d clip statistics -> 256 -> 128 -> 4).
    rounds : int
        NGE = 50.
    local_epochs : int
        NLE = 5.
    client_lr : float
        LR = 0.01, on the clients' Adam (paper 000 does not name its
        optimizer; Adam is paper 001's and this package's default).
    server_optimizer, server_lr : str, float
        Server Adam at 0.01, the package's choice for paper 000's setting and
        the one its HPO grid uses (paper 000 names no server optimizer; a sweep
        on the generated corpus is in the README).  ``server_optimizer="sgd",
        server_lr=1.0`` gives plain FedAvg.
    batch_size : int
        BS = 16.
    client_fraction : float
        CD = 0.5 of the 73 training clients per round.
    centralized : bool
        Also train the centralized MLP on the pooled training speakers
        (same features, epochs = NGE, BS, LR).
    """

    name: str = "paper000_per_speaker"
    paper: str = "paper 000, section IV.A (Table I, optimal-accuracy point)"
    models: Tuple[str, ...] = ("mlp",)
    fl: FederatedConfig = dataclasses.replace(
        EXPERIMENT_FL, rounds=50, local_epochs=5, batch_size=16, client_fraction=0.5,
        client_lr=0.01, server_optimizer="adam", server_lr=0.01)
    centralized: bool = True

    def conditions(self):
        specs = []
        for model in self.models:
            specs.append(self._spec(f"{model}-by_speaker", model, FEDERATED, "by_speaker", 0,
                                    "by_speaker"))
            if self.centralized:
                specs.append(self._spec(f"{model}-centralized", model, CENTRALIZED,
                                        "by_speaker", 0, CENTRALIZED))
        return tuple(specs)

    def paper_section(self, table) -> List[str]:
        return ["## Paper 000 Table I (optimal-accuracy point)", "",
                f"Paper 000's point: NGE {PAPER_000_BEST['rounds']}, NLE "
                f"{PAPER_000_BEST['local_epochs']}, LR {PAPER_000_BEST['client_lr']}, BS "
                f"{PAPER_000_BEST['batch_size']}, CD {PAPER_000_BEST['client_fraction']}, on "
                "CREMA-D with a laptop CPU.", "",
                markdown_table(paper000_comparison(table), formats=TIME_FORMATS)]


#: The per-speaker algorithm comparison's settings: (condition, recipe, its own knobs).
ALGORITHM_SETTINGS: Tuple[Tuple[str, str, Tuple[Tuple[str, object], ...]], ...] = (
    ("adam", "paper001", (("client_lr", 0.01), ("server_lr", 0.01))),  # paper000_per_speaker's
    ("fedavg", "fedavg", ()),
    ("fedadam", "fedadam", ()),
    ("fedyogi", "fedyogi", ()),
    ("fedprox", "fedprox", (("proximal_strength", 0.01),)),
    ("fedavg_compressed", "fedavg", (("aggregator", "compression"),)),
    ("dp_z0.3", "dp_fedavg", (("noise_multiplier", 0.3),)),
    ("dp_z1.0", "dp_fedavg", (("noise_multiplier", 1.0),)),
    ("dp_z3.0", "dp_fedavg", (("noise_multiplier", 3.0),)),
)


@dataclasses.dataclass(frozen=True)
class AlgorithmComparison(ExperimentConfig):
    """Paper 000's per-speaker setting across TFF's algorithms, compression and DP noise.

    Beyond the papers: paper 000 names differential privacy and
    communication as the next objectives.  One client per training speaker
    (73 on a full corpus), the MLP, the shared knobs of
    :class:`PerSpeakerFederation` (NGE 50, NLE 5, BS 16, CD 0.5), and per
    condition a named recipe of :data:`tff_ser.fedconfig.RECIPES`
    (:data:`ALGORITHM_SETTINGS`): the package's Adam/Adam (what
    ``paper000_per_speaker`` trains), FedAvg, FedAdam, FedYogi, FedProx, FedAvg
    with 8-bit compressed updates, and DP-FedAvg at three noise levels
    (adaptive clipping; epsilon at delta = 1e-5 from the RDP accountant).
    Every recipe but the first runs on TFF's process.

    Parameters
    ----------
    settings : tuple
        ``(condition, recipe name, ((knob, value), ...))``; the shared
        knobs come from ``fl`` (``with_overrides(rounds=3)`` shortens them all).
    """

    name: str = "paper000_algorithms"
    paper: str = ("paper 000's per-speaker setting (IV.A) across TFF's algorithms, "
                  "compression and DP (beyond the papers)")
    models: Tuple[str, ...] = ("mlp",)
    fl: FederatedConfig = dataclasses.replace(
        EXPERIMENT_FL, rounds=50, local_epochs=5, batch_size=16, client_fraction=0.5,
        client_lr=0.01, server_optimizer="adam", server_lr=0.01, eval_every=5)
    settings: Tuple[Tuple[str, str, Tuple[Tuple[str, object], ...]], ...] = ALGORITHM_SETTINGS

    def condition_config(self, recipe_name: str, knobs) -> FederatedConfig:
        """The FederatedConfig of one condition: the recipe, the shared knobs, its own knobs."""
        from tff_ser.fedconfig import recipe
        shared = {k: getattr(self.fl, k) for k in
                  ("rounds", "local_epochs", "batch_size", "client_fraction", "eval_every")}
        return recipe(recipe_name, **shared, **dict(knobs))

    def conditions(self):
        return tuple(
            self._spec(f"{model}-{label}", model, FEDERATED, "by_speaker", 0, label,
                       fl=self.condition_config(recipe_name, knobs))
            for model in self.models for label, recipe_name, knobs in self.settings)

    def summary_figures(self, table, corpus_note: str) -> List[tuple]:
        from tff_ser import plots
        return [("accuracy_vs_epsilon", plots.plot_metric_vs_cost(
                    table, cost="epsilon",
                    xlabel="epsilon at delta = 1e-5 (log scale; no DP at the right)",
                    title=f"Accuracy against privacy ({corpus_note})")),
                ("accuracy_vs_bytes", plots.plot_metric_vs_cost(
                    table, cost="bytes_up", scale=1e-6,
                    xlabel="MB sent by the clients over the run (log scale)",
                    title=f"Accuracy against communication ({corpus_note})"))] \
            + super().summary_figures(table, corpus_note)

    def comparison_pairs(self, conditions: Sequence[str]) -> List[tuple]:
        return [(c, f"{m}-fedavg") for m in self.models for c in conditions
                if c.startswith(f"{m}-") and c != f"{m}-fedavg" and f"{m}-fedavg" in conditions]

    def paper_section(self, table) -> List[str]:
        return ["## Algorithms, compression and privacy", "",
                "Beyond the papers: the same per-speaker task under each recipe. epsilon is "
                "speaker-level, at delta = 1e-5, from dp_accounting's RDP accountant over "
                "the run's sampling (CD samples a fixed number of clients without "
                "replacement); MB up / down are totals over the run (tff_ser.communication).",
                "", markdown_table(algorithm_comparison(table), formats=TIME_FORMATS)]


def algorithm_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """The algorithm comparison as a table: one row per recipe, mean ± sd over seeds,
    the F1 95 % interval, epsilon (DP) and the run's MB up / down."""
    summary = seed_summary(table, metrics=("accuracy", "f1_macro", "uar", "train_seconds",
                                           "epsilon", "bytes_up", "bytes_down"))
    rows = []
    for _, r in summary.iterrows():
        rows.append({"model": r["model"], "recipe": r["setup"], "seeds": int(r["seeds"]),
                     "accuracy": mean_sd(r, "accuracy"), "F1 (macro)": mean_sd(r, "f1_macro"),
                     "F1 95 % CI": interval(r, "f1_macro"), "UAR": mean_sd(r, "uar"),
                     "epsilon": "" if pd.isna(r["epsilon"]) else f"{r['epsilon']:.1f}",
                     "MB up": "" if pd.isna(r["bytes_up"]) else f"{r['bytes_up'] / 1e6:.1f}",
                     "MB down": "" if pd.isna(r["bytes_down"]) else f"{r['bytes_down'] / 1e6:.1f}",
                     "train time (s)": r["train_seconds"]})
    return pd.DataFrame(rows)


def paper000_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Paper 000 Table I's optimal-accuracy point beside our per-speaker runs (mean ± sd)."""
    rows = [{"run": "paper 000 (CREMA-D, 73 clients)", "seeds": "",
             "client-mean acc": f"{PAPER_000_BEST['client_mean_accuracy']:.3f}",
             "client-mean acc 95 % CI": "",
             "train time (s)": PAPER_000_BEST["train_seconds"]}]
    for _, r in seed_summary(table).iterrows():
        rows.append({"run": f"ours: {r['model']} {SETUP_LABELS.get(r['setup'], r['setup'])}",
                     "seeds": int(r["seeds"]),
                     "client-mean acc": mean_sd(r, "client_mean_accuracy"),
                     "client-mean acc 95 % CI": interval(r, "client_mean_accuracy"),
                     "train time (s)": r["train_seconds"]})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# the declared experiments: full size (the paper's settings) and quick
# ---------------------------------------------------------------------------

# The main job: paper 000's point on the batched engine, 3 seeds (minutes).
PAPER000_PER_SPEAKER = PerSpeakerFederation(engine="auto", seeds=(0, 1, 2))
# Quick: the small corpus (10 training speakers, 2 held out), 3 rounds, one seed.
PAPER000_PER_SPEAKER_QUICK = with_overrides(
    PAPER000_PER_SPEAKER, size="small", max_speakers=12, rounds=3, federated_eval=False, quick=True,
    seeds=(0,))

PAPER000_ALGORITHMS = AlgorithmComparison(engine="auto", seeds=(0, 1, 2))
PAPER000_ALGORITHMS_QUICK = with_overrides(
    PAPER000_ALGORITHMS, size="small", max_speakers=12, rounds=2, eval_every=1,
    federated_eval=False, quick=True, seeds=(0,),
    settings=tuple(x for x in ALGORITHM_SETTINGS if x[0] in ("adam", "fedyogi", "fedprox",
                                                             "fedavg_compressed", "dp_z0.3")))
