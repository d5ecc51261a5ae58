"""Emotion cues: the prosodic and voice-quality cues of acted emotional speech, drawn per clip.

Murray & Arnott 1993, Scherer 2003, Juslin & Laukka 2003; CREMA-D's levels
LO/MD/HI scale the contrast.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    from tff_ser.corpus.synthesis.speaker import Speaker

#: Contrast of CREMA-D's intensity levels relative to an unmarked (XX) clip.
LEVEL_CONTRAST = {"LO": 0.5, "MD": 1.0, "HI": 1.5, "XX": 1.0}



# --------------------------------------------------------------------------
# Emotions.  Each cue is a range for a fully committed actor at level MD;
# a speaker draws one value per cue (their way of acting the emotion), each
# clip varies it, and the speaker's acting skill and the clip's level scale
# it.  Values are offsets from the same speaker's neutral speech on the
# scale named in the key.  F0, range, rate and intensity follow the
# literature's directions (Murray & Arnott 1993, Scherer 2003, Juslin &
# Laukka 2003; summarised in data/README.md); fear and disgust follow the
# same sources qualitatively.
# --------------------------------------------------------------------------
EMOTION_CUES = {
    "NEU": {},
    "ANG": {
        "f0_rel": (0.30, 0.60),          # mean F0, relative change
        "f0_range_x": (1.5, 2.0),        # F0 range / variability, factor
        "rate_rel": (0.05, 0.15),        # speech rate, relative change
        "intensity_db": (6.0, 9.0),
        "tilt_db_oct": (1.5, 3.0),       # flatter spectrum, more HF energy
        "open_quotient": (-0.14, -0.08),  # tense voice: short open phase
        "breath_db": (-6.0, -3.0),
        "jitter_x": (1.3, 1.8),
        "f1_rel": (0.05, 0.10),          # wider jaw opening
        "f2_rel": (0.0, 0.02),
    },
    "HAP": {
        "f0_rel": (0.20, 0.40),
        "f0_range_x": (1.3, 1.8),
        "rate_rel": (0.0, 0.10),
        "intensity_db": (3.0, 5.0),
        "tilt_db_oct": (0.5, 1.5),
        "open_quotient": (-0.05, 0.0),
        "breath_db": (-2.0, 0.0),
        "jitter_x": (1.0, 1.2),
        "f1_rel": (0.02, 0.05),
        "f2_rel": (0.02, 0.05),          # spread lips shorten the tract
    },
    "SAD": {
        "f0_rel": (-0.15, -0.05),
        "f0_range_x": (0.6, 0.8),
        "rate_rel": (-0.25, -0.15),
        "intensity_db": (-5.0, -3.0),
        "tilt_db_oct": (-2.5, -1.0),
        "open_quotient": (0.08, 0.15),   # breathy: long open phase
        "breath_db": (4.0, 8.0),
        "jitter_x": (1.1, 1.4),
        "f1_rel": (-0.07, -0.03),
        "f2_rel": (-0.03, 0.0),
        "creak": (0.0, 0.2),
    },
    "FEA": {
        "f0_rel": (0.35, 0.70),
        "f0_range_x": (1.2, 1.6),
        "rate_rel": (0.10, 0.20),
        "intensity_db": (0.0, 3.0),
        "tilt_db_oct": (0.5, 1.5),
        "open_quotient": (0.02, 0.08),   # tense but breathy
        "breath_db": (3.0, 6.0),
        "jitter_x": (1.5, 2.2),
        "f1_rel": (0.02, 0.05),
        "f2_rel": (0.0, 0.03),
        "tremor": (0.01, 0.03),          # relative F0 modulation depth at ~6 Hz
    },
    "DIS": {
        "f0_rel": (-0.15, -0.05),
        "f0_range_x": (0.8, 1.1),
        "rate_rel": (-0.20, -0.10),
        "intensity_db": (-3.0, -1.0),
        "tilt_db_oct": (-1.5, -0.5),
        "open_quotient": (0.0, 0.05),
        "breath_db": (0.0, 3.0),
        "jitter_x": (1.2, 1.6),
        "f1_rel": (-0.05, -0.02),
        "f2_rel": (-0.04, -0.01),
        "creak": (0.3, 0.6),
    },
}

#: Intonation contour shape per emotion: accent width and peak position
#: (fractions of the vowel), final boundary movement and declination (st),
#: extra level on accented vowels and intensity declination (dB).  Anger's
#: accents are narrow and abrupt, happiness rises (late peaks, final rise),
#: sadness peaks early and falls.
CONTOUR_SHAPE = {
    "NEU": dict(accent_width=0.45, accent_peak=0.50, final_st=-3.0, declination_st=-2.0,
                accent_db=2.0, level_decline_db=-3.0),
    "ANG": dict(accent_width=0.22, accent_peak=0.35, final_st=-4.5, declination_st=-2.0,
                accent_db=5.0, level_decline_db=-2.0),
    "HAP": dict(accent_width=0.55, accent_peak=0.85, final_st=1.5, declination_st=-0.5,
                accent_db=3.0, level_decline_db=-2.0),
    "SAD": dict(accent_width=0.60, accent_peak=0.25, final_st=-4.5, declination_st=-3.5,
                accent_db=1.0, level_decline_db=-6.0),
    "FEA": dict(accent_width=0.35, accent_peak=0.65, final_st=1.0, declination_st=-1.0,
                accent_db=3.0, level_decline_db=-2.0),
    "DIS": dict(accent_width=0.50, accent_peak=0.40, final_st=-4.0, declination_st=-3.0,
                accent_db=2.0, level_decline_db=-4.0),
}

#: Ceiling (semitones) the height of a pitch accent approaches in the most
#: aroused clips.
MAX_ACCENT_ST = 9.0

#: Fastest F0 movement, semitones per second: large pitch rises and falls
#: reach roughly 50-80 st/s (Xu & Sun 2002, "Maximum speed of pitch change").
MAX_F0_SPEED_ST_S = 70.0

#: Reference active-speech level of neutral speech before speaker loudness, dBFS.
_REFERENCE_LEVEL_DBFS = -30.0

# ==========================================================================
# One clip's prosody and voice.
# ==========================================================================

@dataclasses.dataclass(frozen=True)
class ClipVoice:
    """Everything the synthesiser needs about how one clip is spoken.

    Attributes are absolute values for this clip (speaker x emotion x level x
    clip-to-clip variation); see :func:`draw_clip_voice`.
    """

    f0_hz: float
    f0_range_st: float
    rate: float
    level_dbfs: float
    tilt_db_oct: float
    open_quotient: float
    breath_db: float
    jitter: float
    shimmer: float
    formant_scale: tuple
    upper_formants_hz: tuple
    bandwidth_factor: float
    creak: float
    tremor: float
    accent_width: float
    accent_peak: float
    final_st: float
    declination_st: float
    accent_db: float
    level_decline_db: float
    snr_db: float
    noise_level_dbfs: float
    noise_colour: float
    channel_tilt_db_oct: float
    channel_highpass_hz: float
    lead_s: float
    trail_s: float


def _saturate(c: float, knee: float = 1.2, ceiling: float = 2.0) -> float:
    """Leave contrasts up to ``knee`` alone and bend larger ones below ``ceiling``.

    A skilled actor at level HI would otherwise double the notes' ranges
    again (anger at 4x the neutral F0); real voices saturate.
    """
    if c <= knee:
        return c
    return knee + (ceiling - knee) * math.tanh((c - knee) / (ceiling - knee))


def draw_clip_voice(speaker: Speaker, emotion: str, level: str, rng: np.random.Generator,
                    *, clip_variation: float = 0.3, cue_variation: float = 0.2,
                    contrast: float = 1.0) -> ClipVoice:
    """How ``speaker`` speaks one clip of ``emotion`` at ``level``.

    Each cue is the speaker's own style value (drawn once per speaker from
    :data:`EMOTION_CUES`) times the contrast of this clip, which is the
    speaker's acting skill x the level's contrast x a per-clip factor; every
    clip, neutral ones included, also varies naturally around the speaker's
    habitual voice.

    Parameters
    ----------
    speaker : Speaker
    emotion : str
    level : {"LO", "MD", "HI", "XX"}
    rng : numpy.random.Generator
        The clip's own stream (:func:`clip_rng`).
    clip_variation : float, default 0.3
        SD (log scale) of the clip-to-clip variation of the clip's overall
        contrast: how committed this take is.
    cue_variation : float, default 0.2
        Relative SD of each cue's own clip-to-clip variation around the
        speaker's style.
    contrast : float, default 1.0
        Global multiplier of every emotion effect (the corpus difficulty knob).

    Returns
    -------
    ClipVoice
    """
    style = speaker.style[emotion]
    c = _saturate(contrast * speaker.skill * LEVEL_CONTRAST[level] * float(
        np.exp(rng.normal(0.0, clip_variation))))

    def cue(name, default=0.0):
        if name not in style:
            return default
        return style[name] * (1.0 + rng.normal(0.0, cue_variation))

    def log_cue(name):
        # Relative changes and factors act on a log scale, so a half-hearted
        # actor gets half the semitones, not half the hertz.
        if name.endswith("_x"):
            return c * math.log(max(cue(name, 1.0), 1e-3))
        return c * math.log1p(max(cue(name, 0.0), -0.9))

    shape = {k: v + min(c, 1.5) * (CONTOUR_SHAPE[emotion][k] - v)
             for k, v in CONTOUR_SHAPE["NEU"].items()}
    # natural clip-to-clip variation of every clip, neutral included
    f0 = speaker.f0_hz * math.exp(log_cue("f0_rel") + rng.normal(0.0, 0.05))
    f0_range = speaker.f0_range_st * math.exp(log_cue("f0_range_x") + rng.normal(0.0, 0.15))
    # even shouted accents stay within about an octave
    f0_range = MAX_ACCENT_ST * math.tanh(f0_range / MAX_ACCENT_ST)
    rate = speaker.rate * math.exp(log_cue("rate_rel") + rng.normal(0.0, 0.05))
    level_dbfs = (_REFERENCE_LEVEL_DBFS + speaker.loudness_db + c * cue("intensity_db")
                  + rng.normal(0.0, 1.0))
    f1 = math.exp(log_cue("f1_rel") + rng.normal(0.0, 0.02))
    f2 = math.exp(log_cue("f2_rel") + rng.normal(0.0, 0.02))
    snr = float(np.clip(speaker.snr_db + rng.normal(0.0, 3.0), 15.0, 35.0))
    return ClipVoice(
        f0_hz=f0,
        f0_range_st=f0_range,
        rate=rate,
        level_dbfs=level_dbfs,
        tilt_db_oct=speaker.tilt_db_oct + c * cue("tilt_db_oct") + rng.normal(0.0, 0.5),
        open_quotient=float(np.clip(speaker.open_quotient + c * cue("open_quotient")
                                    + rng.normal(0.0, 0.02), 0.3, 0.9)),
        breath_db=speaker.breath_db + c * cue("breath_db") + rng.normal(0.0, 1.5),
        jitter=speaker.jitter * math.exp(log_cue("jitter_x") + rng.normal(0.0, 0.1)),
        shimmer=speaker.shimmer * math.exp(0.5 * log_cue("jitter_x") + rng.normal(0.0, 0.1)),
        formant_scale=(speaker.vtl_factor * f1, speaker.vtl_factor * f2, speaker.vtl_factor),
        upper_formants_hz=speaker.upper_formants_hz,
        bandwidth_factor=speaker.bandwidth_factor,
        creak=float(np.clip(c * cue("creak"), 0.0, 0.9)),
        tremor=float(max(c * cue("tremor"), 0.0)),
        accent_width=shape["accent_width"] * math.exp(rng.normal(0.0, 0.1)),
        accent_peak=float(np.clip(shape["accent_peak"] + rng.normal(0.0, 0.08), 0.05, 0.95)),
        final_st=shape["final_st"] + rng.normal(0.0, 0.7),
        declination_st=shape["declination_st"] + rng.normal(0.0, 0.5),
        accent_db=max(shape["accent_db"] + rng.normal(0.0, 0.7), 0.0),
        level_decline_db=shape["level_decline_db"] + rng.normal(0.0, 1.0),
        snr_db=snr,
        # Background noise is the session's, not the voice's: its level sits
        # below the speaker's *neutral* level, so louder emotions have a
        # better SNR, as in a real recording booth.
        noise_level_dbfs=_REFERENCE_LEVEL_DBFS + speaker.loudness_db - snr,
        noise_colour=speaker.noise_colour + rng.normal(0.0, 0.1),
        channel_tilt_db_oct=speaker.channel_tilt_db_oct + rng.normal(0.0, 0.2),
        channel_highpass_hz=speaker.channel_highpass_hz * math.exp(rng.normal(0.0, 0.05)),
        lead_s=rng.uniform(0.2, 0.5),
        trail_s=rng.uniform(0.25, 0.6),
    )
