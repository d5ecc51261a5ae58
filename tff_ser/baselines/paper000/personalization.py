"""Each speaker's own model and number, in paper 000's per-speaker federation (beyond the papers).

Paper 001's premise is a model that adapts to its user, paper 000's clients
are single speakers, and both report one number: the mean over held-out
speakers hides the speakers a model fails.  :class:`PersonalizationExperiment`
keeps :class:`~tff_ser.baselines.paper000.configs.PerSpeakerFederation`'s
setting (73 speaker clients, the MLP on clip statistics, NGE 50, NLE 5, BS
16, CD 0.5, client and server Adam 0.01) and crosses

* **feature normalization**: ``pooled`` (the papers'; needs pooled data),
  ``federated`` (only per-client sums leave a client) and ``per_client``
  (each speaker its own statistics; transductive for held-out speakers), with
* **personalization** (:class:`tff_ser.personalization.PersonalPlan`): local
  fine-tuning after FedAvg (all layers, 5 epochs, Adam 1e-3), FedPer (own
  softmax head), FedRep (own head, trained before the shared body each round)
  and Ditto (lambda 0.1).

Every run keeps 25 % of each training speaker's clips as its personal test
(stratified by emotion, seeded by the run's seed: the methods of one seed
score the same clips), so each row says how the global model and each
client's own model do on the client's own unseen clips; the fine-tuning and
Ditto runs also enroll each held-out speaker with k = 0, 5, 10, 20 labelled
clips (paper 001's future work).  A third block makes half the clients noisy
(30 % of their training labels flipped, FedAudio's label-noise challenge) and
compares FedAvg, FedProx (mu 0.01) and the two personalized methods under it.

The blocks run on four inputs (issue 26, part 5): the MLP on paper 000's
clip statistics (``mlp``) and on openSMILE's eGeMAPSv02 (``mlp_egemaps``, 88)
and ComParE_2016 (``mlp_compare``, 6,373) functionals, every cell; and paper
001's conv1d on its (100, 34) frames in a reduced block
(:attr:`PersonalizationExperiment.reduced_models`: pooled and per-client
normalization x fine-tuning, no noisy block; client and server Adam at paper
001's 1e-3, :attr:`PersonalizationExperiment.model_knobs`): its per-speaker round costs
~40 s here against the MLP's ~0.3 s (paper001_per_speaker's conv1d: 15 s a
round of 73 clients x 3 steps; this setting runs 37 clients x 15 steps).
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple

import numpy as np
import pandas as pd

from tff_ser.baselines.paper000.configs import PerSpeakerFederation
from tff_ser.experiments.configs import FEDERATED, with_overrides
from tff_ser.experiments.report import interval, markdown_table, mean_sd, seed_summary
from tff_ser.personalization import PersonalPlan, parse_enroll_uar

#: Column labels of the methods.
METHOD_LABELS = {"finetune": "FedAvg + fine-tuning", "fedper": "FedPer", "fedrep": "FedRep",
                 "ditto": "Ditto",
                 "fedprox": "FedProx + fine-tuning"}
#: Scores of the personalization table, summarised over seeds.
PERSONAL_METRICS = ("uar", "client_global_uar", "client_personal_uar", "client_personal_uar_p10",
                    "client_personal_better")


@dataclasses.dataclass(frozen=True)
class PersonalizationExperiment(PerSpeakerFederation):
    """Normalization x personalization x noisy clients on paper 000's 73 speaker clients.

    Parameters
    ----------
    normalizations : tuple of str
        Feature standardizations crossed with every method
        (:func:`tff_ser.task.make_task`).
    methods : tuple of str
        ``"finetune"``, ``"fedper"``, ``"fedrep"``, ``"ditto"`` (:data:`tff_ser.personalization.PLAN_METHODS`).
    plan : PersonalPlan
        The personal split, fine-tuning and enrollment knobs every run shares.
    label_noise, noisy_clients : float
        The noisy block: this fraction of the labels of this share of the
        training clients flipped (0 leaves the block out).
    noisy_methods : tuple of str
        The methods of the noisy block; ``"fedprox"`` is FedAvg with the
        proximal term (``proximal_mu``) and fine-tuning after it.
    noisy_normalization : str
    proximal_mu : float
    reduced_models : tuple of str
        Models of ``models`` that run only ``reduced_normalizations`` x
        ``reduced_methods`` and no noisy block (their runs are expensive).
    reduced_normalizations, reduced_methods : tuple of str
    model_knobs : tuple of (model, ((knob, value), ...))
        Federated knobs a model trains with instead of :attr:`fl`'s: conv1d
        takes paper 001's client and server Adam 1e-3 (at paper 000's 0.01 its
        first round diverged, train loss 7-12, and 5 of 6 runs then predicted
        one class for every clip).
    """

    name: str = "paper000_personalization"
    paper: str = ("paper 000's per-speaker setting (IV.A) and paper 001's future work: each "
                  "speaker's own model (beyond the papers)")
    centralized: bool = False
    engine: str = "auto"
    normalizations: Tuple[str, ...] = ("pooled", "federated", "per_client")
    methods: Tuple[str, ...] = ("finetune", "fedper", "fedrep", "ditto")
    plan: PersonalPlan = PersonalPlan()
    label_noise: float = 0.3
    noisy_clients: float = 0.5
    noisy_methods: Tuple[str, ...] = ("finetune", "fedprox", "fedper", "ditto")
    noisy_normalization: str = "pooled"
    proximal_mu: float = 0.01
    models: Tuple[str, ...] = ("mlp", "mlp_egemaps", "mlp_compare", "conv1d")
    reduced_models: Tuple[str, ...] = ("conv1d",)
    reduced_normalizations: Tuple[str, ...] = ("pooled", "per_client")
    reduced_methods: Tuple[str, ...] = ("finetune",)
    model_knobs: Tuple[Tuple[str, Tuple[Tuple[str, object], ...]], ...] = (
        ("conv1d", (("client_lr", 0.001), ("server_lr", 0.001))),)

    def cells(self, model: str) -> Tuple[Tuple[str, ...], Tuple[str, ...], bool]:
        """``(normalizations, methods, noisy block?)`` that ``model`` runs."""
        if model in self.reduced_models:
            return self.reduced_normalizations, self.reduced_methods, False
        return self.normalizations, self.methods, bool(self.label_noise)

    def conditions(self):
        out = []
        for model in self.models:
            normalizations, methods, noisy = self.cells(model)
            for norm in normalizations:
                for method in methods:
                    out.append(self._personal(f"{model}-{norm}-{method}", model, norm, method))
            if noisy:
                for method in self.noisy_methods:
                    out.append(self._personal(f"{model}-noisy-{method}", model,
                                              self.noisy_normalization, method, noisy=True))
        return tuple(out)

    def _personal(self, condition: str, model: str, normalization: str, method: str,
                  noisy: bool = False):
        fl = dataclasses.replace(self.fl, **dict(dict(self.model_knobs).get(model, ())))
        if method == "fedprox":
            fl = dataclasses.replace(fl, algorithm="fedprox", proximal_strength=self.proximal_mu)
        plan = dataclasses.replace(self.plan, method="finetune" if method == "fedprox" else method)
        return tuple(dataclasses.replace(
            spec, normalization=normalization, personal=plan,
            label_noise=self.label_noise if noisy else 0.0, noisy_clients=self.noisy_clients)
            for spec in self._spec(condition, model, FEDERATED, "by_speaker", 0,
                                   condition[len(model) + 1:], fl=fl))

    def column_label(self, spec) -> str:
        block, method = spec.setup.rsplit("-", 1)
        return f"{METHOD_LABELS.get(method, method)}, {block}"

    def comparison_pairs(self, conditions: Sequence[str]) -> List[tuple]:
        pairs = []
        for m in self.models:
            normalizations, methods, _ = self.cells(m)
            for method in methods:
                base = f"{m}-pooled-{method}"
                pairs += [(f"{m}-{norm}-{method}", base) for norm in normalizations
                          if norm != "pooled"]
            pairs += [(f"{m}-noisy-{method}", f"{m}-noisy-finetune")
                      for method in self.noisy_methods if method != "finetune"]
            pairs.append((f"{m}-noisy-finetune", f"{m}-{self.noisy_normalization}-finetune"))
        first = self.models[0]  # each input against the first model's, fine-tuned
        pairs += [(f"{m}-{norm}-finetune", f"{first}-{norm}-finetune")
                  for m in self.models[1:] for norm in self.normalizations]
        return [(a, b) for a, b in pairs if a in conditions and b in conditions]

    def summary_figures(self, table, corpus_note: str) -> List[tuple]:
        from tff_ser import plots
        figures = [("personal_vs_global", plot_personal_vs_global(
            table, title=f"{self.name}: each training speaker's own model vs the global one "
                         f"on its personal-test clips ({corpus_note})"))]
        curves = enrollment_curves(table)
        if curves:
            figures.append(("enrollment", plots.plot_learning_curves(
                {"held-out speakers": curves}, xlabel="k labelled clips of the new speaker",
                ylabel="UAR on the speaker's other clips",
                title=f"{self.name}: new-speaker enrollment ({corpus_note}; mean over seeds)")))
        return figures + super().summary_figures(table, corpus_note)

    def paper_section(self, table) -> List[str]:
        return personalization_section(table, self)


def personalization_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: held-out UAR, and the global and own models on each client's
    personal-test clips (mean of clients; mean ± sd over seeds), the own model's worst
    decile and the share of clients it helps, with the paired test of own vs global."""
    from tff_ser.stats import compare
    rows = []
    for _, r in seed_summary(table, metrics=PERSONAL_METRICS).iterrows():
        runs = table[table["condition"] == r["condition"]]
        c = compare(dict(zip(runs["seed"], runs["client_personal_uar"])),
                    dict(zip(runs["seed"], runs["client_global_uar"])))
        verdict = "n = 1" if c.n_a < 2 else (
            f"{c.diff:+.3f}, p = {c.paired_p:.3f}" if c.paired_p is not None else f"{c.diff:+.3f}")
        rows.append({"condition": r["condition"], "seeds": int(r["seeds"]),
                     "held-out UAR": mean_sd(r, "uar"),
                     "held-out UAR 95 % CI": interval(r, "uar"),
                     "clients: global UAR": mean_sd(r, "client_global_uar"),
                     "clients: own UAR": mean_sd(r, "client_personal_uar"),
                     "own - global (paired)": verdict,
                     "own: worst decile": r["client_personal_uar_p10"],
                     "clients helped": r["client_personal_better"]})
    return pd.DataFrame(rows)


