"""Scoring a long recording in sliding windows (paper 002's future work: real-time SER on continuous audio).

:func:`score_stream` cuts a recording into windows of ``window_s`` seconds
every ``hop_s`` seconds, computes each window's features with the same
function the model was trained on (:data:`tff_ser.features.pipeline.FEATURE_KINDS`),
applies the training statistics, and returns each window's class
probabilities with its start and end time.

The windows cover the recording exactly: they start at ``0, hop, 2 hop, ...``
and the last one ends at the recording's end (moved back so it does not run
past it; it then overlaps its neighbour by more than the others).  A
recording shorter than one window is one window, zero-padded by the feature
function as every short clip is.

The **real-time factor** (RTF) is compute time over audio time: features and
model together for the whole recording, divided by its duration; below 1 the
scorer keeps up with live audio on that machine.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional, Sequence

import numpy as np


@dataclasses.dataclass
class StreamScores:
    """Per-window probabilities of one recording.

    Attributes
    ----------
    starts, ends : ndarray, seconds
        Each window's span in the recording.
    probabilities : ndarray, (n_windows, n_classes)
    class_names : tuple of str
    duration : float
        The recording's length in seconds.
    compute_seconds : float
        Features and model for every window.
    """

    starts: np.ndarray
    ends: np.ndarray
    probabilities: np.ndarray
    class_names: Sequence[str]
    duration: float
    compute_seconds: float

    @property
    def real_time_factor(self) -> float:
        """Compute time over audio time (< 1: faster than real time)."""
        return self.compute_seconds / self.duration if self.duration else float("nan")

    @property
    def labels(self) -> list:
        """The most probable class of each window."""
        return [self.class_names[i] for i in np.argmax(self.probabilities, axis=1)]

    def to_rows(self) -> list:
        """One dict per window: start, end, label and each class's probability."""
        return [{"start_s": float(s), "end_s": float(e), "label": lab,
                 **{c: float(p) for c, p in zip(self.class_names, probs)}}
                for s, e, lab, probs in zip(self.starts, self.ends, self.labels,
                                            self.probabilities)]


def window_spans(duration: float, window_s: float, hop_s: float):
    """Start and end times of the windows covering ``[0, duration]`` (see the module docstring)."""
    if not window_s > 0 or not hop_s > 0:
        raise ValueError(f"window_s and hop_s must be > 0 seconds; got {window_s}, {hop_s}")
    if hop_s > window_s:
        raise ValueError(f"hop_s={hop_s} is longer than window_s={window_s}: the windows would "
                         "leave gaps in the recording; use hop_s <= window_s")
    if not duration > 0:
        raise ValueError(f"the recording is empty (duration {duration} s)")
    if duration <= window_s:
        return np.array([0.0]), np.array([float(duration)])
    n = int(np.ceil((duration - window_s) / hop_s - 1e-9)) + 1
    starts = np.minimum(np.arange(n) * hop_s, duration - window_s)
    return starts, starts + window_s


def score_stream(model, signal: np.ndarray, sr: int, *, feature_kind: str = "paper001",
                 window_s: float = 2.5, hop_s: float = 1.0,
                 normalize: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 class_names: Sequence[str] = ("NEU", "HAP", "SAD", "ANG"),
                 batch_size: int = 64, feature_params: Optional[dict] = None) -> StreamScores:
    """Score ``signal`` window by window with a trained Keras ``model``.

    Parameters
    ----------
    model : keras.Model
        A trained model whose input is one window's features of ``feature_kind``.
    signal : ndarray
        Mono audio.
    sr : int
        Its sample rate in Hz.
    feature_kind : str
        The features the model reads (``"paper001"``, ``"clip_stats"``, ``"logmel"``, ...).
    window_s, hop_s : float
        Window length and step in seconds (``hop_s <= window_s``).
    normalize : callable, optional
        The training features' standardization (e.g. ``Standardizer().fit(train_x).transform``);
        the package's tasks standardize with the training clients' statistics, and a
        model trained on them must see its windows the same way.
    class_names : sequence of str
        Names of the model's outputs, in order.
    batch_size : int
        Windows per call into the model.
    feature_params : dict, optional
        Overrides of the feature function's parameters (as in training).
    """
    from tff_ser.features.pipeline import FEATURE_KINDS, _minimum_samples
    if feature_kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {feature_kind!r}; one of {sorted(FEATURE_KINDS)}")
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"signal must be mono (1-D); got shape {signal.shape}. Average the "
                         "channels first (signal.mean(axis=1))")
    kind = FEATURE_KINDS[feature_kind]
    params = {**kind.defaults, **(feature_params or {})}
    duration = len(signal) / float(sr)
    starts, ends = window_spans(duration, window_s, hop_s)
    min_samples = _minimum_samples(kind, params, sr)
    t0 = time.perf_counter()
    windows = []
    for s, e in zip(starts, ends):
        piece = signal[int(round(s * sr)):int(round(e * sr))]
        if len(piece) < min_samples:  # as the pipeline pads a clip shorter than one analysis window
            piece = np.pad(piece, (0, min_samples - len(piece)))
        windows.append(np.asarray(kind.function(piece, sr, **params), np.float32))
    feats = np.stack(windows)
    if normalize is not None:
        feats = np.asarray(normalize(feats), np.float32)
    probs = np.concatenate([np.asarray(model(feats[i:i + batch_size], training=False))
                            for i in range(0, len(feats), batch_size)])
    seconds = time.perf_counter() - t0
    if probs.shape[1] != len(class_names):
        raise ValueError(f"the model outputs {probs.shape[1]} classes but class_names has "
                         f"{len(class_names)}")
    return StreamScores(starts, ends, probs, tuple(class_names), duration, seconds)


def concatenate_clips(clips, *, sr: int = 16000, gap_s: float = 0.25):
    """One continuous recording made of ``clips`` (with ``gap_s`` of silence between them).

    A test signal for :func:`score_stream`: returns the signal and, per clip,
    ``(start_s, end_s, emotion)`` -- the truth to draw the windows' scores against.
    """
    from tff_ser.corpus.audio import load_audio
    pieces, segments, t = [], [], 0.0
    gap = np.zeros(int(round(gap_s * sr)), np.float32)
    for i, clip in enumerate(clips):
        audio = load_audio(clip.path, sr=sr)
        if i:
            pieces.append(gap)
            t += len(gap) / sr
        pieces.append(audio)
        segments.append((t, t + len(audio) / sr, clip.emotion))
        t += len(audio) / sr
    return np.concatenate(pieces), segments


def held_out_recording(features, task, *, speaker: Optional[str] = None, sr: int = 16000):
    """One held-out speaker's clips, one per class of ``task`` in class order, joined.

    ``features`` and ``task`` as built for training (``task.val_clients``
    index ``features.clips``); ``speaker`` defaults to the first held-out one.
    Returns ``(signal, segments, speaker)`` as :func:`concatenate_clips`.
    """
    if not task.val_clients:
        raise ValueError("the task has no held-out speakers to take a recording from")
    speaker = speaker or sorted(task.val_clients)[0]
    if speaker not in task.val_clients:
        raise ValueError(f"{speaker!r} is not a held-out speaker of this task; held out: "
                         f"{sorted(task.val_clients)}")
    clips = [features.clips[i] for i in task.val_clients[speaker]]
    chosen = [next(c for c in clips if c.emotion == e) for e in task.class_names
              if any(c.emotion == e for c in clips)]
    signal, segments = concatenate_clips(chosen, sr=sr)
    return signal, segments, speaker
