"""Signal synthesis: control tracks at the frame rate, the glottal source, the formant filter, the recording."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.fft

from tff_ser.corpus.synthesis.emotion import (EMOTION_CUES, LEVEL_CONTRAST, MAX_F0_SPEED_ST_S,
                                              ClipVoice, draw_clip_voice)
from tff_ser.corpus.synthesis.phonetics import (_BANDWIDTHS, _FRICATION_GAIN, _NOISE_SHAPES, _PLACES,
                                                _VOCAL_TRACT_GAIN, SENTENCE_PHONES, Segments,
                                                sentence_segments)
from tff_ser.corpus.synthesis.plan import ClipSpec, clip_rng
from tff_ser.corpus.synthesis.speaker import Speaker


# ==========================================================================
# Control tracks at the frame rate.
# ==========================================================================

def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Hann-window moving average along axis 0 (edges held)."""
    if width <= 1:
        return track
    w = np.hanning(width + 2)[1:-1]
    w /= w.sum()
    pad = width // 2
    padded = np.pad(track, [(pad, width - 1 - pad)] + [(0, 0)] * (track.ndim - 1), mode="edge")
    if track.ndim == 1:
        return np.convolve(padded, w, mode="valid")
    return np.stack([np.convolve(padded[:, j], w, mode="valid")
                     for j in range(track.shape[1])], axis=1)


def _db_to_amp(db):
    return np.where(np.isfinite(db), 10.0 ** (np.asarray(db, float) / 20.0), 0.0)