def enrollment_curves(table: pd.DataFrame) -> dict:
    """``{condition: (ks, mean UAR over seeds)}`` of the runs that enrolled held-out speakers."""
    curves = {}
    for condition, runs in table.groupby("condition", sort=False):
        per_seed = [parse_enroll_uar(v) for v in runs.get("enroll_uar", [])]
        per_seed = [c for c in per_seed if c]
        if not per_seed:
            continue
        ks = sorted(set.intersection(*(set(c) for c in per_seed)))
        curves[condition] = (ks, [float(np.mean([c[k] for c in per_seed])) for k in ks])
    return curves


def enrollment_table(table: pd.DataFrame) -> pd.DataFrame:
    """UAR of the held-out speakers after enrolling k clips: one row per condition, mean ± sd."""
    from tff_ser.stats import mean_interval
    rows = []
    for condition, runs in table.groupby("condition", sort=False):
        per_seed = [c for c in (parse_enroll_uar(v) for v in runs.get("enroll_uar", [])) if c]
        if not per_seed:
            continue
        row = {"condition": condition, "seeds": len(per_seed)}
        for k in sorted(set.intersection(*(set(c) for c in per_seed))):
            iv = mean_interval([c[k] for c in per_seed])
            row[f"k = {k}"] = f"{iv.mean:.3f}" if np.isnan(iv.sd) else \
                f"{iv.mean:.3f} ± {iv.sd:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def plot_personal_vs_global(table: pd.DataFrame, *, title: str):
    """Bars per condition: the global and each client's own model on personal-test clips."""
    from tff_ser import plots
    long = pd.concat([
        table.assign(setup="global model", uar=table["client_global_uar"]),
        table.assign(setup="client's own model", uar=table["client_personal_uar"])])
    fig = plots.plot_metric_bars(long, metrics=("uar",), group="condition", title=title)
    fig.set_size_inches(max(6.0, 0.7 * table["condition"].nunique() + 2), 5.0)
    for label in fig.axes[0].get_xticklabels():
        label.set_rotation(60)
        label.set_horizontalalignment("right")
    return fig


