"""Fixed-size log-power spectrograms (paper 003, EmotionNAS).

"we unify the duration of audios into 8 seconds. Longer ones are truncated,
and shorter ones are padded with zeros. Then, audios are segmented into
frames by 25ms Hamming windows with 14ms overlap. Each frame is passed into
Fast Fourier Transformation to extract 140-dimensional features. Finally, we
perform non-overlapping average pooling in the frame dimension, down-sampling
the feature matrix to the shape of (140 x 140)."

The paper does not say how a 25 ms FFT yields exactly 140 values; at 16 kHz a
400-point FFT has 201 bins (40 Hz apart), and tff_ser keeps the lowest 140
(0 - 5.56 kHz, where speech energy lies). 8 s at an 11 ms hop gives 726
frames, which do not split evenly into 140; the pooling groups are the 140
near-equal runs of 5 or 6 consecutive frames. Power is averaged before the
log (dB), so a pooled cell is the mean energy of its frames.
"""
from __future__ import annotations

from typing import Optional

import librosa
import numpy as np

from tff_ser.features.pyaudioanalysis import check_signal, seconds_to_samples


def average_pool_frames(matrix: np.ndarray, n_groups: int) -> np.ndarray:
    """Average consecutive rows of ``matrix`` in ``n_groups`` non-overlapping runs.

    Runs are as equal as possible (lengths differ by at most one); every row
    belongs to exactly one run.

    Parameters
    ----------
    matrix : numpy.ndarray
        ``(n_rows, ...)`` with ``n_rows >= n_groups``.
    n_groups : int

    Returns
    -------
    numpy.ndarray
        ``(n_groups, ...)``.
    """
    n_rows = matrix.shape[0]
    if n_rows < n_groups:
        raise ValueError(f"cannot pool {n_rows} frames into {n_groups} groups; "
                         "use a longer duration or a shorter hop")
    starts = (np.arange(n_groups) * n_rows) // n_groups
    sizes = np.diff(np.append(starts, n_rows))
    return np.add.reduceat(matrix, starts, axis=0) / sizes.reshape((-1,) + (1,) * (matrix.ndim - 1))


def pooled_spectrogram(signal, sr: int, *, duration: float = 8.0,
                       win_length: float = 0.025, overlap: float = 0.014,
                       window: str = "hamming", n_fft: Optional[int] = None,
                       n_freq: int = 140, n_time: int = 140,
                       amin: float = 1e-10) -> np.ndarray:
    """Paper 003's 140 x 140 spectrogram of a clip.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono float signal.
    sr : int
        Sample rate in Hz.
    duration : float, default 8.0
        The clip is zero-padded or truncated to this many seconds (paper 003).
    win_length : float, default 0.025
        Hamming window length in seconds (paper 003: 25 ms).
    overlap : float, default 0.014
        Overlap between windows in seconds (paper 003: 14 ms, i.e. an 11 ms hop).
    window : str, default "hamming"
    n_fft : int, optional
        FFT length; defaults to the window length in samples.
    n_freq : int, default 140
        Lowest frequency bins kept.
    n_time : int, default 140
        Frames after average pooling.
    amin : float, default 1e-10
        Power floor before conversion to dB.

    Returns
    -------
    numpy.ndarray
        ``(n_time, n_freq)`` float32, log power in dB (time first, like the
        other feature kinds).

    Examples
    --------
    >>> pooled_spectrogram(np.zeros(16000, dtype=np.float32), 16000).shape
    (140, 140)
    """
    signal = check_signal(signal, sr)
    win = seconds_to_samples(win_length, sr, "win_length")
    hop = win - seconds_to_samples(overlap, sr, "overlap")
    if hop < 1:
        raise ValueError(f"overlap={overlap} s must be shorter than win_length={win_length} s")
    n_fft = win if n_fft is None else int(n_fft)
    if n_fft < win:
        raise ValueError(f"n_fft={n_fft} is shorter than the window ({win} samples)")
    if not 1 <= n_freq <= n_fft // 2 + 1:
        raise ValueError(f"n_freq={n_freq} must be between 1 and the {n_fft // 2 + 1} "
                         f"bins of a {n_fft}-point FFT")
    n_samples = seconds_to_samples(duration, sr, "duration")
    fixed = librosa.util.fix_length(np.asarray(signal, dtype=np.float32), size=n_samples)
    stft = librosa.stft(fixed, n_fft=n_fft, hop_length=hop, win_length=win,
                        window=window, center=False)
    power = (np.abs(stft[:n_freq]) ** 2).T  # (frames, n_freq)
    pooled = average_pool_frames(power, int(n_time))
    return librosa.power_to_db(pooled, ref=1.0, amin=amin, top_db=None).astype(np.float32)
