"""Paper 003 (Sun et al., EmotionNAS): the searched spectrogram branch, a second stream, fusion.

One experiment, :class:`EmotionNASExperiment`, on one partition (one client per
training speaker by default), in three stages the runner orders itself:

1. **search** -- DARTS's first-order search of the spectrogram branch
   (:mod:`tff_ser.nas`), centralized (``search-darts``: one client holding every
   training clip) and federated (``search-fednas``: FedNAS over the speaker
   clients); one seed each, as paper 003 searches once;
2. **branches** -- each searched cell rebuilt as a plain network and trained
   from scratch (``derived-darts``, ``derived-fednas``), federated and
   centralized, beside hand-designed networks on the same spectrograms
   (DARTS's CIFAR-10 cell ``darts_v2``, paper 001's ``conv1d``), and the second
   stream (``attention_rnn`` over paper 001's frames);
3. **fusion** -- paper 003's decision-level perceptron on the federated
   branches' class probabilities, and feature-level fusion of their embeddings
   for comparison, both trained federated; the perceptron also centralized, with
   paper 003's own recipe.

Selection is on the training speakers' own validation clips (the search's
architecture split); every score is on held-out speakers no stage saw.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import pandas as pd

from tff_ser.engines.search_spec import SearchSpec
from tff_ser.experiments.configs import (CENTRALIZED, EXPERIMENT_FL, FEDERATED, ExperimentConfig,
                                         with_overrides)
from tff_ser.experiments.report import (TIME_FORMATS, interval, markdown_table, mean_sd,
                                        seed_summary)
from tff_ser.fedconfig import FederatedConfig

#: Paper 003's Tables 2 and 3 (IEMOCAP, 4 classes, leave-one-session-out; UA %, parameters).
PAPER_003_TABLE_2 = {"Spectrogram branch": ("0.13M", 63.5), "Wav2vec branch": ("2.23M", 70.3),
                     "EmotionNAS": ("2.36M", 72.8)}
PAPER_003_TABLE_3 = {"(L = 3, C = 4)": ("0.07M", 58.7), "(L = 3, C = 6)": ("0.13M", 63.5),
                     "(L = 4, C = 8)": ("0.35M", 62.3), "(L = 8, C = 16)": ("1.32M", 62.1)}

#: The search's knobs: FedNAS rounds = DARTS epochs, SGD 0.025 momentum 0.9 on the weights
#: (paper 003), the server's plain average (FedNAS), every client every round.
SEARCH_FL = FederatedConfig(rounds=10, local_epochs=1, batch_size=16, client_fraction=1.0,
                            client_lr=0.025, server_lr=1.0, client_optimizer="sgdm",
                            server_optimizer="sgd", seed=0, eval_every=0)

#: The fusion perceptron, federated: paper 003's 100 epochs (Adam 1e-3) as 100 rounds of NLE 1
#: over the speaker clients, with FedNAS's plain average. A speaker client holds ~54 clips (3
#: batches of 20), so at Adam 1e-3 a round moves the 128-parameter perceptron by 3 small steps:
#: with paper 001's server Adam 1e-3 it stayed near ln 4 after 100 rounds (train loss 1.35,
#: held-out UAR 0.42, seed 0). At client Adam 1e-2 it comes near the centralized perceptron's
#: train loss (0.71 against 0.65) in the paper's 100 passes over each clip (the README).
FUSION_FL = dataclasses.replace(EXPERIMENT_FL, rounds=100, client_lr=1e-2,
                                server_optimizer="sgd", server_lr=1.0)

LABELS = {"search": "search network", "derived": "searched cell", "darts_v2": "DARTS CIFAR cell",
          "conv1d": "conv1d (paper 001)", "rnn": "recurrent stream",
          "fusion_decision": "decision-level fusion", "fusion_feature": "feature-level fusion"}


@dataclasses.dataclass(frozen=True)
class EmotionNASExperiment(ExperimentConfig):
    """Paper 003's system, searched and trained centralized and federated.

    Parameters
    ----------
    partition, clients : str, int
        How training speakers' clips form clients (``"by_speaker"``: one each).
    cells, channels, nodes : int
        L, C, N of the search and the derived networks (paper 003: 3, 6, 4).
    input_pool : int
        The spectrogram's p x p blocks averaged first (1 = paper 003's 140 x 140);
        a search costs in proportion to the pixels (``tff_ser.baselines.paper003``'s README).
    search : SearchSpec
        Paper 003's architecture optimizer and DARTS's extras.
    search_fl : FederatedConfig
        The search's rounds (= epochs), batch size and weight optimizer.
    rnn_kwargs : tuple of (name, value)
        The second stream's sizes (``attention_rnn``'s hyperparameters).
    fl : FederatedConfig
        The trainings after the search: paper 001's knobs (20 rounds, NLE 1, BS 20,
        client and server Adam 1e-3).
    fusion_fl : FederatedConfig
        The federated fusion runs' knobs (:data:`FUSION_FL`: paper 003's 100 epochs as 100
        rounds of NLE 1, client Adam 1e-2, the plain average). The centralized fusion run
        takes paper 003's own recipe: 100 epochs of Adam 1e-3 (BS 20: the paper gives none).
    """

    name: str = "paper003_nas"
    paper: str = "paper 003, Tables 2-3 (EmotionNAS: searched branch, second stream, fusion)"
    partition: str = "by_speaker"
    clients: int = 4
    cells: int = 3
    channels: int = 6
    nodes: int = 4
    input_pool: int = 2
    search: SearchSpec = SearchSpec()
    search_fl: FederatedConfig = SEARCH_FL
    rnn_kwargs: Tuple[Tuple[str, object], ...] = ()
    engine: str = "tf"
    fl: FederatedConfig = EXPERIMENT_FL
    fusion_fl: FederatedConfig = FUSION_FL
    seed_counts: Tuple[Tuple[str, int], ...] = (("darts_search", 1),)

    @property
    def models(self):
        return ("darts_search", "darts_derived", "conv1d", "attention_rnn", "fusion_mlp")

    def _net(self, **extra) -> tuple:
        return tuple(sorted({"cells": self.cells, "channels": self.channels,
                             "input_pool": self.input_pool, **extra}.items()))

    def conditions(self):
        p, k = self.partition, self.clients
        out = []

        def add(condition, model, mode, setup, fl=None, **fields):
            out.append(tuple(dataclasses.replace(spec, **fields) for spec in
                             self._spec(condition, model, mode, p, k, setup, fl=fl)))

        search_seed = self.seeds_for("darts_search")[0]
        for algo, mode in (("darts", CENTRALIZED), ("fednas", FEDERATED)):
            add(f"search-{algo}", "darts_search", mode, "search",
                fl=self.search_fl, search=self.search,
                model_kwargs=self._net(nodes=self.nodes))
        for algo in ("darts", "fednas"):
            for mode in (FEDERATED, CENTRALIZED):
                add(f"derived-{algo}-{mode}", "darts_derived", mode, "derived",
                    genotype_from=f"search-{algo}-s{search_seed}", model_kwargs=self._net(),
                    keep_weights=mode == FEDERATED)
        add("darts_v2-federated", "darts_derived", FEDERATED, "darts_v2",
            model_kwargs=self._net())
        add("conv1d-federated", "conv1d", FEDERATED, "conv1d", feature_kind="spectrogram")
        for mode in (FEDERATED, CENTRALIZED):
            add(f"attention_rnn-{mode}", "attention_rnn", mode, "rnn",
                model_kwargs=tuple(self.rnn_kwargs), keep_weights=mode == FEDERATED)
        branches = ("derived-fednas-federated", "attention_rnn-federated")
        add("fusion-decision", "fusion_mlp", FEDERATED, "fusion_decision", fl=self.fusion_fl,
            branches=branches, fusion="decision")
        add("fusion-feature", "fusion_mlp", FEDERATED, "fusion_feature", fl=self.fusion_fl,
            branches=branches, fusion="feature", model_kwargs=(("hidden_units", [64]),))
        # paper 003's recipe on the pooled clips (epochs = rounds, Adam at fl's 1e-3)
        add("fusion-decision-centralized", "fusion_mlp", CENTRALIZED, "fusion_decision",
            fl=dataclasses.replace(self.fl, rounds=self.fusion_fl.rounds),
            branches=branches, fusion="decision")
        return tuple(out)

    def column_label(self, spec) -> str:
        return f"{LABELS[spec.setup]}, {spec.mode}"

    def comparison_pairs(self, conditions: Sequence[str]) -> List[tuple]:
        pairs = [("derived-fednas-federated", "derived-darts-federated"),
                 ("derived-fednas-federated", "darts_v2-federated"),
                 ("derived-fednas-federated", "conv1d-federated"),
                 ("derived-fednas-centralized", "derived-fednas-federated"),
                 ("fusion-decision", "derived-fednas-federated"),
                 ("fusion-decision", "attention_rnn-federated"),
                 ("fusion-decision", "fusion-feature"),
                 ("fusion-feature", "attention_rnn-federated"),
                 ("fusion-decision-centralized", "fusion-decision")]
        return [(a, b) for a, b in pairs if a in conditions and b in conditions]

    def paper_section(self, table) -> List[str]:
        paper = pd.DataFrame([{"paper 003 (IEMOCAP)": name, "parameters": params, "UA %": ua}
                              for name, (params, ua) in {**PAPER_003_TABLE_2,
                                                         **PAPER_003_TABLE_3}.items()])
        summary = seed_summary(table, metrics=("uar", "train_seconds"))
        params = table.groupby("condition", sort=False)["parameters"].first() \
            if "parameters" in table else pd.Series(dtype=float)
        ours = pd.DataFrame([{"run": r["condition"], "seeds": int(r["seeds"]),
                              "parameters": _millions(params.get(r["condition"])),
                              "UAR": mean_sd(r, "uar"), "UAR 95 % CI": interval(r, "uar"),
                              "train time (s)": r["train_seconds"]}
                             for _, r in summary.iterrows()])
        lines = ["## Paper 003 Tables 2-3", "",
                 "Paper 003 (IEMOCAP; its parameters are the search network's):", "",
                 markdown_table(paper, formats={"UA %": ".1f"}), "",
                 "Ours (generated corpus, not CREMA-D or IEMOCAP; held-out speakers; "
                 "mean ± sd over seeds, 95 % t-interval; parameters of the trained network, a "
                 "search run's being its search network's; a fusion run's are the fusion "
                 "perceptron's alone):", "", markdown_table(ours, formats=TIME_FORMATS)]
        searches = table[table["setup"] == "search"]
        if not searches.empty:
            lines += ["", "Search cost (one search each, the budget this 2-core machine "
                      "affords; a search's cost grows with the spectrogram's pixels, L and C): "
                      + "; ".join(f"`{r['run_id']}` {_epochs(r['rounds'])} (rounds), "
                                  f"{_duration(r['train_seconds'])} of training"
                                  for _, r in searches.iterrows()) + "."]
        return lines


def _millions(count) -> str:
    """``"0.13M"`` as paper 003 writes parameter counts (``"1,234"`` below 5,000); ``""``
    when not recorded."""
    if count is None or pd.isna(count):
        return ""
    return f"{count / 1e6:.2f}M" if count >= 5e3 else f"{int(count):,}"


def _epochs(rounds) -> str:
    return f"{int(rounds)} epoch" + ("" if int(rounds) == 1 else "s")


def _duration(seconds) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


# ---------------------------------------------------------------------------
# the declared experiments: full size and quick
# ---------------------------------------------------------------------------

PAPER003_NAS = EmotionNASExperiment(seeds=(0, 1, 2))
# Quick: the small corpus, one seed, a one-cell search on 35 x 35 spectrograms, 2 rounds.
PAPER003_NAS_QUICK = with_overrides(
    PAPER003_NAS, size="small", max_speakers=12, rounds=2, eval_every=0, federated_eval=False,
    quick=True, seeds=(0,), cells=1, channels=2, nodes=2, input_pool=4,
    search_fl=dataclasses.replace(SEARCH_FL, rounds=1),
    fusion_fl=dataclasses.replace(FUSION_FL, rounds=2, eval_every=0),
    rnn_kwargs=(("rnn_layers", 1), ("units", 16), ("attention_units", 8),
                ("hidden_units", 8)))
