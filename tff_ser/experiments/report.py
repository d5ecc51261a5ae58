"""An experiment's results folder, read by people: its table, figures and summary.

What :func:`tff_ser.experiments.runner.run_experiment` writes once its runs
are trained (or read back):

* ``results.csv`` -- one row per run (:func:`table_row`, :data:`TABLE_COLUMNS`);
* PNG figures (:func:`draw_figures`): confusion matrices, learning curves and
  the config's own (:meth:`~tff_ser.experiments.configs.ExperimentConfig.summary_figures`);
* ``summary.md`` (:func:`write_summary`): corpus, command, machine, the table
  over seeds with intervals, the differences the seeds support, the paper's
  own section (:meth:`~tff_ser.experiments.configs.ExperimentConfig.paper_section`)
  and the figures;
* ``PARTIAL`` while runs are missing (:func:`write_partial`).

It knows no paper: a baseline's tables and figures come through the hooks
of its config class (:mod:`tff_ser.baselines`).
"""
from __future__ import annotations

import datetime
import os
import pathlib
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from tff_ser.experiments.configs import CENTRALIZED, SETUP_LABELS, RunSpec
from tff_ser.personalization import personal_summary

if TYPE_CHECKING:
    from tff_ser.results import RunResult

SUMMARY_FILE = "summary.md"
FAILED_FILE = "FAILED"
PARTIAL_FILE = "PARTIAL"
TABLE_FILE = "results.csv"
RUNS_DIR = "runs"

#: Columns of ``results.csv``, in order.
TABLE_COLUMNS = ("run_id", "condition", "seed", "model", "setup", "mode", "partition",
                 "clients", "rounds", "accuracy", "precision_macro", "recall_macro",
                 "f1_macro", "f1_weighted", "uar", "client_mean_accuracy", "train_seconds", "wall_seconds",
                 "engine", "corpus", "train_speakers", "val_speakers", "train_clips",
                 "val_clips", "epsilon", "bytes_up", "bytes_down", "speaker_acc_sd",
                 "speaker_acc_p10", "speaker_acc_min", "speaker_acc_female", "speaker_acc_male",
                 "label_noise", "client_global_uar", "client_personal_uar",
                 "client_personal_uar_p10", "client_personal_better", "enroll_uar",
                 "parameters", "predicted_classes")

#: Scores summarised over seeds (mean ± sd, 95 % t-interval) in the summary tables.
SEED_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "uar",
                "client_mean_accuracy", "train_seconds")


#: Seconds read better to a tenth than to a thousandth.
TIME_FORMATS = {"train time (s)": ".1f", "paper time (s)": ".0f", "ours time (s)": ".1f"}


def per_speaker_stats(per_speaker: dict, speaker_sex: Optional[dict] = None) -> dict:
    """Spread of the held-out speakers' accuracies: sd, worst decile (10th percentile), minimum,
    and the mean over female and over male speakers where ``speaker_sex`` knows them."""
    values = np.array(list(per_speaker.values()), dtype=float)
    out = {"speaker_acc_sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
           "speaker_acc_p10": float(np.percentile(values, 10)) if len(values) else None,
           "speaker_acc_min": float(values.min()) if len(values) else None}
    for sex, column in (("F", "speaker_acc_female"), ("M", "speaker_acc_male")):
        group = [v for spk, v in per_speaker.items()
                 if str((speaker_sex or {}).get(spk) or "").upper()[:1] == sex]
        out[column] = float(np.mean(group)) if group else None
    return out


