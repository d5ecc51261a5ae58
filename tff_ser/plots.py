"""Figures of the corpus and the experiments.

Corpus: clips per speaker and emotion, waveform and spectrogram per emotion,
feature matrices.  Experiments: confusion matrices, F1 against the number of
clients, learning curves, metric bars, a DARTS search's architecture weights.

Every function returns a :class:`matplotlib.figure.Figure` built without
``pyplot``, so nothing depends on (or changes) the interactive backend: the
same code draws in a headless CI job (Agg) and in a notebook, where a
returned figure displays itself.  :func:`save_figure` writes a PNG.
Inputs are plain data (lists, dicts, DataFrames), not training objects.
"""
from __future__ import annotations

import math
import os
import pathlib
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

#: Metric columns of ``results.csv`` and how axes and legends name them.
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)",
    "uar": "UAR",
    "client_mean_accuracy": "Client-mean accuracy",
}


def save_figure(fig: Figure, path, *, dpi: int = 120) -> pathlib.Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders created); returns the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(os.fspath(path), dpi=dpi, bbox_inches="tight")
    return path


def _grid(n: int, max_cols: int) -> Tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def plot_confusion_grid(cells: Mapping[Tuple[str, str], Sequence[Sequence[int]]], *,
                        class_names: Optional[Sequence[str]] = None,
                        normalize: bool = True, title: str = "Confusion matrices",
                        cell_size: float = 2.6) -> Figure:
    """One confusion matrix per (row, column) cell, e.g. (model, setup).

    Parameters
    ----------
    cells : mapping
        ``(row label, column label) -> matrix`` (rows true class, columns
        predicted, counts).  Row and column order follow first appearance.
    class_names : sequence of str, optional
        Tick labels (default ``0, 1, ...``).
    normalize : bool
        Colour by the fraction of each true class (row-normalised); the
        counts are printed in the cells either way.
    title : str
    cell_size : float
        Inches per matrix.

    Examples
    --------
    >>> fig = plot_confusion_grid({("dense", "Baseline"): [[3, 1], [0, 4]]},
    ...                           class_names=["NEU", "ANG"])
    >>> len(fig.axes)
    2
    """
    if not cells:
        raise ValueError("no confusion matrices to draw; pass {(row, column): matrix}")
    rows = list(dict.fromkeys(r for r, _ in cells))
    cols = list(dict.fromkeys(c for _, c in cells))
    n = len(np.asarray(next(iter(cells.values()))))
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    fig = Figure(figsize=(cell_size * len(cols) + 1.2, cell_size * len(rows) + 0.8),
                 layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    image = None
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            if (row, col) not in cells:
                ax.axis("off")
                continue
            cm = np.asarray(cells[(row, col)], dtype=float)
            if cm.shape != (len(names), len(names)):
                raise ValueError(f"matrix ({row}, {col}) is {cm.shape}, expected "
                                 f"{len(names)} x {len(names)} for classes {names}")
            totals = cm.sum(axis=1, keepdims=True)
            shown = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0) \
                if normalize else cm
            image = ax.imshow(shown, cmap="Blues", vmin=0,
                              vmax=1 if normalize else max(cm.max(), 1))
            for a in range(len(names)):
                for b in range(len(names)):
                    ax.text(b, a, f"{int(cm[a, b])}", ha="center", va="center", fontsize=8,
                            color="white" if shown[a, b] > 0.6 * (image.norm.vmax or 1)
                            else "black")
            ax.set_xticks(range(len(names)), names, fontsize=8)
            ax.set_yticks(range(len(names)), names, fontsize=8)
            ax.set_title(f"{row} | {col}", fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("Predicted emotion")
            if j == 0:
                ax.set_ylabel("True emotion")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6,
                     label="Fraction of the true class" if normalize else "Clips")
    fig.suptitle(title)
    return fig


