"""pyAudioAnalysis short-term features (paper 001) and clip statistics (paper 000).

Chau & Garces (paper 001) cut every clip into 0.2 s windows and describe each
window by the 34 short-term features of pyAudioAnalysis
(``ShortTermFeatures.feature_extraction``); their models read a
``(100, 34)`` matrix per clip. Mishchenko et al. (paper 000) feed an MLP one
vector per clip; tff_ser uses pyAudioAnalysis's mid-term statistics taken over
the whole clip for it (:func:`clip_statistics`, 136 values).

The 34 features, in pyAudioAnalysis order (:data:`FEATURE_NAMES`): zero
crossing rate, energy, entropy of energy (10 sub-frames), spectral centroid,
spectral spread, spectral entropy (10 sub-bands), spectral flux, spectral
rolloff (0.90), 13 MFCCs, 12 chroma bins and the chroma standard deviation.

The arithmetic follows ``pyAudioAnalysis.ShortTermFeatures`` (v0.3)
formula by formula, including its quirks, so that features match what the
papers trained on:

* the signal is DC-removed and peak-normalised once per clip;
* no analysis window is applied (rectangular frames); the magnitude spectrum
  is the first ``window // 2`` bins of ``|FFT|`` divided by ``window // 2``
  (the Nyquist bin is dropped);
* spectral flux compares each frame with the previous one (0 for the first);
* centroid and spread are divided by ``sr / 2``; rolloff is a bin index over
  the number of bins;
* the MFCC filterbank is the scikits.talkbox one pyAudioAnalysis ships (13
  linear filters 200/3 Hz apart from 133.33 Hz, then 27 log-spaced ones by a
  factor 1.0711703, each of area 1 -- the Slaney layout that
  ``librosa.filters.mel(htk=False, norm="slaney")`` also follows), replicated
  exactly: pyAudioAnalysis places those filters on the half spectrum as if it
  were a full ``window // 2``-point FFT, so every filter sits at half its
  nominal frequency (the bank spans about 67 Hz - 3.2 kHz of the signal, not
  133 Hz - 6.4 kHz). Kept on purpose: it is what pyAudioAnalysis computes;
* chroma maps bins to pitch classes as pyAudioAnalysis does, quirks
  included: bin ``f`` is labelled with the frequency of bin ``f + 1``, only
  the highest bin of each semitone keeps its power, and that power is divided
  by a bin count looked up at a shifted index. A pure 440 Hz tone therefore
  does not necessarily light up class "A" (see :func:`chroma_matrix`); the
  chroma columns are reproduced for fidelity, not as a pitch estimate.

Here every feature is computed for all frames at once with numpy (one
``rfft`` of the frame matrix, matrix products for the filterbank and chroma)
instead of pyAudioAnalysis's per-frame Python loop: 10-30 times faster, and
equal to a per-frame transcription of pyAudioAnalysis to ~1e-14 (checked on
tones, noise, chirps and clips with silent gaps, 50/200 ms windows).
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.fft

#: pyAudioAnalysis's ``ShortTermFeatures.eps`` (``sys.float_info.epsilon``).
EPS = float(np.finfo(np.float64).eps)

N_MFCC = 13
N_CHROMA = 12

#: The 34 short-term feature names, in pyAudioAnalysis order.
FEATURE_NAMES = (
    ("zcr", "energy", "energy_entropy", "spectral_centroid", "spectral_spread",
     "spectral_entropy", "spectral_flux", "spectral_rolloff")
    + tuple(f"mfcc_{i}" for i in range(1, N_MFCC + 1))
    + tuple(f"chroma_{i}" for i in range(1, N_CHROMA + 1))
    + ("chroma_std",)
)
N_FEATURES = len(FEATURE_NAMES)  # 34

#: Names of the 136 :func:`clip_statistics` values: means of the 34 features
#: and of their 34 deltas, then standard deviations of the same 68
#: (pyAudioAnalysis ``mid_feature_extraction`` order).
CLIP_STATISTIC_NAMES = tuple(
    f"{name}_{stat}"
    for stat in ("mean", "std")
    for name in FEATURE_NAMES + tuple(f"delta {n}" for n in FEATURE_NAMES)
)

# Chroma reference pitch (A0) used by pyAudioAnalysis.
_CHROMA_REF_HZ = 27.5


def check_signal(signal, sr) -> np.ndarray:
    """Validate a mono float signal and its sample rate; return it as an array.

    Shared by every feature function so a wrong input fails with a message
    that says what to do, not deep inside numpy.
    """
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n_samples,), got shape "
                         f"{signal.shape}; average the channels first "
                         "(tff_ser.corpus.audio.to_mono)")
    if not np.issubdtype(signal.dtype, np.floating):
        raise ValueError(f"expected a float signal in [-1, 1], got dtype {signal.dtype}; "
                         "load clips with tff_ser.corpus.audio.load_audio")
    if not np.all(np.isfinite(signal)):
        raise ValueError("signal contains NaN or infinite samples")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
    return signal


def seconds_to_samples(seconds: float, sr: int, name: str) -> int:
    """``round(seconds * sr)`` as pyAudioAnalysis does, validated to be >= 1."""
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive duration in seconds, got {seconds!r}")
    n = int(round(seconds * sr))
    if n < 1:
        raise ValueError(f"{name}={seconds} s is shorter than one sample at {sr} Hz")
    return n


def dc_normalize(signal: np.ndarray) -> np.ndarray:
    """Remove the mean and scale the peak to 1, in float64.

    pyAudioAnalysis does this once per clip before framing, which makes every
    feature independent of recording level.
    """
    signal = np.asarray(signal, dtype=np.float64)
    centred = signal - signal.mean()
    return centred / (np.abs(centred).max() + 1e-10)


def frame_signal(signal: np.ndarray, window: int, step: int) -> np.ndarray:
    """Frames ``signal[i*step : i*step + window]`` for every full window.

    A read-only strided view of shape ``(n_frames, window)`` with
    ``n_frames = 1 + (len(signal) - window) // step`` -- pyAudioAnalysis drops
    the incomplete tail, never pads it.
    """
    if len(signal) < window:
        raise ValueError(
            f"signal of {len(signal)} samples is shorter than one analysis window "
            f"({window} samples); zero-pad it to at least {window} samples "
            "(tff_ser.features.extract does this and lists the clip in its notes)")
    return np.lib.stride_tricks.sliding_window_view(signal, window)[::step]


@functools.lru_cache(maxsize=16)
def mfcc_filter_banks(sr: int, num_fft: int, *, low_freq: float = 133.33,
                      linear_spacing: float = 200.0 / 3.0,
                      log_spacing: float = 1.0711703, n_linear: int = 13,
                      n_log: int = 27) -> np.ndarray:
    """pyAudioAnalysis's triangular MFCC filterbank, shape ``(40, num_fft)``.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    num_fft : int
        Number of magnitude bins the bank is applied to (``window // 2``).
    low_freq, linear_spacing, log_spacing, n_linear, n_log
        The Slaney / talkbox layout: ``n_linear`` filters ``linear_spacing``
        Hz apart from ``low_freq``, then ``n_log`` filters whose edges grow
        by ``log_spacing``. Every filter has unit area (height
        ``2 / (high - low)``).

    Returns
    -------
    numpy.ndarray
        Read-only ``(n_linear + n_log, num_fft)`` float64 matrix.

    Notes
    -----
    Bin ``k`` is taken to be ``k * sr / num_fft`` Hz, exactly as in
    pyAudioAnalysis (which inherited the formula from a full-spectrum
    implementation); applied to a half spectrum this halves every filter's
    frequency. See the module docstring.
    """
    n_filters = n_linear + n_log
    edges = np.empty(n_filters + 2)
    edges[:n_linear] = low_freq + np.arange(n_linear) * linear_spacing
    edges[n_linear:] = edges[n_linear - 1] * log_spacing ** np.arange(1, n_log + 3)
    heights = 2.0 / (edges[2:] - edges[:-2])
    bin_hz = np.arange(num_fft) * sr / num_fft
    edge_bins = np.floor(edges * num_fft / sr).astype(int)

    bank = np.zeros((n_filters, num_fft))
    for i in range(n_filters):
        low, centre, high = edges[i:i + 3]
        rising = np.arange(edge_bins[i] + 1, min(edge_bins[i + 1] + 1, num_fft))
        falling = np.arange(edge_bins[i + 1] + 1, min(edge_bins[i + 2] + 1, num_fft))
        bank[i, rising] = heights[i] / (centre - low) * (bin_hz[rising] - low)
        bank[i, falling] = heights[i] / (high - centre) * (high - bin_hz[falling])
    bank.setflags(write=False)
    return bank


@functools.lru_cache(maxsize=16)
def chroma_matrix(sr: int, num_fft: int) -> np.ndarray:
    """Bin-to-pitch-class weights, shape ``(num_fft, 12)``; chroma = power @ W.

    Reproduces pyAudioAnalysis ``chroma_features``: bin ``f`` is given the
    frequency ``(f + 1) * sr / (2 * num_fft)`` (that of the next bin) and pitch index
    ``round(12 * log2(freq / 27.5))``; the power of the *last* bin with a
    given pitch index is kept, divided by a bin count, and pitch indices are
    folded into 12 classes. pyAudioAnalysis writes the powers into a
    ``num_fft``-long array indexed by pitch index (so indices of the lowest
    bins, which are negative, wrap to the end); the same numpy indexing is
    used here to build the equivalent linear map.
    """
    freqs = (np.arange(num_fft) + 1) * sr / (2.0 * num_fft)
    pitch = np.round(12.0 * np.log2(freqs / _CHROMA_REF_HZ)).astype(int)
    if pitch.max() >= num_fft:
        # pyAudioAnalysis's other branch fails with a shape error here.
        min_window = 2 * (int(pitch.max()) + 1)
        raise ValueError(
            f"a window of {2 * num_fft} samples is too short for pyAudioAnalysis chroma "
            f"at {sr} Hz; use at least {min_window} samples "
            f"({min_window / sr * 1000:.1f} ms)")
    _, inverse, counts = np.unique(pitch, return_inverse=True, return_counts=True)
    bins_per_pitch = counts[inverse].astype(np.float64)  # per bin, like pyAudioAnalysis
    # slot j of pyAudioAnalysis's array C receives bin source[j] (last write wins).
    source = np.full(num_fft, -1)
    source[pitch] = np.arange(num_fft)
    divisor = bins_per_pitch[pitch]
    weights = np.zeros((num_fft, N_CHROMA))
    slots = np.nonzero(source >= 0)[0]
    np.add.at(weights, (source[slots], slots % N_CHROMA), 1.0 / divisor[slots])
    weights.setflags(write=False)
    return weights


def fix_frames(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Keep the first ``n_frames`` rows, or append rows of zeros up to ``n_frames``.

    (numpy rather than ``librosa.util.fix_length``, whose first use costs
    seconds of numba start-up in every worker process.)
    """
    if len(features) >= n_frames:
        return features[:n_frames]
    padding = np.zeros((n_frames - len(features),) + features.shape[1:], dtype=features.dtype)
    return np.concatenate([features, padding])


def _sub_block_entropy(squares: np.ndarray, n_blocks: int = 10) -> np.ndarray:
    """Entropy of the energy shares of ``n_blocks`` contiguous blocks per row.

    ``squares`` holds the squared samples (or squared magnitudes) per row.
    """
    total = np.sum(squares, axis=1)
    block = squares.shape[1] // n_blocks
    blocks = squares[:, :block * n_blocks].reshape(squares.shape[0], n_blocks, block)
    share = np.sum(blocks, axis=2) / (total[:, None] + EPS)
    return -np.sum(share * np.log2(share + EPS), axis=1)


def _zero_crossing_rate(signal: np.ndarray, window: int, step: int,
                        n_frames: int) -> np.ndarray:
    """pyAudioAnalysis zcr of every frame from one pass over the signal.

    Frames overlap (8-fold for 0.2 s / 0.025 s), so the sign changes are
    counted once and summed per frame with a cumulative sum; the counts are
    small integers, exact in float64.
    """
    changes = np.abs(np.diff(np.sign(signal)))
    cumulative = np.concatenate([[0.0], np.cumsum(changes)])
    starts = np.arange(n_frames) * step
    return (cumulative[starts + window - 1] - cumulative[starts]) / 2.0 / (window - 1.0)


def _frame_features(signal: np.ndarray, sr: int, window: int, step: int) -> np.ndarray:
    """The 34 pyAudioAnalysis features of every window of ``signal`` (float64).

    ``signal`` is already DC-normalised.
    """
    frames = frame_signal(signal, window, step)
    n_frames = frames.shape[0]
    num_fft = window // 2
    features = np.empty((n_frames, N_FEATURES))

    # Time domain.
    features[:, 0] = _zero_crossing_rate(signal, window, step, n_frames)
    squares = frames ** 2
    features[:, 1] = np.sum(squares, axis=1) / window
    features[:, 2] = _sub_block_entropy(squares)

    magnitude = np.abs(scipy.fft.rfft(frames, axis=1)[:, :num_fft])
    magnitude /= num_fft
    power = magnitude ** 2

    # Centroid and spread on the peak-normalised magnitude.
    bin_hz = np.arange(1, num_fft + 1) * (sr / (2.0 * num_fft))
    peak = magnitude.max(axis=1, keepdims=True)
    scaled = magnitude / np.where(peak == 0, EPS, peak)
    den = scaled.sum(axis=1) + EPS
    centroid = scaled @ bin_hz / den
    spread = np.sqrt(np.sum((bin_hz[None, :] - centroid[:, None]) ** 2 * scaled, axis=1) / den)
    features[:, 3] = centroid / (sr / 2.0)
    features[:, 4] = spread / (sr / 2.0)

    features[:, 5] = _sub_block_entropy(power)

    # Flux between consecutive normalised spectra; the first frame is
    # compared with itself, as in pyAudioAnalysis.
    normalised = magnitude / np.sum(magnitude + EPS, axis=1, keepdims=True)
    features[0, 6] = 0.0
    features[1:, 6] = np.sum(np.diff(normalised, axis=0) ** 2, axis=1)

    cumulative = np.cumsum(power, axis=1) + EPS
    above = cumulative > 0.90 * power.sum(axis=1, keepdims=True)
    features[:, 7] = np.where(above.any(axis=1), np.argmax(above, axis=1), 0) / num_fft

    mel_log = np.log10(magnitude @ mfcc_filter_banks(sr, num_fft).T + EPS)
    features[:, 8:8 + N_MFCC] = scipy.fft.dct(mel_log, type=2, norm="ortho", axis=1)[:, :N_MFCC]

    chroma = power @ chroma_matrix(sr, num_fft)
    total_power = power.sum(axis=1, keepdims=True)
    chroma = chroma / np.where(total_power == 0, EPS, total_power)
    features[:, 8 + N_MFCC:8 + N_MFCC + N_CHROMA] = chroma
    features[:, -1] = chroma.std(axis=1)
    return features


def short_term_features(signal, sr: int, *, window: float = 0.2,
                        step: float = 0.025) -> np.ndarray:
    """The 34 pyAudioAnalysis short-term features of every window of a clip.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono float signal, shape ``(n_samples,)``, at least one window long.
    sr : int
        Sample rate in Hz.
    window : float, default 0.2
        Window length in seconds (paper 001: 0.2 s).
    step : float, default 0.025
        Hop in seconds. Paper 001 does not give it; 0.025 s is tff_ser's
        choice so a typical 2.5 s CREMA-D clip yields about the paper's 100
        windows (93 at 2.5 s, 16 kHz).

    Returns
    -------
    numpy.ndarray
        ``(n_frames, 34)`` float32, columns in :data:`FEATURE_NAMES` order,
        ``n_frames = 1 + (n_samples - window) // step`` (in samples).

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> f = short_term_features(np.sin(2 * np.pi * 440 * t), 16000)
    >>> f.shape
    (33, 34)
    """
    signal = check_signal(signal, sr)
    window_n = seconds_to_samples(window, sr, "window")
    step_n = seconds_to_samples(step, sr, "step")
    return _frame_features(dc_normalize(signal), sr, window_n, step_n).astype(np.float32)


def paper001_frames(signal, sr: int, *, window: float = 0.2, step: float = 0.025,
                    n_frames: int = 100) -> np.ndarray:
    """Paper 001's model input: short-term features fixed to ``n_frames`` rows.

    Longer clips are truncated to their first ``n_frames`` windows; shorter
    ones are zero-padded at the end (rows of zeros, i.e. "no window").

    Parameters
    ----------
    signal : numpy.ndarray
        Mono float signal.
    sr : int
        Sample rate in Hz.
    window, step : float
        See :func:`short_term_features`.
    n_frames : int, default 100
        Paper 001's 100 windows.

    Returns
    -------
    numpy.ndarray
        ``(n_frames, 34)`` float32.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    features = short_term_features(signal, sr, window=window, step=step)
    return fix_frames(features, int(n_frames))


def clip_statistics(signal, sr: int, *, window: float = 0.05,
                    step: float = 0.025) -> np.ndarray:
    """One 136-value vector per clip: pyAudioAnalysis mid-term statistics.

    pyAudioAnalysis's ``mid_feature_extraction`` with one mid-term window
    covering the whole clip: the 34 short-term features plus their deltas
    (frame minus previous frame, 0 for the first frame) give 68 series; the
    vector is their 68 means followed by their 68 standard deviations
    (population std), as in :data:`CLIP_STATISTIC_NAMES`.

    Parameters
    ----------
    signal : numpy.ndarray
        Mono float signal.
    sr : int
        Sample rate in Hz.
    window : float, default 0.05
        Short-term window in seconds (pyAudioAnalysis's usual 50 ms; paper
        000 does not state its values).
    step : float, default 0.025
        Short-term hop in seconds.

    Returns
    -------
    numpy.ndarray
        ``(136,)`` float32.
    """
    signal = check_signal(signal, sr)
    window_n = seconds_to_samples(window, sr, "window")
    step_n = seconds_to_samples(step, sr, "step")
    short = _frame_features(dc_normalize(signal), sr, window_n, step_n)
    deltas = np.zeros_like(short)
    deltas[1:] = np.diff(short, axis=0)
    series = np.concatenate([short, deltas], axis=1)
    stats = np.concatenate([series.mean(axis=0), series.std(axis=0)])
    return np.nan_to_num(stats).astype(np.float32)