def table_row(spec: RunSpec, result, speaker_sex: Optional[dict] = None) -> dict:
    """The ``results.csv`` row of one finished run (``speaker_sex``: speaker -> "F"/"M")."""
    val = result.final_metrics.get("validation", {})
    info = result.config.get("task", {})
    engine = result.config.get("engine") if spec.mode != CENTRALIZED else None
    return {
        "run_id": spec.run_id, "condition": spec.condition, "seed": spec.seed,
        "model": spec.model, "setup": spec.setup, "mode": spec.mode,
        "partition": spec.partition if spec.mode != CENTRALIZED else "pooled",
        "clients": info.get("k") if spec.mode != CENTRALIZED else None,
        "rounds": spec.rounds,
        "accuracy": val.get("accuracy"), "precision_macro": val.get("precision_macro"),
        "recall_macro": val.get("recall_macro"), "f1_macro": val.get("f1_macro"),
        "f1_weighted": val.get("f1_weighted"),
        "uar": val.get("balanced_accuracy"),
        "client_mean_accuracy": result.final_metrics.get("validation_client_mean_accuracy"),
        "train_seconds": result.times.get("train_seconds"),
        "wall_seconds": result.times.get("wall_seconds"),
        "engine": engine,
        "corpus": info.get("corpus"),
        "train_speakers": info.get("train_speakers"), "val_speakers": info.get("val_speakers"),
        "train_clips": info.get("train_clips"), "val_clips": info.get("val_clips"),
        # DP runs: epsilon at the run's delta; every federated run: bytes over all rounds
        "epsilon": (result.final_metrics.get("privacy") or {}).get("epsilon"),
        "bytes_up": (result.final_metrics.get("communication") or {}).get("bytes_up"),
        "bytes_down": (result.final_metrics.get("communication") or {}).get("bytes_down"),
        **per_speaker_stats(result.final_metrics.get("validation_per_client_accuracy") or {},
                            speaker_sex),
        "label_noise": spec.label_noise or None,
        # personalization: each training client's own model on its personal-test clips
        **personal_summary(result.final_metrics.get("personalized")),
        # the trained network's weights (a search run: its search network), if recorded
        "parameters": result.extra.get("parameters"),
        # 1: the final model gives every held-out clip one class (collapsed_section)
        "predicted_classes": predicted_classes(result),
    }


def predicted_classes(result) -> Optional[int]:
    """How many classes the run's final model predicted on the held-out clips (None: not
    scored).  1 flags a collapsed or diverged training whose scores are chance."""
    from tff_ser.metrics import predicted_class_count
    matrix = (result.final_metrics.get("validation") or {}).get("confusion_matrix")
    return None if matrix is None else predicted_class_count(matrix)


def collapse_note(run_id: str, result) -> str:
    """'' unless the run's final model predicts one class for every held-out clip; then one
    line saying so and what to try (printed when the run ends)."""
    uar = (result.final_metrics.get("validation") or {}).get("balanced_accuracy")
    if predicted_classes(result) != 1 or uar == 1.0:  # 1.0: held-out clips of one class, all right
        return ""
    losses = [row.get("train_loss") for row in result.history if row.get("train_loss") is not None]
    trend = (f" (train loss {losses[0]:.3g} in the first round or epoch, {losses[-1]:.3g} in "
             "the last)") if losses else ""
    return (f"run {run_id} predicts one class for every held-out clip{trend}: its training "
            "collapsed or diverged and its scores are chance, not what the model can learn; "
            "try a lower learning rate (client_lr, server_lr) or fewer local epochs")


def collapse_section(table: pd.DataFrame) -> List[str]:
    """``summary.md``'s warning about runs whose final model predicts one class."""
    if "predicted_classes" not in table.columns:
        return []
    collapsed = table[(pd.to_numeric(table["predicted_classes"], errors="coerce") == 1)
                      & (pd.to_numeric(table.get("uar"), errors="coerce") != 1.0)]
    if collapsed.empty:
        return []
    return ["## Collapsed runs", "",
            f"**{plural(len(collapsed), 'run')} of {len(table)} predict one class for every "
            "held-out clip**: training collapsed or diverged, so those scores are chance "
            "(UAR = 1 / classes), not a measure of the model or the setting. Rows that include "
            "them are not evidence; rerun with a lower learning rate or fewer local epochs.",
            "", ", ".join(f"`{r}`" for r in collapsed["run_id"]), ""]


