"""Paper 002 (Nguyen et al.): a teacher, its light student, and the student distilled (Table II).

One experiment, :class:`DistillationExperiment`: on one partition (paper 001's
per-speaker federation by default: 73 clients, one per training speaker),

* the **teacher** trained federated (its weights kept for its students),
* the **student** trained federated without KD,
* the student distilled federated with the logits loss only
  (``feature_weight = 0``), and with logits + feature loss (paper 002's Eq. 6),

and the same three centralized (teacher, student, student + KD), so that
federated and centralized distillation sit side by side.  Every run is
repeated per seed, the student's seed ``s`` learning from the teacher of
seed ``s``.  The summary's paper-002 section is Table II's layout: parameters,
BACC (= UAR), ACC, macro and weighted F1 per model, mean ± sd and the 95 %
interval over seeds, with the paired differences KD makes.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import pandas as pd

from tff_ser.distillation import KDConfig
from tff_ser.experiments.configs import (CENTRALIZED, EXPERIMENT_FL, FEDERATED, ExperimentConfig,
                                         with_overrides)
from tff_ser.experiments.report import interval, markdown_table, mean_sd, seed_summary
from tff_ser.fedconfig import FederatedConfig

#: Paper 002's Table II (IEMOCAP, test split, %): the teacher and its smallest student (BERT-2),
#: without and with KD; parameters in millions, inference time in ms per sample.
PAPER_002_TABLE_II = {
    "teacher": {"params_m": 157.91, "ms": 32.80, "BACC": 81.24, "ACC": 80.69, "MF1": 80.93,
                "WF1": 80.69},
    "student": {"params_m": 87.03, "ms": 19.60, "BACC": 76.90, "ACC": 76.90, "MF1": 76.83,
                "WF1": 76.73},
    "student + KD": {"params_m": 87.03, "ms": 19.60, "BACC": 79.26, "ACC": 78.16, "MF1": 78.34,
                     "WF1": 77.93},
}

#: Column labels of the runs' setups.
LABELS = {"teacher": "teacher", "student": "student (no KD)",
          "kd_logits": "student + KD (logits)", "kd": "student + KD (logits + feature)"}


@dataclasses.dataclass(frozen=True)
class DistillationExperiment(ExperimentConfig):
    """Paper 002's system on paper 001's models: teacher, student, student + KD, federated and centralized.

    Parameters
    ----------
    teacher_model, student_model : str
        Registered models reading the same features (``conv1d`` and ``conv1d_student``).
    partition : str
        How the training speakers' clips form clients (``"by_speaker"``: 73 clients).
    clients : int
        k for the partitions that take one (ignored by ``"by_speaker"``).
    kd : KDConfig
        Paper 002's loss: alpha 0.5, T 2, feature weight 1 (Eq. 6).
    centralized : bool
        Also the three centralized runs (epochs = rounds, as every baseline here).
    fl : FederatedConfig
        Paper 001's knobs: 20 rounds, NLE 1, BS 20, CD 1.0, client and server Adam 1e-3.
    """

    name: str = "paper002_kd"
    paper: str = "paper 002, Table II (knowledge distillation, teacher vs student)"
    teacher_model: str = "conv1d"
    student_model: str = "conv1d_student"
    partition: str = "by_speaker"
    clients: int = 4
    kd: KDConfig = KDConfig()
    centralized: bool = True
    engine: str = "auto"
    fl: FederatedConfig = EXPERIMENT_FL

    @property
    def models(self):
        return (self.teacher_model, self.student_model)

    def conditions(self):
        t, s, p, k = self.teacher_model, self.student_model, self.partition, self.clients
        logits_only = dataclasses.replace(self.kd, feature_weight=0.0)
        modes = [(FEDERATED, "federated")] + ([(CENTRALIZED, "centralized")]
                                              if self.centralized else [])
        out = []
        for mode, tag in modes:
            teacher = f"{t}-{tag}"
            plans = [(teacher, t, "teacher", "", None, True),
                     (f"{s}-{tag}", s, "student", "", None, False)]
            if mode == FEDERATED:
                plans.append((f"{s}-{tag}_kd_logits", s, "kd_logits", teacher, logits_only,
                              False))
            # the distilled student keeps its weights too (notebook 08 streams with it)
            plans.append((f"{s}-{tag}_kd", s, "kd", teacher, self.kd, True))
            for condition, model, setup, from_run, kd, keep in plans:
                out.append(tuple(
                    dataclasses.replace(spec, teacher=from_run, kd=kd, keep_weights=keep)
                    for spec in self._spec(condition, model, mode, p, k, setup)))
        return tuple(out)

    def column_label(self, spec) -> str:
        return f"{LABELS[spec.setup]}, {spec.mode}"

    def comparison_pairs(self, conditions: Sequence[str]) -> List[tuple]:
        t, s = self.teacher_model, self.student_model
        pairs = [(f"{s}-federated_kd", f"{s}-federated"),
                 (f"{s}-federated_kd_logits", f"{s}-federated"),
                 (f"{s}-federated_kd", f"{s}-federated_kd_logits"),
                 (f"{t}-federated", f"{s}-federated_kd"),
                 (f"{s}-centralized_kd", f"{s}-centralized"),
                 (f"{s}-centralized_kd", f"{s}-federated_kd")]
        return [(a, b) for a, b in pairs if a in conditions and b in conditions]

    def paper_section(self, table) -> List[str]:
        paper = pd.DataFrame([{"model": name, **row} for name, row in PAPER_002_TABLE_II.items()])
        return ["## Paper 002 Table II", "",
                "Paper 002 (IEMOCAP test split, %; BERT-2 student): parameters in millions, "
                "inference time per sample in ms.", "",
                markdown_table(paper, floatfmt=".2f"), "",
                "Ours (generated corpus, not CREMA-D; held-out speakers; mean ± sd over seeds, "
                "95 % t-interval of BACC).  Parameters, size, inference time and bytes per "
                "round: `benchmarks/bench_distillation.py`.", "",
                markdown_table(paper002_comparison(table, self))]


def paper002_comparison(table: pd.DataFrame, config: DistillationExperiment) -> pd.DataFrame:
    """Table II's rows for our runs: BACC (UAR), ACC, MF1, WF1 and parameters per condition."""
    from tff_ser.models import count_params
    rows = []
    metrics = ("uar", "accuracy", "f1_macro", "f1_weighted")
    summary = seed_summary(table, metrics=metrics)
    for _, r in summary.iterrows():
        rows.append({"run": f"{LABELS.get(r['setup'], r['setup'])}, {r['mode']}",
                     "model": r["model"], "parameters": f"{count_params(r['model']):,}",
                     "seeds": int(r["seeds"]), "BACC": mean_sd(r, "uar"),
                     "BACC 95 % CI": interval(r, "uar"), "ACC": mean_sd(r, "accuracy"),
                     "MF1": mean_sd(r, "f1_macro"), "WF1": mean_sd(r, "f1_weighted")})
    return pd.DataFrame(rows)


