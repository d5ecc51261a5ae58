"""40-d log Mel filterbank features (paper 004, Latif et al.).

"We used a Hamming window of 25-millisecond with a step size of
10-milliseconds to compute 40-dimensional MFB features." The paper gives
nothing else; tff_ser's choices, each a keyword argument below: power
spectrum with an FFT as long as the window (400 points at 16 kHz), librosa's
default Slaney mel scale and area normalisation over 0 Hz - sr/2, natural log
with a 1e-10 floor (the Kaldi ``fbank`` convention), and frames taken only
where a whole window fits (no centring), so a clip of ``n`` samples gives
``1 + (n - win) // hop`` frames.
"""
from __future__ import annotations

from typing import Optional

import librosa
import numpy as np

from tff_ser.features.pyaudioanalysis import check_signal, seconds_to_samples


def log_mel_filterbank(signal, sr: int, *, n_mels: int = 40, win_length: float = 0.025,
                       hop_length: float = 0.010, window: str = "hamming",
                       n_fft: Optional[int] = None, fmin: float = 0.0,
                       fmax: Optional[float] = None, log_floor: float = 1e-10,
                       n_frames: Optional[int] = None) -> np.ndarray:
    """Log Mel filterbank energies of a clip, one row per 10 ms frame.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono float signal, at least one window long.
    sr : int
        Sample rate in Hz.
    n_mels : int, default 40
        Number of Mel bands (paper 004: 40).
    win_length : float, default 0.025
        Window length in seconds (paper 004: 25 ms).
    hop_length : float, default 0.010
        Step in seconds (paper 004: 10 ms).
    window : str, default "hamming"
        Window function name understood by ``scipy.signal.get_window``.
    n_fft : int, optional
        FFT length; defaults to the window length in samples.
    fmin, fmax : float
        Band edges of the filterbank in Hz; ``fmax=None`` means ``sr / 2``.
    log_floor : float, default 1e-10
        Energies are clipped to this before the natural log.
    n_frames : int, optional
        When given, truncate to the first ``n_frames`` frames or pad at the
        end with ``log(log_floor)`` -- the value digital silence produces, so
        padding reads as the clip being followed by silence (the pipeline uses
        300 frames = 3 s).

    Returns
    -------
    numpy.ndarray
        ``(T, n_mels)`` float32 (``T = n_frames`` when given).

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> log_mel_filterbank(np.sin(2 * np.pi * 1000 * t), 16000).shape
    (98, 40)
    """
    signal = check_signal(signal, sr)
    win = seconds_to_samples(win_length, sr, "win_length")
    hop = seconds_to_samples(hop_length, sr, "hop_length")
    n_fft = win if n_fft is None else int(n_fft)
    if n_fft < win:
        raise ValueError(f"n_fft={n_fft} is shorter than the window ({win} samples); "
                         "use n_fft >= win_length * sr")
    if isinstance(n_mels, bool) or not isinstance(n_mels, (int, np.integer)) or n_mels < 1:
        raise ValueError(f"n_mels must be a positive integer, got {n_mels!r}")
    if not log_floor > 0:
        raise ValueError(f"log_floor must be positive, got {log_floor!r}")
    if len(signal) < n_fft:
        raise ValueError(
            f"signal of {len(signal)} samples is shorter than one analysis window "
            f"({n_fft} samples); zero-pad it first (tff_ser.features.extract does "
            "this and lists the clip in its notes)")
    mel = librosa.feature.melspectrogram(
        y=np.asarray(signal, dtype=np.float32), sr=sr, n_fft=n_fft, hop_length=hop,
        win_length=win, window=window, center=False, power=2.0, n_mels=int(n_mels),
        fmin=fmin, fmax=fmax)
    log_mel = np.log(np.maximum(mel, log_floor)).T.astype(np.float32)
    if n_frames is not None:
        if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) \
                or n_frames < 1:
            raise ValueError(f"n_frames must be a positive integer or None, got {n_frames!r}")
        log_mel = librosa.util.fix_length(log_mel, size=int(n_frames), axis=0,
                                          constant_values=np.log(log_floor))
    return np.ascontiguousarray(log_mel, dtype=np.float32)