def problems_note(feature_sets) -> str:
    """'' for a clean corpus, else what was skipped or suspicious (for summary.md)."""
    from tff_ser.corpus.problems import has_problems
    notes = []
    for fs in feature_sets:
        p = fs.corpus_problems
        if p and has_problems(p):
            c = p["counts"]
            notes.append(f"{fs.kind}: {c['skipped']} clip(s) skipped, {c['suspicious']} "
                         f"suspicious clip(s) kept, missing classes "
                         f"{p['missing_classes'] or 'none'}")
    if not notes:
        return ""
    return ("; **corpus problems** (each run's result.json lists them under "
            "extra.corpus_problems): " + "; ".join(notes))


def write_partial(path: pathlib.Path, *, config, specs: Sequence[RunSpec], done: List[str],
                  missing: List[str], command: str, interrupted: str = "") -> None:
    """``PARTIAL``: which runs are saved and which are left (no results table yet).

    ``interrupted`` (e.g. "interrupted after 310 s") says the command was
    stopped, not that it failed: a checkpointed run in progress resumes.
    """
    lines = [f"{config.name}: {len(done)} of {len(specs)} runs saved; not finished"
             + (f" ({interrupted})." if interrupted else "."),
             f"command: {command}", "",
             "saved: " + (", ".join(done) or "none"),
             "missing: " + ", ".join(missing), ""]
    if interrupted:
        lines.append(f"Run `{command}` again to resume: saved runs are read back and a "
                     "checkpointed run goes on from its last saved round.")
    lines.append(f"Run `tff-ser experiment {config.name}` (without --only) to train what is "
                 "missing and write results.csv, the figures and summary.md.")
    from tff_ser.rundir import atomic_write_text
    atomic_write_text(path, "\n".join(lines) + "\n")


def write_table(rows: List[dict], path: pathlib.Path) -> None:
    """Write ``results.csv`` (replaced in one step, so readers never see half a file)."""
    from tff_ser.rundir import atomic_write_csv
    atomic_write_csv(path, pd.DataFrame(rows, columns=list(TABLE_COLUMNS)))


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------

def _history_curve(result, metric: str = "val_accuracy"):
    rows = [h for h in result.history if metric in h]
    return [h["round"] for h in rows], [h[metric] for h in rows]


def draw_figures(config, specs: Sequence[RunSpec], results: dict, table: pd.DataFrame,
                 out: pathlib.Path) -> Dict[str, pathlib.Path]:
    """Draw and save the experiment's PNG figures; returns name -> path."""
    from tff_ser import plots
    figures: Dict[str, pathlib.Path] = {}

    def save(name, fig):
        figures[name] = plots.save_figure(fig, out / f"{name}.png")

    corpus_note = corpus_short(table)
    by_id = {s.run_id: s for s in specs}
    class_names = None
    for r in results.values():
        class_names = r.final_metrics.get("validation", {}).get("class_names") or class_names
    cells = {}
    for run_id, r in results.items():
        cm = r.final_metrics.get("validation", {}).get("confusion_matrix")
        if cm is not None:
            spec = by_id[run_id]
            col = config.column_label(spec)
            # summed over seeds: the held-out clips of every seed's run, pooled
            cm = np.asarray(cm)
            cells[(spec.model, col)] = cells.get((spec.model, col), 0) + cm
    if cells:
        save("confusion_matrices", plots.plot_confusion_grid(
            cells, class_names=class_names,
            title=f"{config.name}: confusion matrices on held-out speakers ({corpus_note}"
                  + (f"; summed over {len(config.seeds)} seeds" if len(config.seeds) > 1 else "")
                  + ")"))

    for name, fig in config.summary_figures(table, corpus_note):
        save(name, fig)

    curves: Dict[tuple, list] = {}
    for run_id, r in results.items():
        spec = by_id[run_id]
        rounds, values = _history_curve(r)
        if len(rounds) > 0:
            label = config.column_label(spec)
            curves.setdefault((spec.model, label), []).append(dict(zip(rounds, values)))
    panels = {}
    for (model, label), seeds in curves.items():
        # the mean over seeds, at the rounds every seed scored
        common = sorted(set.intersection(*(set(c) for c in seeds)))
        panels.setdefault(model, {})[label] = (
            common, [float(np.mean([c[r] for c in seeds])) for r in common])
    speakers: Dict[str, Dict[str, list]] = {}
    for run_id, r in results.items():
        for spk, acc in (r.final_metrics.get("validation_per_client_accuracy") or {}).items():
            label = f"{by_id[run_id].model}, {config.column_label(by_id[run_id])}"
            speakers.setdefault(label, {}).setdefault(spk, []).append(acc)
    if speakers:
        save("per_speaker", plots.plot_per_speaker_ecdf(
            {label: [float(np.mean(v)) for v in per.values()] for label, per in speakers.items()},
            title=f"{config.name}: accuracy of each held-out speaker ({corpus_note}"
                  + ("; mean over seeds" if len(config.seeds) > 1 else "") + ")"))
    if panels:
        save("learning_curves", plots.plot_learning_curves(
            panels, ylabel="Held-out accuracy (fraction of clips)",
            title=f"{config.name}: accuracy per round (federated) / epoch (centralized)"
                  + ("; mean over seeds" if len(config.seeds) > 1 else "")))
    return figures