@dataclasses.dataclass(frozen=True)
class KDSensitivity(DistillationExperiment):
    """The student distilled federated across alpha x T (paper 002 took alpha 0.5, T 2 from Hinton et al.).

    One teacher run per seed, then one distilled student per (alpha, T), with
    the feature loss of :attr:`kd` (Eq. 6) and the same seeds.
    """

    name: str = "paper002_kd_sensitivity"
    paper: str = "paper 002, II.C (KD loss weights): alpha x T sensitivity"
    alphas: Tuple[float, ...] = (0.25, 0.5, 0.75)
    temperatures: Tuple[float, ...] = (1.0, 2.0, 4.0)

    def conditions(self):
        t, s, p, k = self.teacher_model, self.student_model, self.partition, self.clients
        teacher = f"{t}-federated"
        out = [tuple(dataclasses.replace(spec, keep_weights=True)
                     for spec in self._spec(teacher, t, FEDERATED, p, k, "teacher"))]
        for alpha in self.alphas:
            for temperature in self.temperatures:
                kd = dataclasses.replace(self.kd, alpha=alpha, temperature=temperature)
                out.append(tuple(
                    dataclasses.replace(spec, teacher=teacher, kd=kd)
                    for spec in self._spec(f"{s}-a{alpha:g}-T{temperature:g}", s, FEDERATED,
                                           p, k, f"alpha {alpha:g}, T {temperature:g}")))
        return tuple(out)

    def column_label(self, spec) -> str:
        return spec.setup

    def comparison_pairs(self, conditions: Sequence[str]) -> List[tuple]:
        base = f"{self.student_model}-a0.5-T2"
        return [(c, base) for c in conditions if c != base and c.startswith(self.student_model)
                and base in conditions]

    def paper_section(self, table) -> List[str]:
        summary = seed_summary(table, metrics=("uar",))
        rows = []
        for alpha in self.alphas:
            row = {"alpha": f"{alpha:g}"}
            for temperature in self.temperatures:
                hit = summary[summary["condition"]
                              == f"{self.student_model}-a{alpha:g}-T{temperature:g}"]
                row[f"T = {temperature:g}"] = mean_sd(hit.iloc[0], "uar") if len(hit) else ""
            rows.append(row)
        return ["## KD sensitivity (BACC = UAR of the distilled student)", "",
                markdown_table(pd.DataFrame(rows))]


# ---------------------------------------------------------------------------
# the declared experiments: full size and quick
# ---------------------------------------------------------------------------

PAPER002_KD = DistillationExperiment(seeds=(0, 1, 2))
# Quick: the small corpus, 2 rounds, one seed, federated only.
PAPER002_KD_QUICK = with_overrides(
    PAPER002_KD, size="small", max_speakers=12, rounds=2, eval_every=0, federated_eval=False,
    quick=True, seeds=(0,), centralized=False)

# The same Table II for the other pair: paper 001's dense (26,008,068 parameters, 104 MB per
# client each way) and its student (6,438,276).
PAPER002_KD_DENSE = with_overrides(PAPER002_KD, name="paper002_kd_dense",
                                   paper="paper 002, Table II on the dense pair",
                                   teacher_model="dense", student_model="dense_student")
PAPER002_KD_DENSE_QUICK = with_overrides(
    PAPER002_KD_DENSE, size="small", max_speakers=12, rounds=2, eval_every=0,
    federated_eval=False, quick=True, seeds=(0,), centralized=False)

PAPER002_KD_SENSITIVITY = KDSensitivity(seeds=(0,), centralized=False)
PAPER002_KD_SENSITIVITY_QUICK = with_overrides(
    PAPER002_KD_SENSITIVITY, size="small", max_speakers=12, rounds=2, eval_every=0,
    federated_eval=False, quick=True, alphas=(0.5,), temperatures=(1.0, 2.0))