def plot_f1_vs_clients(table: pd.DataFrame, *, metric: str = "f1_macro",
                       title: str = "Effect of the number of clients on F1") -> Figure:
    """Paper 001 Fig 7: one line per model of ``metric`` against the number of clients.

    Parameters
    ----------
    table : DataFrame
        Columns ``model``, ``clients`` and ``metric`` (``results.csv``).
    metric : str
        Column to plot (default macro F1).
    title : str
    """
    _require_columns(table, ("model", "clients", metric))
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    most = 1
    for model, group in table.groupby("model", sort=False):
        points = _mean_and_error(group, "clients", metric)
        most = max(most, max(n for _, _, _, n in points))
        ax.errorbar([k for k, _, _, _ in points], [m for _, m, _, _ in points],
                    yerr=[e for _, _, e, _ in points], marker="o", capsize=3, label=model)
    if most > 1:
        title += "\n(mean over seeds; bars: 95 % t-interval)"
    ks = sorted(table["clients"].dropna().unique())
    ax.set_xticks(ks)
    ax.set_xlabel("Number of IID clients k")
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} on held-out speakers")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(title="model")
    ax.set_title(title, fontsize=10)
    return fig


def plot_learning_curves(panels: Mapping[str, Mapping[str, Tuple[Sequence[float],
                                                                 Sequence[float]]]], *,
                         ylabel: str = "Held-out accuracy",
                         xlabel: str = "Round (federated) / epoch (centralized)",
                         title: str = "Learning curves", chance: Optional[float] = 0.25,
                         max_cols: int = 3) -> Figure:
    """One panel per model, one curve per run: a metric against the round.

    Parameters
    ----------
    panels : mapping
        ``panel title -> {curve label -> (rounds, values)}``.
    ylabel, xlabel, title : str
    chance : float, optional
        Draw the chance level (0.25 for 4 balanced classes); None for none.
    max_cols : int
        Panels per row.

    Examples
    --------
    >>> fig = plot_learning_curves({"mlp": {"federated": ([1, 2], [0.3, 0.4]),
    ...                                     "centralized": ([1, 2], [0.35, 0.5])}})
    >>> fig.axes[0].get_title()
    'mlp'
    """
    if not panels:
        raise ValueError("no learning curves to draw; pass {panel: {label: (rounds, values)}}")
    n_rows, n_cols = _grid(len(panels), max_cols)
    fig = Figure(figsize=(4.4 * n_cols, 3.4 * n_rows + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, (name, curves) in zip(axes, panels.items()):
        for label, (rounds, values) in curves.items():
            ax.plot(rounds, values, marker="." if len(rounds) < 60 else None, label=label)
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    return fig


def plot_metric_bars(table: pd.DataFrame, *,
                     metrics: Sequence[str] = ("accuracy", "precision_macro", "recall_macro",
                                               "f1_macro"),
                     group: str = "model", hue: str = "setup",
                     title: str = "Scores on held-out speakers") -> Figure:
    """Grouped bars: one panel per metric, ``group`` on the x axis, one bar per ``hue``.

    Parameters
    ----------
    table : DataFrame
        ``results.csv``-style rows with ``group``, ``hue`` and metric columns.
    metrics : sequence of str
    group, hue : str
        Column names (default: models on the axis, setups as bars).
    title : str
    """
    _require_columns(table, (group, hue) + tuple(metrics))
    groups = list(dict.fromkeys(table[group]))
    hues = list(dict.fromkeys(table[hue]))
    n_rows, n_cols = _grid(len(metrics), 2)
    fig = Figure(figsize=(3.6 * n_cols + 0.5, 3.3 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    width = 0.8 / max(len(hues), 1)
    x = np.arange(len(groups))
    most = 1
    for ax, metric in zip(axes, metrics):
        for h, name in enumerate(hues):
            points = {g: (m, e, n) for g, m, e, n in
                      _mean_and_error(table[table[hue] == name], group, metric)}
            values = [points.get(g, (np.nan, 0.0, 0))[0] for g in groups]
            errors = [points.get(g, (np.nan, 0.0, 0))[1] for g in groups]
            most = max([most] + [n for _, _, n in points.values()])
            ax.bar(x + (h - (len(hues) - 1) / 2) * width, values, width, yerr=errors,
                   capsize=2, label=str(name))
        ax.set_xticks(x, groups)
        ax.set_ylim(0, 1)
        ax.set_ylabel("Score (fraction)")
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(metrics):]:
        ax.axis("off")
    axes[0].legend(fontsize=8)
    if most > 1:
        title += "\n(mean over seeds; bars: 95 % t-interval)"
    fig.suptitle(title)
    return fig


def plot_metric_vs_cost(table: pd.DataFrame, *, cost: str, metric: str = "accuracy",
                        scale: float = 1.0, xlabel: str = "", title: str = "") -> Figure:
    """``metric`` (mean and 95 % t-interval over seeds) against a cost, one point per condition.

    ``cost`` is a ``results.csv`` column (``"epsilon"``, ``"bytes_up"``), times
    ``scale``, on a log axis.  Conditions without the cost (no DP: epsilon is
    infinite) are drawn as dashed horizontal lines with their label.
    """
    _require_columns(table, ["setup", metric, cost])
    from tff_ser.stats import mean_interval
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    points, lines = [], {}
    for setup, group in table.groupby("setup", sort=False):
        y = pd.to_numeric(group[metric], errors="coerce").dropna()
        x = pd.to_numeric(group[cost], errors="coerce").dropna()
        if y.empty:
            continue
        iv = mean_interval(y)
        err = 0.0 if iv.n < 2 else iv.half_width
        if x.empty:
            lines.setdefault(round(iv.mean, 3), []).append(setup)
            continue
        points.append((setup, float(x.mean()) * scale, iv.mean, err))
    all_y = [y for _, _, y, _ in points] + list(lines)
    gap = 0.045 * max(max(all_y) - min(all_y), 0.05) if all_y else 0.0
    last = math.inf
    for y in sorted(lines, reverse=True):  # one line per level, labels stacked apart
        ax.axhline(y, ls="--", lw=1, color="grey", alpha=0.7)
        label_y = min(y, last - gap)
        last = label_y
        ax.text(1.0, label_y, " " + ", ".join(lines[y]), transform=ax.get_yaxis_transform(),
                va="center", fontsize=8, color="dimgrey")
    for setup, x, y, err in points:
        ax.errorbar([x], [y], yerr=[err], fmt="o", capsize=4)
    if points:
        ax.set_xscale("log")
        from matplotlib.ticker import ScalarFormatter
        ax.xaxis.set_major_formatter(ScalarFormatter())
        lo, hi = min(x for _, x, _, _ in points), max(x for _, x, _, _ in points)
        if hi / lo < 10:  # under a decade: label the minor ticks too
            ax.xaxis.set_minor_formatter(ScalarFormatter())
            ax.tick_params(axis="x", which="minor", labelsize=7)
        # labels of points at one cost stacked downwards, never on top of each other
        by_x: dict = {}
        for setup, x, y, _ in points:
            by_x.setdefault(round(math.log10(x), 2), []).append((setup, x, y))
        for group in by_x.values():
            last = math.inf
            for setup, x, y in sorted(group, key=lambda p: -p[2]):
                label_y = min(y, last - gap)
                last = label_y
                ax.annotate(setup, (x, y), xytext=(x * 1.04, label_y), fontsize=8,
                            va="center", arrowprops=dict(arrowstyle="-", lw=0.5, color="grey"))
        ax.set_xlim(lo / 1.3, hi * 1.6)
    ax.set_xlabel(xlabel or cost)
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} on held-out speakers\n"
                  "(mean; bars: 95 % t-interval over seeds)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def _mean_and_error(rows: pd.DataFrame, by: str, metric: str):
    """``[(key, mean, t-interval half width, n)]`` of ``metric`` per value of ``by``
    (one row per seed); the half width is 0 where there is one seed."""
    from tff_ser.stats import mean_interval
    out = []
    for key, group in rows.groupby(by, sort=False):
        values = pd.to_numeric(group[metric], errors="coerce").dropna()
        if values.empty:
            continue
        iv = mean_interval(values)
        out.append((key, iv.mean, 0.0 if iv.n < 2 else iv.half_width, iv.n))
    return sorted(out, key=lambda t: t[0]) if by == "clients" else out


def plot_clip_counts(clips_per_speaker_emotion: Mapping[str, Mapping[str, int]],
                     emotions: Sequence[str], *, durations: Optional[Sequence[float]] = None,
                     title: str = "Clips per speaker and emotion") -> Figure:
    """Stacked bars of clips per speaker (a federated client) by emotion; durations.

    Parameters
    ----------
    clips_per_speaker_emotion : mapping
        ``{speaker: {emotion: count}}`` (``CheckReport.clips_per_speaker_emotion``).
    emotions : sequence of str
        Emotion codes in stacking order.
    durations : sequence of float, optional
        Clip durations in seconds; adds a histogram panel.
    title : str
    """
    if not clips_per_speaker_emotion:
        raise ValueError("no clips to count; the corpus check found no speaker")
    speakers = list(clips_per_speaker_emotion)
    panels = 2 if durations is not None else 1
    fig = Figure(figsize=(max(6.0, 0.12 * len(speakers) + 2) + 4 * (panels - 1), 3.6),
                 layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False, width_ratios=[3, 1][:panels])[0]
    bottom = np.zeros(len(speakers))
    for emotion in emotions:
        counts = np.array([clips_per_speaker_emotion[s].get(emotion, 0) for s in speakers])
        axes[0].bar(range(len(speakers)), counts, bottom=bottom, width=0.85, label=emotion)
        bottom += counts
    step = max(1, len(speakers) // 15)
    axes[0].set_xticks(range(0, len(speakers), step), speakers[::step], rotation=90,
                       fontsize=7)
    axes[0].set_xlabel("Speaker (one federated client each)")
    axes[0].set_ylabel("Clips")
    axes[0].legend(title="emotion", fontsize=8, ncols=len(emotions))
    if durations is not None:
        axes[1].hist(durations, bins=30, color="grey")
        axes[1].set_xlabel("Clip duration (s)")
        axes[1].set_ylabel("Clips")
        axes[1].set_title("Durations", fontsize=10)
    fig.suptitle(title)
    return fig


def plot_waveforms_and_spectrograms(signals: Mapping[str, np.ndarray], sr: int, *,
                                    n_fft: int = 512, hop_length: int = 160,
                                    title: str = "One clip per emotion") -> Figure:
    """Waveform (top) and log-power spectrogram (bottom) of one clip per label.

    Parameters
    ----------
    signals : mapping
        ``label -> mono signal`` (e.g. one clip of each emotion).
    sr : int
        Sample rate in Hz.
    n_fft, hop_length : int
        STFT size and step in samples (defaults: 32 ms and 10 ms at 16 kHz).
    title : str
    """
    if not signals:
        raise ValueError("no signals to draw; pass {label: signal}")
    fig = Figure(figsize=(3.4 * len(signals) + 0.8, 5.2), layout="constrained")
    axes = fig.subplots(2, len(signals), squeeze=False, sharey="row")
    mesh = None
    for j, (label, y) in enumerate(signals.items()):
        y = np.asarray(y, dtype=np.float64)
        t = np.arange(len(y)) / sr
        axes[0][j].plot(t, y, linewidth=0.4)
        axes[0][j].set_title(label)
        axes[0][j].set_xlabel("Time (s)")
        spec = _log_power_spectrogram(y, n_fft=n_fft, hop_length=hop_length)
        times = np.arange(spec.shape[1]) * hop_length / sr
        freqs = np.arange(spec.shape[0]) * sr / n_fft / 1000.0
        mesh = axes[1][j].pcolormesh(times, freqs, spec, shading="auto", cmap="magma",
                                     vmin=spec.max() - 80, vmax=spec.max())
        axes[1][j].set_xlabel("Time (s)")
    axes[0][0].set_ylabel("Amplitude (full scale)")
    axes[1][0].set_ylabel("Frequency (kHz)")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[1], label="Power (dB)", shrink=0.9)
    fig.suptitle(title)
    return fig


def _log_power_spectrogram(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """``(n_fft // 2 + 1, frames)`` power in dB of a Hann-windowed STFT."""
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    n_frames = 1 + (len(y) - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(n_frames)[:, None]
    frames = y[idx] * np.hanning(n_fft)[None, :]
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return (10.0 * np.log10(np.maximum(power, 1e-12))).T


def plot_feature_matrices(matrices: Mapping[str, np.ndarray], *,
                          xlabel: str = "Feature index", ylabel: str = "Window",
                          value_label: str = "Feature value (standardised)",
                          title: str = "Features of one clip per emotion") -> Figure:
    """One image per label of a (windows x features) matrix, e.g. paper 001's (100, 34).

    All matrices share one symmetric colour scale (clipped at the 99th
    percentile of the absolute values), so standardised features (zero mean,
    unit variance per feature) read as above or below average.
    """
    if not matrices:
        raise ValueError("no feature matrices to draw; pass {label: 2-D array}")
    mats = {k: np.asarray(v, dtype=float) for k, v in matrices.items()}
    for k, m in mats.items():
        if m.ndim != 2:
            raise ValueError(f"feature matrix {k!r} has shape {m.shape}; expected 2-D")
    # The 99th percentile, not the maximum: one extreme window would wash out the rest.
    limit = float(np.nanpercentile(np.abs(np.concatenate([m.ravel() for m in mats.values()])),
                                   99)) or 1.0
    fig = Figure(figsize=(2.6 * len(mats) + 1.0, 3.8), layout="constrained")
    axes = fig.subplots(1, len(mats), squeeze=False)[0]
    image = None
    for ax, (label, m) in zip(axes, mats.items()):
        image = ax.imshow(m, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit,
                          interpolation="nearest")
        ax.set_title(label)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(ylabel)
    fig.colorbar(image, ax=axes, label=value_label, shrink=0.9)
    fig.suptitle(title)
    return fig


def _require_columns(table: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {missing}; it has {list(table.columns)}")


def plot_stream(starts: Sequence[float], ends: Sequence[float], probabilities: np.ndarray,
                class_names: Sequence[str], *,
                segments: Optional[Sequence[Tuple[float, float, str]]] = None,
                title: str = "Per-window class probabilities") -> Figure:
    """Each class's probability at each window's centre over time, with the true segments.

    ``starts``/``ends``/``probabilities`` as :class:`tff_ser.stream.StreamScores`;
    ``segments``: ``(start_s, end_s, label)`` of the recording's parts, shaded
    and labelled above the curves.
    """
    probabilities = np.asarray(probabilities)
    centres = (np.asarray(starts) + np.asarray(ends)) / 2
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.subplots()
    for j, name in enumerate(class_names):
        ax.plot(centres, probabilities[:, j], marker="o", markersize=3, label=name)
    for i, (a, b, label) in enumerate(segments or ()):
        ax.axvspan(a, b, color="0.85" if i % 2 else "0.93", zorder=0)
        ax.text((a + b) / 2, 1.02, label, ha="center", va="bottom")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("Time (s), window centre")
    ax.set_ylabel("Probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.set_title(title, pad=18)
    return fig


def plot_per_speaker_ecdf(accuracies: Mapping[str, Sequence[float]], *,
                          title: str = "Accuracy of each held-out speaker") -> Figure:
    """The held-out speakers' accuracies as one ECDF per setting.

    ``accuracies``: label -> one accuracy per speaker.  A curve to the right is
    better for every speaker; its lower tail is the speakers a mean hides.
    """
    if not accuracies:
        raise ValueError("no per-speaker accuracies to draw")
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for label, values in accuracies.items():
        v = np.sort(np.asarray(values, dtype=float))
        if len(v) == 0:
            continue
        ax.step(np.concatenate([[v[0]], v]), np.arange(len(v) + 1) / len(v), where="post",
                label=f"{label} (n = {len(v)})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Held-out speaker's accuracy (fraction of its clips)")
    ax.set_ylabel("Fraction of speakers at or below")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(title)
    return fig


def plot_architecture_weights(cells: Mapping[str, pd.DataFrame], *,
                              picks: Optional[Mapping[str, Sequence[Tuple[str, str]]]] = None,
                              title: str = "Architecture weights: softmax(theta) per edge"
                              ) -> Figure:
    """One heatmap per cell type of a DARTS search's mixed-operation weights.

    ``cells``: cell type -> frame of edges (rows) by operations (columns), each
    row summing to 1 (:func:`tff_ser.nas.architecture_weights`).  ``picks``:
    cell type -> the derived cell's ``(edge, operation)`` pairs
    (:meth:`tff_ser.darts.Genotype.picks`), outlined.  A search that learned
    little leaves every row near uniform (``1 / operations``).
    """
    if not cells:
        raise ValueError("no architecture weights to draw; pass {cell type: frame}")
    fig = Figure(figsize=(4.6 * len(cells) + 1.0, 0.32 * max(len(f) for f in cells.values()) + 2),
                 layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    image = None
    top = float(max(f.to_numpy().max() for f in cells.values()))  # one colour scale for all
    for ax, (kind, frame) in zip(axes, cells.items()):
        image = ax.imshow(frame.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0,
                          vmax=top, interpolation="nearest")
        ax.set_xticks(range(frame.shape[1]), list(frame.columns), rotation=60, ha="right",
                      fontsize="small")
        ax.set_yticks(range(frame.shape[0]), list(frame.index), fontsize="small")
        for edge, op in (picks or {}).get(kind, ()):
            row, col = list(frame.index).index(edge), list(frame.columns).index(op)
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red",
                                   linewidth=1.8))
        ax.set_title(f"{kind} cell")
    fig.colorbar(image, ax=axes, label="Weight of the operation on its edge", shrink=0.9)
    fig.suptitle(title + (" (outlined: the derived cell)" if picks else ""))
    return fig