def per_speaker_section(table: pd.DataFrame) -> List[str]:
    """``summary.md``'s per-speaker table: the spread the pooled score hides."""
    if "speaker_acc_min" not in table.columns or table["speaker_acc_min"].isna().all():
        return []
    metrics = ("client_mean_accuracy", "speaker_acc_sd", "speaker_acc_p10", "speaker_acc_min",
               "speaker_acc_female", "speaker_acc_male")
    rows = []
    for _, r in seed_summary(table, metrics=metrics).iterrows():
        rows.append({"model": r["model"], "setup": r["setup"], "mode": r["mode"],
                     "seeds": int(r["seeds"]), "mean": mean_sd(r, "client_mean_accuracy"),
                     "sd across speakers": r["speaker_acc_sd"],
                     "worst decile": r["speaker_acc_p10"], "minimum": r["speaker_acc_min"],
                     "female": r["speaker_acc_female"], "male": r["speaker_acc_male"]})
    return ["## Per speaker", "",
            "Accuracy of each held-out speaker: their mean (± sd over seeds), their sd, the "
            "worst decile (10th percentile) and the minimum, and the mean over female and over "
            "male speakers (blank where the corpus records no sex); each averaged over seeds. "
            "Figure `per_speaker.png`: the speakers' accuracies as an ECDF.", "",
            markdown_table(pd.DataFrame(rows)), ""]