def personalization_section(table: pd.DataFrame, config) -> List[str]:
    """``summary.md``'s section: the personalization table, enrollment, and how to read them."""
    lines = ["## Each speaker's own model", "",
             f"Every training speaker keeps {config.plan.test_fraction:.0%} of its clips "
             "(stratified by emotion, seeded per run) as its personal test; FedAvg trains on "
             "the rest.  'clients: global UAR' is the global model on those clips, 'clients: own "
             "UAR' each client's own model (fine-tuned, FedPer head, Ditto model) on the same "
             "clips, both the mean over clients; the paired test is over seeds.  'held-out UAR' "
             "is the global model on the held-out speakers (the global head of FedPer and "
             "FedRep is never trained: their held-out score is not a model anyone would "
             "deploy).  Noisy rows: "
             f"{config.noisy_clients:.0%} of the training speakers with "
             f"{config.label_noise:.0%} of their training labels flipped; personal-test and "
             "held-out labels are clean.", "",
             markdown_table(personalization_table(table)), ""]
    enroll = enrollment_table(table)
    if not enroll.empty:
        lines += ["## New-speaker enrollment", "",
                  "Each held-out speaker labels k of its clips (stratified, seeded), the global "
                  f"model adapts on them ({config.plan.steps} epochs, {config.plan.layers} "
                  "layers), and is scored on the speaker's clips after the largest k (the same "
                  "clips for every k). UAR, mean over speakers, mean ± sd over seeds.", "",
                  markdown_table(enroll), ""]
    return lines


# ---------------------------------------------------------------------------
# the declared experiment: full size and quick
# ---------------------------------------------------------------------------

PAPER000_PERSONALIZATION = with_overrides(PersonalizationExperiment(seeds=(0, 1, 2)),
                                          eval_every=0, federated_eval=False)
# Quick: the small corpus (10 training speakers, 2 held out), 2 rounds, one seed, fewer cells
# (eGeMAPS and conv1d: one cell each).
PAPER000_PERSONALIZATION_QUICK = with_overrides(
    PAPER000_PERSONALIZATION, size="small", max_speakers=12, rounds=2, quick=True, seeds=(0,),
    normalizations=("pooled", "per_client"), noisy_methods=("finetune", "ditto"),
    plan=PersonalPlan(steps=2, enroll_ks=(0, 5)), models=("mlp", "mlp_egemaps", "conv1d"),
    reduced_models=("mlp_egemaps", "conv1d"), reduced_normalizations=("per_client",),
    reduced_methods=("finetune",))
