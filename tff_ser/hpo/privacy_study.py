"""HPO beyond paper 000: the recipe and the DP noise as variables; accuracy, epsilon and bytes as objectives.

Paper 000 names differential privacy and communication as the next
objectives of its search.  This study searches

* ``recipe`` -- the server side: FedAvg, FedAdam, FedYogi, FedProx
  (:data:`tff_ser.fedconfig.RECIPES`);
* ``noise_multiplier`` -- DP-FedAvg's z (0: no DP; then weighted FedAvg with
  TFF's mean, else ``aggregator="dp"``, uniform weights);
* ``client_fraction`` -- CD, which sets both the bytes per round and the
  privacy amplification by sampling;

with the other knobs fixed (paper 000's per-speaker point: NGE, NLE, BS,
client LR), and three objectives: held-out accuracy (max), epsilon at
``delta`` (min; ``inf`` without DP) and the MB the clients send over the
run (min).  Each point is one :func:`tff_ser.federated.train_federated`
run (TFF's process where the recipe needs it).

It uses Optuna's public API only: ``optuna.create_study`` with three
directions, a ``GridSampler`` over the levels (each point once),
``study.optimize``, trial user attributes for the run's other scores and
``study.best_trials`` for the 3-objective Pareto front.  A storage URL
(``sqlite:///...``, a ``JournalStorage``) makes it resumable: finished
points are not run again.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

OBJECTIVES = ("accuracy", "epsilon", "mb_up")
DIRECTIONS = ("maximize", "minimize", "minimize")


@dataclasses.dataclass(frozen=True)
class PrivacySpace:
    """Levels of the three searched variables and the fixed knobs.

    ``dp_clip``: ``None`` for adaptive clipping (needs more than 10 z sampled
    clients, a full corpus); a fixed clip for small test corpora.
    """

    recipes: Tuple[str, ...] = ("fedavg", "fedadam", "fedyogi", "fedprox")
    noise_multipliers: Tuple[float, ...] = (0.0, 0.5, 1.0)
    client_fractions: Tuple[float, ...] = (0.5, 1.0)
    rounds: int = 20
    local_epochs: int = 5
    batch_size: int = 16
    client_lr: float = 0.01
    dp_clip: Optional[float] = None
    dp_delta: float = 1e-5
    seed: int = 0

    def search_space(self) -> Dict[str, list]:
        return {"recipe": list(self.recipes), "noise_multiplier": list(self.noise_multipliers),
                "client_fraction": list(self.client_fractions)}

    @property
    def size(self) -> int:
        return len(self.recipes) * len(self.noise_multipliers) * len(self.client_fractions)

    def federated_config(self, recipe_name: str, noise_multiplier: float,
                         client_fraction: float):
        """The FederatedConfig of one point."""
        from tff_ser.fedconfig import recipe
        knobs = dict(rounds=self.rounds, local_epochs=self.local_epochs,
                     batch_size=self.batch_size, client_lr=self.client_lr,
                     client_fraction=float(client_fraction), seed=self.seed)
        if noise_multiplier > 0:
            knobs.update(aggregator="dp", weighted=False, noise_multiplier=float(noise_multiplier),
                         dp_clip=self.dp_clip, dp_delta=self.dp_delta)
        return recipe(recipe_name, **knobs)


#: A CI-sized space for the 12-speaker test corpus (fixed clip: 5 clients are too few
#: for adaptive clipping).
QUICK_PRIVACY_SPACE = PrivacySpace(recipes=("fedyogi",), noise_multipliers=(0.0, 0.5),
                                   client_fractions=(0.5, 1.0), rounds=2, local_epochs=1,
                                   dp_clip=1.0)


def run_privacy_study(task, space: PrivacySpace = PrivacySpace(), *,
                      storage: Optional[str] = None, study_name: str = "privacy",
                      progress: bool = False):
    """Train every point of ``space`` once (resumable through ``storage``); returns the study.

    Points already finished in ``storage`` are not run again; a point whose
    configuration is invalid for the task (e.g. adaptive clipping with too
    few clients) fails before training and is recorded as a failed trial
    with the reason in its ``error`` user attribute, not dropped.
    """
    import optuna
    from tff_ser.fedconfig import check_config_for_task
    from tff_ser.federated import train_federated

    sampler = optuna.samplers.GridSampler(space.search_space(), seed=space.seed)
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                directions=list(DIRECTIONS), load_if_exists=True)
    # the grid sampler counts a finished point (complete or skipped) as visited
    remaining = space.size - sum(t.state.is_finished() for t in study.trials)

    def objective(trial):
        recipe_name = trial.suggest_categorical("recipe", list(space.recipes))
        z = trial.suggest_categorical("noise_multiplier", list(space.noise_multipliers))
        cd = trial.suggest_categorical("client_fraction", list(space.client_fractions))
        config = space.federated_config(recipe_name, z, cd)
        try:
            check_config_for_task(config, len(task.train_clients))
        except ValueError as exc:
            trial.set_user_attr("error", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        result = train_federated(task, config, progress=progress, federated_eval=False)
        val = result.final_metrics["validation"]
        privacy = result.final_metrics.get("privacy") or {}
        trial.set_user_attr("f1_macro", val["f1_macro"])
        trial.set_user_attr("engine", result.config["engine"])
        trial.set_user_attr("train_seconds", result.times["train_seconds"])
        eps = privacy.get("epsilon")
        return (float(val["accuracy"]), math.inf if eps is None else float(eps),
                result.final_metrics["communication"]["bytes_up"] / 1e6)

    if remaining > 0:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(objective, n_trials=remaining, catch=())
    return study


def study_table(study) -> pd.DataFrame:
    """One row per finished or skipped point: the variables, the three objectives, F1, engine,
    ``pareto`` (on the 3-objective front) and ``skipped`` (with the reason)."""
    import optuna
    front = {t.number for t in study.best_trials}
    rows = []
    for t in study.trials:
        row = {"trial": t.number, **t.params}
        if t.state == optuna.trial.TrialState.COMPLETE:
            row.update(dict(zip(OBJECTIVES, t.values)), f1_macro=t.user_attrs.get("f1_macro"),
                       engine=t.user_attrs.get("engine"),
                       train_seconds=t.user_attrs.get("train_seconds"),
                       pareto=t.number in front, skipped="")
        elif t.state == optuna.trial.TrialState.PRUNED:
            row.update(pareto=False, skipped=t.user_attrs.get("error", "pruned"))
        else:
            continue
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_mask_3d(values: np.ndarray, directions: Sequence[str] = DIRECTIONS) -> np.ndarray:
    """Non-dominated rows of ``values`` (n x 3) for the given directions (an independent check
    of Optuna's ``best_trials``)."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    v = np.asarray(values, float) * sign  # all minimised
    keep = np.ones(len(v), bool)
    for i in range(len(v)):
        no_worse = np.all(v <= v[i], axis=1)
        better = np.any(v < v[i], axis=1)
        keep[i] = not np.any(no_worse & better)
    return keep


def plot_projection(table: pd.DataFrame, *, title: str = ""):
    """The 3-objective front projected on accuracy vs epsilon; marker area = MB sent.

    Points without DP (epsilon infinite) sit at the right edge, labelled "no DP".
    """
    from matplotlib.figure import Figure
    done = table[table["skipped"] == ""].copy()
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.subplots()
    finite = done["epsilon"][np.isfinite(done["epsilon"])]
    right = float(finite.max()) * 3 if len(finite) else 10.0
    x = done["epsilon"].where(np.isfinite(done["epsilon"]), right)
    size = 20 + 200 * done["mb_up"] / max(float(done["mb_up"].max()), 1e-12)
    for on_front, marker, label in ((False, "o", "dominated"), (True, "*", "Pareto (3 objectives)")):
        sel = done["pareto"] == on_front
        ax.scatter(x[sel], done["accuracy"][sel], s=size[sel] * (1.6 if on_front else 1.0),
                   marker=marker, alpha=0.75, label=label)
    for _, r in done[done["pareto"]].iterrows():
        ax.annotate(f"{r['recipe']} z={r['noise_multiplier']} CD={r['client_fraction']}",
                    (x[_], r["accuracy"]), textcoords="offset points", xytext=(5, 3), fontsize=7)
    ax.set_xscale("log")
    ax.axvline(right, ls=":", color="grey")
    ax.text(right, ax.get_ylim()[0], " no DP", fontsize=8, color="grey", va="bottom")
    ax.set_xlabel("epsilon at delta = 1e-5 (log scale)")
    ax.set_ylabel("Accuracy on held-out speakers")
    ax.set_title(title or "Accuracy vs privacy; marker area: MB sent by the clients", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def write_privacy_report(out_dir, study, space: PrivacySpace, *, task, command: str,
                         wall_seconds: float) -> Dict[str, object]:
    """``privacy_study.csv``, ``privacy_projection.png`` and ``summary.md`` of a finished study."""
    import pathlib
    from tff_ser.hpo.report import markdown_table
    from tff_ser.plots import save_figure
    out = pathlib.Path(out_dir)
    table = study_table(study)
    csv = out / "privacy_study.csv"
    table.to_csv(csv, index=False)
    corpus = task.info.get("corpus")
    note = "generated stand-in corpus, not CREMA-D" if corpus == "generated" else corpus
    fig = save_figure(plot_projection(
        table, title=f"Accuracy vs epsilon, marker area = MB sent ({note})"),
        out / "privacy_projection.png")
    done = table[table["skipped"] == ""]
    show = done.assign(epsilon=done["epsilon"].map(lambda e: "no DP" if math.isinf(e) else f"{e:.1f}"))
    columns = ["recipe", "noise_multiplier", "client_fraction", "accuracy", "f1_macro", "epsilon",
               "mb_up", "engine", "train_seconds"]
    skipped = table[table["skipped"] != ""]
    lines = [f"# HPO beyond paper 000: accuracy, epsilon and bytes ({note})", "",
             f"Command: `{command}`", "", f"Task: {task.info.get('description', '')}", "",
             f"Space: recipes {list(space.recipes)} x noise multiplier "
             f"{list(space.noise_multipliers)} x CD {list(space.client_fractions)} "
             f"({space.size} points); fixed NGE {space.rounds}, NLE {space.local_epochs}, "
             f"BS {space.batch_size}, client LR {space.client_lr}, seed {space.seed}; DP "
             f"clipping {'adaptive' if space.dp_clip is None else f'fixed {space.dp_clip}'}, "
             f"delta {space.dp_delta}. One seed per point: a screening of the space, not a "
             "claim; confirm a chosen point over seeds (tff_ser.experiments).", "",
             f"{len(done)} of {space.size} points finished, {len(skipped)} skipped; wall time "
             f"{wall_seconds:.0f} s (this call).", "",
             "## Pareto front (max accuracy, min epsilon, min MB up)", "",
             markdown_table(show[show["pareto"]][columns].reset_index(drop=True)), "",
             "## Every point", "", markdown_table(show[columns].reset_index(drop=True)), ""]
    if len(skipped):
        lines += ["## Skipped points", "",
                  markdown_table(skipped[["recipe", "noise_multiplier", "client_fraction",
                                          "skipped"]].reset_index(drop=True)), ""]
    lines += ["![projection](privacy_projection.png)", ""]
    summary = out / "summary.md"
    summary.write_text("\n".join(lines))
    return {"table": csv, "figure": fig, "summary": summary}