def plural(n: int, word: str) -> str:
    """``1 round``, ``2 rounds``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def corpus_short(table: pd.DataFrame) -> str:
    """The corpora of a results table in a few words, for figure titles."""
    corpora = sorted(set(table["corpus"].dropna()))
    names = ["generated corpus" if c == "generated" else c for c in corpora]
    return ", ".join(names) or "unknown corpus"


# ---------------------------------------------------------------------------
# summary.md
# ---------------------------------------------------------------------------

def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f",
                   formats: Optional[Dict[str, str]] = None) -> str:
    """A pipe table of ``frame`` (no extra dependency); missing values are blank.

    ``formats`` maps column names to format specs overriding ``floatfmt``.
    """
    formats = formats or {}

    def cell(v, column):
        if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return format(float(v), formats.get(column, floatfmt))
        return str(v)
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v, c) for v, c in zip(row, frame.columns)) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule] + body)


def seed_summary(table: pd.DataFrame, metrics: Sequence[str] = SEED_METRICS) -> pd.DataFrame:
    """One row per condition (a run's setting without its seed) of ``results.csv``.

    Columns: ``condition``, ``model``, ``setup``, ``mode``, ``clients``,
    ``seeds`` (how many), ``seed_list``, and for each metric its mean
    (``<metric>``), sample sd (``<metric>_sd``) and 95 % t-interval
    (``<metric>_low`` / ``<metric>_high``; NaN with one seed, see
    :func:`tff_ser.stats.mean_interval`).  A table without a ``condition``
    column (one row per run) is read as one seed per row.
    """
    from tff_ser.stats import mean_interval
    if "condition" not in table.columns:
        table = table.assign(condition=table["run_id"] if "run_id" in table.columns
                             else [str(i) for i in range(len(table))])
    rows = []
    for condition, group in table.groupby("condition", sort=False):
        first = group.iloc[0]
        row = {"condition": condition}
        for column in ("model", "setup", "mode", "clients"):
            row[column] = first.get(column)
        row["seeds"] = len(group)
        row["seed_list"] = " ".join(str(int(v)) for v in group["seed"]) \
            if "seed" in group else ""
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce") if metric in group \
                else pd.Series([np.nan] * len(group))
            if values.isna().all():
                row.update({metric: np.nan, f"{metric}_sd": np.nan, f"{metric}_low": np.nan,
                            f"{metric}_high": np.nan})
                continue
            iv = mean_interval(values)  # a NaN beside numbers is refused, not dropped
            row.update({metric: iv.mean, f"{metric}_sd": iv.sd, f"{metric}_low": iv.low,
                        f"{metric}_high": iv.high})
        rows.append(row)
    return pd.DataFrame(rows)


def mean_sd(row, metric: str) -> str:
    """``0.662 ± 0.005`` of a :func:`seed_summary` row (just the mean with one seed)."""
    mean, sd = row[metric], row[f"{metric}_sd"]
    if pd.isna(mean):
        return ""
    return f"{mean:.3f}" if pd.isna(sd) else f"{mean:.3f} ± {sd:.3f}"


def interval(row, metric: str) -> str:
    """``[0.650, 0.674]`` of a :func:`seed_summary` row (``n = 1`` with one seed)."""
    if pd.isna(row[metric]):
        return ""
    if pd.isna(row[f"{metric}_low"]):
        return "n = 1"
    return f"[{row[f'{metric}_low']:.3f}, {row[f'{metric}_high']:.3f}]"


def compare_results(a, b, *, metric: str = "uar", labels: Tuple[str, str] = ("a", "b"),
                    conditions: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """Condition by condition, one results folder against another: the same experiment on two
    corpora (a noisy copy against the clean one) or at two settings.

    ``a`` and ``b`` are results folders (their ``results.csv``) or results tables.  One row per
    condition both hold (or each of ``conditions``): each side's mean ± sd over seeds, and
    ``a - b`` with its verdict (:func:`tff_ser.stats.compare`: 95 % t-intervals, and the
    paired t-test over the seeds both ran -- the same seed draws the same initial weights,
    split and client sampling, so the pairs differ only in what differs between the folders).
    """
    from tff_ser.stats import compare, mean_interval

    def table_of(x) -> pd.DataFrame:
        if isinstance(x, pd.DataFrame):
            return x
        path = pathlib.Path(x)
        path = path / TABLE_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no {TABLE_FILE} at {path}: give a finished results folder "
                                    "(run the experiment to the end) or its table")
        return pd.read_csv(path)

    ta, tb = table_of(a), table_of(b)
    for name, t in zip(labels, (ta, tb)):
        if metric not in t.columns:
            raise ValueError(f"{name}'s table has no column {metric!r}; its columns: "
                             f"{', '.join(t.columns)}")
    shared = [c for c in dict.fromkeys(ta["condition"]) if c in set(tb["condition"])]
    if conditions is not None:
        unknown = [c for c in conditions if c not in shared]
        if unknown:
            raise ValueError(f"conditions {unknown} are not in both tables; shared: "
                             f"{', '.join(shared) or 'none'}")
        shared = list(conditions)
    rows = []
    for cond in shared:
        va, vb = ({int(s): float(v) for s, v in zip(t.loc[t["condition"] == cond, "seed"],
                                                     t.loc[t["condition"] == cond, metric])
                   if pd.notna(v)} for t in (ta, tb))
        if not va or not vb:
            continue
        c = compare(va, vb)
        rows.append({"condition": cond, labels[0]: mean_interval(list(va.values())).format(),
                     labels[1]: mean_interval(list(vb.values())).format(),
                     f"{labels[0]} - {labels[1]}": f"{c.diff:+.3f}", "paired test": c.p_text,
                     "verdict": c.verdict})
    return pd.DataFrame(rows)


def results_view(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader compares, named as in paper 001's tables, one row per setting.

    Scores are ``mean ± sd`` over the seeds (just the value with one seed);
    ``F1 95 % CI`` is the t-interval of the macro-F1 mean; ``seeds`` says how
    many runs each row averages.  When two settings share model, setup and
    clients (paper 003's two searched cells), a first column ``run`` names each
    row's condition.
    """
    summary = seed_summary(table)
    rows = []
    for _, r in summary.iterrows():
        rows.append({
            "run": r["condition"],
            "model": r["model"], "setup": SETUP_LABELS.get(r["setup"], r["setup"]),
            # centralized runs train on the pooled clips; say so instead of NaN
            "clients": "pooled" if pd.isna(r["clients"]) else int(r["clients"]),
            "seeds": int(r["seeds"]),
            "accuracy": mean_sd(r, "accuracy"), "precision": mean_sd(r, "precision_macro"),
            "recall": mean_sd(r, "recall_macro"), "F1 (macro)": mean_sd(r, "f1_macro"),
            "F1 95 % CI": interval(r, "f1_macro"), "UAR": mean_sd(r, "uar"),
            "client-mean acc": mean_sd(r, "client_mean_accuracy"),
            "train time (s)": r["train_seconds"]})
    view = pd.DataFrame(rows, columns=["run", "model", "setup", "clients", "seeds", "accuracy",
                                       "precision", "recall", "F1 (macro)", "F1 95 % CI",
                                       "UAR", "client-mean acc", "train time (s)"])
    if not view.duplicated(["model", "setup", "clients"]).any():
        view = view.drop(columns="run")
    return view


def seed_comparisons(table: pd.DataFrame, pairs: Sequence[tuple],
                     metric: str = "f1_macro") -> List[str]:
    """One reading per ``(condition a, condition b)``: difference, intervals, paired test."""
    from tff_ser.stats import compare
    lines = []
    for a, b in pairs:
        ra, rb = table[table["condition"] == a], table[table["condition"] == b]
        if ra.empty or rb.empty:
            continue
        comparison = compare(dict(zip(ra["seed"], ra[metric])), dict(zip(rb["seed"], rb[metric])))
        name = "F1" if metric == "f1_macro" else metric
        lines.append("- " + comparison.reading(a, b, name))
    return lines


def _differences_section(config, table: pd.DataFrame) -> List[str]:
    """What the seeds say: each comparison the reading rests on, with its test."""
    lines = seed_comparisons(table, config.comparison_pairs(list(dict.fromkeys(table["condition"]))))
    if not lines:
        return []
    return ["## Differences over seeds (macro F1)", "",
            "A difference is claimed only when the 95 % t-intervals of the two means separate "
            "or a paired t-test over the seeds both settings ran with gives p < 0.05 (same "
            "seed = same initial weights, partition and client sampling).", ""] + lines + [""]


def _seed_note(config) -> str:
    counts = {m: len(config.seeds_for(m)) for m in config.models}
    if len(set(counts.values())) == 1:
        return f"seeds {', '.join(map(str, config.seeds_for(config.models[0])))}"
    return "; ".join(f"{m}: seeds {', '.join(map(str, config.seeds_for(m)))}" for m in counts)


def machines_line(results: Dict[str, "RunResult"]) -> str:
    """Which machine trained which runs (``result.extra["machine"]``), for a summary.

    The same seed reproduces a run's metrics on the same machine and software,
    not across CPUs (docs/guide/reproducibility.md), so a table's rows say where
    they were trained.
    """
    from tff_ser.runtime import describe_machine
    groups: Dict[str, List[str]] = {}
    for run_id, result in results.items():
        info = result.extra.get("machine")
        label = describe_machine(info) if isinstance(info, dict) else \
            "not recorded (trained before runs recorded their machine, 2026-12-03)"
        groups.setdefault(label, []).append(run_id)
    if len(groups) == 1:
        return next(iter(groups)) + " (every run)"
    return "; ".join(f"{label}: " + ", ".join(f"`{r}`" for r in runs)
                     for label, runs in groups.items())


def write_summary(path: pathlib.Path, *, config, table: pd.DataFrame,
                  figures: Dict[str, pathlib.Path], corpus: str, command: str,
                  wall_seconds: float, specs: Sequence[RunSpec],
                  reused: Sequence[str] = (), machines: Optional[str] = None) -> None:
    """Write ``summary.md`` in one step (it marks the folder as finished).

    ``machines`` (:func:`machines_line`) says which machine trained which runs.
    """
    import tff_ser
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    variant = "quick variant (small corpus, few rounds: a smoke run, not the paper's setting)" \
        if config.quick else "full size (the paper's settings)"
    first = table.iloc[0] if not table.empty else {}
    # fl.seed is replaced by each run's own seed (``seeds``), so it is not a setting here
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("name", "paper", "quick", "seed")}
    lines = [
        f"# {config.name}: {config.paper}", "",
        f"- **Corpus**: {corpus}",
        f"- **Variant**: {variant}",
        f"- **Command**: `{command}`",
        f"- **tff_ser** {tff_ser.__version__}, run {now}, wall time {wall_seconds:.0f} s "
        f"({wall_seconds / 60:.1f} min)",
        f"- **Held-out speakers**: {first.get('val_speakers')} ({first.get('val_clips')} clips, "
        f"one validation client each); training speakers: {first.get('train_speakers')} "
        f"({first.get('train_clips')} clips)",
        "- **Settings**: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
    ]
    run_walls = pd.to_numeric(table.get("wall_seconds"), errors="coerce") \
        if not table.empty else pd.Series(dtype=float)
    if run_walls.notna().any():
        slowest = table.loc[run_walls.idxmax()]
        lines.append(f"- **Runs' own wall times**, summed: {run_walls.sum():.0f} s "
                     f"({run_walls.sum() / 3600:.2f} h) on {os.cpu_count()} CPU core(s); "
                     f"longest `{slowest['run_id']}` {run_walls.max():.0f} s")
    if machines:
        lines.append(f"- **Trained on**: {machines}; the same seed gives the same metrics on "
                     "the same machine and software, another CPU gives another draw "
                     "(docs/guide/reproducibility.md)")
    if reused:
        lines.append("- **Read back, not retrained** (saved by an earlier run with the same "
                     "settings and corpus; their times are from that run): "
                     + ", ".join(f"`{r}`" for r in reused))
    lines += [
        "",
        "## Results on the held-out speakers", "",
        f"One row per setting; scores are mean ± sd over its seeds ({_seed_note(config)}), "
        "`F1 95 % CI` the t-interval of the mean (none with one seed).  "
        "accuracy, macro precision / recall / F1 and UAR over the pooled held-out clips; "
        "client-mean acc = mean of per-speaker accuracies (paper 000's objective); train time "
        "= seconds in training steps (federated: the rounds' `process.next`, centralized: "
        "`fit`), evaluation excluded.", "",
        markdown_table(results_view(table), formats=TIME_FORMATS), "",
    ]
    lines += collapse_section(table)
    lines += per_speaker_section(table)
    lines += _differences_section(config, table)
    lines += list(config.paper_section(table)) + [""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({p.name})" for name, p in figures.items()] + [""]
    lines += ["## Files", "",
              f"- `{TABLE_FILE}`: every number above, one row per run and seed",
              f"- `{RUNS_DIR}/<run_id>/result.json`, `history.csv`: each run's config, "
              "per-round history and final metrics (confusion matrix, per-class scores)",
              "- runs: " + ", ".join(f"`{s.run_id}`" for s in specs), ""]
    from tff_ser.rundir import atomic_write_text
    atomic_write_text(path, "\n".join(lines))