def f0_contour_st(t: np.ndarray, seg: Segments, voice: ClipVoice, rng: np.random.Generator,
                  *, max_speed_st_s: float = MAX_F0_SPEED_ST_S) -> np.ndarray:
    """F0 in semitones relative to the clip's mean F0, at times ``t`` (s).

    Pitch accents sit on the accented vowels, each lower than the previous
    (downstep); the utterance declines and ends in a boundary movement; a slow
    random drift adds the clip's own irregularity. Every excursion scales with
    the clip's F0 range (:attr:`ClipVoice.f0_range_st` is the first accent's
    height; declination and boundary are given for a 3-st range). No movement
    is faster than a larynx can go (``max_speed_st_s``, Xu & Sun 2002), so an
    "abrupt" accent is as steep as the voice allows, not a jump.
    """
    bounds = seg.boundaries
    total = bounds[-1]
    r = voice.f0_range_st / 3.0
    contour = voice.declination_st * r * (t / total - 0.5)
    for k, i in enumerate(np.flatnonzero(seg.accent == 1)):
        start, dur = bounds[i], seg.duration[i]
        height = voice.f0_range_st * 0.8 ** k * (1.0 + rng.normal(0.0, 0.15))
        # a Gaussian's steepest slope is height / (width * sqrt(e))
        width = max(voice.accent_width * dur, abs(height) / (max_speed_st_s * math.sqrt(math.e)))
        centre = start + voice.accent_peak * dur
        contour = contour + height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    # secondary stresses get a small bump
    for i in np.flatnonzero(seg.accent == 2):
        centre = bounds[i] + 0.5 * seg.duration[i]
        width = max(0.5 * seg.duration[i], 0.3 * voice.f0_range_st / max_speed_st_s)
        contour = contour + 0.3 * voice.f0_range_st * np.exp(-0.5 * ((t - centre) / width) ** 2)
    # boundary tone over the end of the last vowel, no faster than the speed limit
    last_vowel = np.flatnonzero(seg.accent >= 0)[-1]
    boundary = voice.final_st * r
    t0 = min(bounds[last_vowel] + 0.3 * seg.duration[last_vowel],
             total - abs(boundary) / max_speed_st_s)
    contour = contour + boundary * np.clip((t - t0) / max(total - t0, 1e-3), 0.0, 1.0)
    drift = _smooth(rng.standard_normal(len(t)), max(len(t) // 6, 3))
    contour = contour + drift * (0.25 * voice.f0_range_st / max(float(np.std(drift)), 1e-9))
    # round off the corners where accents and the boundary meet
    contour = _smooth(contour, max(int(round(0.03 / (t[1] - t[0]))), 1) if len(t) > 1 else 1)
    return contour - float(np.mean(contour))


@dataclasses.dataclass
class Tracks:
    """Frame-rate control tracks of one utterance (see :func:`control_tracks`)."""

    f0_hz: np.ndarray        # (frames,)
    voice_amp: np.ndarray    # (frames,)
    noise_amp: np.ndarray    # (frames, n_shapes)
    aspiration_amp: np.ndarray  # (frames,)
    formants: np.ndarray     # (frames, 5)
    creak: np.ndarray        # (frames,)


def control_tracks(seg: Segments, voice: ClipVoice, frame_s: float, rng: np.random.Generator
                   ) -> Tracks:
    """Sample the segments into smoothed frame-rate tracks.

    Formant targets are interpolated within each segment and smoothed over
    ~50 ms (coarticulation); levels over ~16 ms so segment edges do not click.
    """
    bounds = seg.boundaries
    n = int(math.ceil(bounds[-1] / frame_s)) + 1
    t = np.arange(n) * frame_s
    idx = np.clip(np.searchsorted(bounds, t, side="right") - 1, 0, len(seg.duration) - 1)
    frac = np.clip((t - bounds[idx]) / seg.duration[idx], 0.0, 1.0)[:, None]
    f123 = seg.f_start[idx] * (1 - frac) + seg.f_end[idx] * frac
    f123 = _smooth(f123, max(int(round(0.05 / frame_s)), 1))
    scale = np.asarray(voice.formant_scale)
    f123 = f123 * scale
    f45 = np.broadcast_to(np.asarray(voice.upper_formants_hz), (n, 2))
    formants = np.concatenate([f123, f45], axis=1)

    # level: segment level + accent emphasis + intensity declination
    level_db = seg.voice_db[idx].copy()
    accented = seg.accent[idx] == 1
    level_db[accented] += voice.accent_db
    level_db += voice.level_decline_db * t / bounds[-1]
    lw = max(int(round(0.016 / frame_s)), 1)
    voice_amp = _smooth(_db_to_amp(level_db), lw)
    noise_amp = np.zeros((n, len(_NOISE_SHAPES)))
    has_noise = seg.noise_shape[idx] >= 0
    noise_amp[np.flatnonzero(has_noise), seg.noise_shape[idx][has_noise]] = _db_to_amp(
        seg.noise_db[idx][has_noise])
    noise_amp = _smooth(noise_amp, max(lw // 2, 1))
    aspiration_amp = _smooth(_db_to_amp(seg.aspiration_db[idx]), lw)

    f0 = voice.f0_hz * 2.0 ** (f0_contour_st(t, seg, voice, rng) / 12.0)
    # creak: the voice drops into irregular, low-pitched pulses towards the end
    creak = voice.creak * np.clip((t / bounds[-1] - 0.6) / 0.3, 0.0, 1.0)
    f0 = f0 * (1.0 - 0.35 * creak)
    if voice.tremor > 0:
        f0 = f0 * (1.0 + voice.tremor * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t
                                               + rng.uniform(0, 2 * np.pi)))
    f0 = np.clip(f0, 40.0, 700.0)
    return Tracks(f0, voice_amp, noise_amp, aspiration_amp, formants, creak)


# ==========================================================================
# Signal synthesis.
# ==========================================================================

def glottal_source(f0: np.ndarray, sr: int, *, open_quotient: float, jitter: float,
                   shimmer: float, breath_db: float, creak: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Differentiated Rosenberg glottal flow plus aspiration, sample by sample.

    Parameters
    ----------
    f0 : (n,) float
        Instantaneous F0 in Hz at every sample.
    sr : int
    open_quotient : float
        Open phase as a fraction of the period (0.4 tense ... 0.8 breathy);
        a shorter open phase closes more abruptly and gives more HF energy.
    jitter, shimmer : float
        Relative SD of period and amplitude, drawn once per glottal cycle.
    breath_db : float
        Aspiration noise level relative to the pulse RMS; the noise is
        stronger while the glottis is open.
    creak : (n,) float
        0..1: alternate cycles are weakened (period doubling) where > 0.
    rng : numpy.random.Generator

    Returns
    -------
    (n,) float
    """
    phase0 = np.cumsum(f0) / sr
    # jitter moves cycle boundaries, so leave room for a few extra cycles
    n_cycles = int(1.5 * phase0[-1]) + 4
    period_noise = rng.standard_normal(n_cycles)
    # creaky phonation is also aperiodic: jitter grows with creak
    f0j = f0 * np.maximum(
        1.0 + (jitter * (1.0 + 4.0 * creak)) * period_noise[phase0.astype(int)], 0.5)
    phase = np.cumsum(f0j) / sr
    cycle = np.minimum(phase.astype(int), n_cycles - 1)
    p = phase - cycle
    tp = open_quotient * 0.65
    tn = open_quotient - tp
    flow = np.where(p < tp, 0.5 * (1.0 - np.cos(np.pi * p / tp)),
                    np.where(p < open_quotient,
                             np.cos(0.5 * np.pi * (p - tp) / tn), 0.0))
    amp = 1.0 + shimmer * rng.standard_normal(n_cycles)
    amp = amp[cycle] * (1.0 - 0.7 * creak * (cycle % 2))
    # d(flow)/d(phase): the pulse's size does not shrink with the period
    pulse = np.diff(flow * amp, prepend=0.0) * (sr / f0)
    rms = float(np.sqrt(np.mean(pulse ** 2))) or 1.0
    open_phase = 0.3 + 0.7 * (p < open_quotient)
    aspiration = rng.standard_normal(len(f0)) * open_phase * rms * 10.0 ** (breath_db / 20.0)
    return pulse + aspiration


def _formant_envelope(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray
                      ) -> np.ndarray:
    """|H(f)| of a cascade of two-pole resonators, unit gain at DC.

    ``formants`` and ``bandwidths`` are (frames, k); returns (frames, bins).
    """
    f = freqs[None, :].astype(np.float32)
    power = np.ones((formants.shape[0], len(freqs)), np.float32)
    for k in range(formants.shape[1]):
        fk = formants[:, k:k + 1].astype(np.float32)
        hb2 = (0.5 * bandwidths[:, k:k + 1].astype(np.float32)) ** 2
        power *= (fk ** 2 + hb2) ** 2 / (((f - fk) ** 2 + hb2) * ((f + fk) ** 2 + hb2))
    return np.sqrt(power)


def _noise_shapes(freqs: np.ndarray, vtl: float) -> np.ndarray:
    """Spectra of bursts and frication per place, (n_shapes, bins), scaled by vocal-tract length."""
    shapes = []
    logf = np.log2(np.maximum(freqs, 50.0))
    for place in _NOISE_SHAPES:
        centre, width_oct, _ = _PLACES[place][1]
        c = min(centre * vtl, 0.8 * freqs[-1])
        g = np.exp(-0.5 * ((logf - np.log2(c)) / width_oct) ** 2)
        # frication is high-passed by the front cavity: nothing much below 500 Hz
        g = g / (1.0 + (500.0 / np.maximum(freqs, 1.0)) ** 4)
        shapes.append(g / np.sqrt(np.mean(g ** 2)))
    return np.asarray(shapes)


def _frames(x: np.ndarray, hop: int, win: int, nfft: int) -> np.ndarray:
    """Hann-windowed frames centred at ``i * hop``, zero-padded to ``nfft`` (centred)."""
    n_frames = len(x) // hop + 1
    pad_left = win // 2
    padded = np.zeros(pad_left + n_frames * hop + win)
    padded[pad_left:pad_left + len(x)] = x
    windows = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    offset = (nfft - win) // 2
    frames = np.zeros((n_frames, nfft), np.float32)
    frames[:, offset:offset + win] = windows * np.hanning(win + 1)[:-1]
    return frames


def _overlap_add(frames: np.ndarray, n: int, hop: int, win: int) -> np.ndarray:
    """Inverse of :func:`_frames` for frames filtered in the frequency domain."""
    n_frames, nfft = frames.shape
    blocks = nfft // hop
    out = np.zeros((n_frames + blocks, hop), np.float64)
    for k in range(blocks):
        out[k:k + n_frames] += frames[:, k * hop:(k + 1) * hop]
    start = win // 2 + (nfft - win) // 2
    # a periodic Hann window at hop = win / 4 sums to 2
    return out.reshape(-1)[start:start + n] * (hop / (win / 2.0))


def _tilt(freqs: np.ndarray, db_per_octave: float, pivot_hz: float = 500.0) -> np.ndarray:
    """Gain that rises (or falls) by ``db_per_octave`` above ``pivot_hz``, flat below.

    Vocal effort changes the harmonics above the first formant region, not
    the fundamental.
    """
    return 10.0 ** (db_per_octave * np.log2(np.maximum(freqs, pivot_hz) / pivot_hz) / 20.0)


def _active_rms(y: np.ndarray, sr: int) -> float:
    """RMS over the frames within 30 dB of the loudest (the speech, not the pauses)."""
    hop = int(0.02 * sr)
    frames = y[: len(y) // hop * hop].reshape(-1, hop)
    power = np.mean(frames ** 2, axis=1)
    active = power >= power.max() * 1e-3
    return float(np.sqrt(np.mean(power[active])))


def _coloured_noise(n: int, sr: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    # an FFT length with small prime factors; a clip's own length can be slow
    n_fft = scipy.fft.next_fast_len(n, real=True)
    spectrum = scipy.fft.rfft(rng.standard_normal(n_fft))
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    spectrum *= np.maximum(f, 20.0) ** (-exponent / 2.0)
    noise = scipy.fft.irfft(spectrum, n_fft)[:n]
    return noise / (np.sqrt(np.mean(noise ** 2)) or 1.0)


def _soft_limit(y: np.ndarray, knee: float = 0.8) -> np.ndarray:
    """Leave |y| <= knee alone and squash the rest smoothly below 1 (a recorder's limiter)."""
    over = np.abs(y) > knee
    if not over.any():
        return y
    out = y.copy()
    a = np.abs(y[over]) - knee
    out[over] = np.sign(y[over]) * (knee + (1.0 - knee) * np.tanh(a / (1.0 - knee)))
    return out


#: Clip length bounds (s): CREMA-D's 4-class clips mostly run 1.5-3.5 s.
CLIP_SECONDS = (1.6, 3.4)
#: Longest speech part (s); slower renditions are time-compressed to fit.
MAX_SPEECH_S = 2.8


def clip_margins(speech_s: float, lead_s: float, trail_s: float,
                 bounds=CLIP_SECONDS) -> tuple:
    """Leading and trailing silence that keep the whole clip within ``bounds``.

    Long utterances get proportionally shorter margins (never under 0.15 s);
    short ones a longer trailing silence.
    """
    lo, hi = bounds
    total = speech_s + lead_s + trail_s
    if total > hi:
        room = max(hi - speech_s, 0.3)
        scale = room / (lead_s + trail_s)
        lead_s, trail_s = max(lead_s * scale, 0.15), max(trail_s * scale, 0.15)
    elif total < lo:
        trail_s += lo - total
    return lead_s, trail_s


def synthesize_clip(speaker: Speaker, spec: ClipSpec, seed: int = 0, sr: int = 16000,
                    **voice_kwargs) -> np.ndarray:
    """Synthesise one clip as float samples in [-1, 1].

    Parameters
    ----------
    speaker : Speaker
    spec : ClipSpec
        Must belong to ``speaker``.
    seed : int, default 0
        Corpus seed; the clip's randomness comes from ``(seed, actor,
        sentence, emotion, level)`` only.
    sr : int, default 16000
        Sample rate in Hz (CREMA-D's).
    **voice_kwargs
        Passed to :func:`draw_clip_voice` (``clip_variation``, ``cue_variation``,
        ``contrast``).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_samples,)``, float64.

    Examples
    --------
    >>> spk = draw_speakers(1, seed=0)[0]
    >>> y = synthesize_clip(spk, ClipSpec(spk.actor, "DFA", "ANG", "XX"))
    >>> 1.5 < len(y) / 16000 < 3.5
    True
    """
    if spec.actor != speaker.actor:
        raise ValueError(f"clip {spec.filename} belongs to actor {spec.actor}, "
                         f"not to speaker {speaker.actor}")
    for what, value, known in (("sentence", spec.sentence, SENTENCE_PHONES),
                               ("emotion", spec.emotion, EMOTION_CUES),
                               ("level", spec.level, LEVEL_CONTRAST)):
        if value not in known:
            raise ValueError(f"clip {spec.filename}: unknown {what} {value!r}; "
                             f"choose one of {tuple(known)}")
    rng = clip_rng(seed, spec.actor, spec.sentence, spec.emotion, spec.level)
    voice = draw_clip_voice(speaker, spec.emotion, spec.level, rng, **voice_kwargs)
    hop = int(round(sr * 0.008))
    win, nfft = 4 * hop, 8 * hop
    frame_s = hop / sr

    segments = sentence_segments(spec.sentence, voice.rate, rng,
                                 vowel_factors=speaker.vowel_factors)
    speech_s = float(segments.duration.sum())
    if speech_s > MAX_SPEECH_S:  # the slowest renditions are squeezed a little
        segments.duration *= MAX_SPEECH_S / speech_s
        speech_s = MAX_SPEECH_S
    lead, trail = clip_margins(speech_s, voice.lead_s, voice.trail_s)
    tracks = control_tracks(segments, voice, frame_s, rng)

    n_speech = int(round(speech_s * sr))
    t_frames = np.arange(len(tracks.f0_hz)) * frame_s
    t_samples = np.arange(n_speech) / sr
    f0 = np.interp(t_samples, t_frames, tracks.f0_hz)
    creak = np.interp(t_samples, t_frames, tracks.creak)
    source = glottal_source(f0, sr, open_quotient=voice.open_quotient, jitter=voice.jitter,
                            shimmer=voice.shimmer, breath_db=voice.breath_db, creak=creak,
                            rng=rng)
    source *= np.interp(t_samples, t_frames, tracks.voice_amp)
    noise = rng.standard_normal(n_speech)

    # single precision is ample for audio written at 16 bits, and twice as fast
    voiced_spec = scipy.fft.rfft(_frames(source, hop, win, nfft), axis=1)
    noise_spec = scipy.fft.rfft(_frames(noise, hop, win, nfft), axis=1)
    n_frames = voiced_spec.shape[0]
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    frame_idx = np.minimum(np.arange(n_frames), len(tracks.f0_hz) - 1)
    formants = np.minimum(tracks.formants[frame_idx], 0.45 * sr)
    bandwidths = np.broadcast_to(np.asarray(_BANDWIDTHS) * voice.bandwidth_factor,
                                 formants.shape).copy()
    # breathy voices have a damped, wider first formant (glottal losses)
    bandwidths[:, 0] *= 1.0 + 2.0 * max(voice.open_quotient - 0.6, 0.0)
    vocal_tract = _formant_envelope(freqs, formants, bandwidths) * _VOCAL_TRACT_GAIN
    channel = _tilt(freqs, voice.channel_tilt_db_oct) / np.sqrt(
        1.0 + (voice.channel_highpass_hz / np.maximum(freqs, 1.0)) ** 4)
    frication = (tracks.noise_amp[frame_idx] @ _noise_shapes(freqs, voice.formant_scale[2])
                 ).astype(np.float32)
    voiced_gain = vocal_tract * (_tilt(freqs, voice.tilt_db_oct) * channel).astype(np.float32)
    noise_gain = (_FRICATION_GAIN * frication
                  + tracks.aspiration_amp[frame_idx, None].astype(np.float32) * vocal_tract
                  ) * channel.astype(np.float32)
    spectrum = voiced_spec * voiced_gain + noise_spec * noise_gain
    speech = _overlap_add(scipy.fft.irfft(spectrum, n=nfft, axis=1), n_speech, hop, win)

    speech *= 10.0 ** (voice.level_dbfs / 20.0) / (_active_rms(speech, sr) or 1.0)
    n_lead, n_trail = int(round(lead * sr)), int(round(trail * sr))
    y = np.concatenate([np.zeros(n_lead), speech, np.zeros(n_trail)])
    y += _coloured_noise(len(y), sr, voice.noise_colour, rng) * 10.0 ** (
        voice.noise_level_dbfs / 20.0)
    return _soft_limit(y)


def to_pcm16(y: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, rounded (the write is then exact)."""
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
