"""The embedded generated corpus: a synthetic stand-in for CREMA-D.

A fresh clone has no CREMA-D (it is a 7,442-clip Git LFS download), yet every
notebook and test should run. :func:`generate_corpus` writes a corpus in
CREMA-D's own layout and naming (``AudioWAV/1001_DFA_ANG_XX.wav``,
``VideoDemographics.csv``), so the same loader, features and experiments run
on it unchanged, plus a ``GENERATED.json`` that marks it as generated: numbers
measured on it are never CREMA-D numbers.

The audio is source-filter speech synthesis (a Klatt-style formant
synthesiser, vectorised over short-time frames):

* **source** -- a Rosenberg glottal-flow pulse train (differentiated, which
  folds in lip radiation) on a sample-accurate F0 contour with per-cycle
  jitter and shimmer, aspiration noise gated by the open phase, optional
  creak (period doubling) and tremor;
* **filter** -- five formant resonances whose targets follow a fixed phone
  sequence per sentence (vowels, nasals, approximants) and are smoothed
  across phones (coarticulation); stops, fricatives and aspiration add
  shaped noise;
* **speaker** -- sex, habitual F0 and range, vocal-tract length (formant
  scaling), spectral tilt, breathiness, jitter/shimmer, speaking rate,
  loudness, a recording channel, and an acting skill that scales how much
  emotion they put across;
* **emotion** -- the prosodic and voice-quality cues of acted emotional speech
  (F0 level and range, tempo, intensity, tilt, voice quality, contour shape;
  Murray & Arnott 1993, Scherer 2003, Juslin & Laukka 2003), drawn per
  speaker and per clip from ranges so the classes overlap; CREMA-D's levels
  LO/MD/HI scale the contrast;
* **recording** -- leading/trailing silence, coloured noise at a random SNR,
  small gain and channel differences, 16-bit quantisation.

Every clip draws its randomness from ``(seed, actor, sentence, emotion,
level)`` alone, so a corpus is byte-identical across runs, parallel equals
serial, and any subset can be regenerated on its own.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import zlib
from typing import Optional, Sequence, Union

import numpy as np
import scipy.fft

from tff_ser.corpus.records import CREMAD_SENTENCES, EMOTIONS_4, EMOTIONS_6

#: Bumped whenever a change alters the generated audio, so an existing
#: corpus is regenerated instead of being reused.
GENERATOR_VERSION = "1.1"

#: Written into GENERATED.json; the CREMA-D loader keys on the file's presence.
GENERATED_NOTE = "synthetic stand-in for CREMA-D; never report as CREMA-D"

#: CREMA-D's first actor id.
FIRST_ACTOR = 1001

#: CREMA-D has 48 male and 43 female actors; the generated corpus keeps the ratio.
MALE_FRACTION = 48 / 91

#: Contrast of CREMA-D's intensity levels relative to an unmarked (XX) clip.
LEVEL_CONTRAST = {"LO": 0.5, "MD": 1.0, "HI": 1.5, "XX": 1.0}

#: The sentence recorded at three intensity levels in CREMA-D.
LEVELLED_SENTENCE = "IEO"

#: Presets of ``generate_corpus(size=...)``: speakers and sentences.
SIZES = {
    "full": {"n_speakers": 91, "sentences": CREMAD_SENTENCES},
    # IEO for the levels, plus the three shortest sentences.
    "small": {"n_speakers": 12, "sentences": ("IEO", "DFA", "TSI", "IOM")},
}

# --------------------------------------------------------------------------
# Sentences: the words of CREMA-D's 12 sentences as ARPAbet phones.
# Stress digits on vowels: 1 = pitch-accented, 2 = stressed, 0 = unstressed;
# "|" is a word boundary.  The accents fix each sentence's intonation pattern.
# --------------------------------------------------------------------------
SENTENCE_TEXT = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}

SENTENCE_PHONES = {
    "IEO": "IH0 T S | IH0 L EH1 V AH0 N | AH0 K L AA1 K",
    "TIE": "DH AE2 T | IH0 Z | IH0 G Z AE1 K T L IY0 | W AH2 T | HH AE1 P AH0 N D",
    "IOM": "AY1 M | AA2 N | M AY0 | W EY1 | T AH0 | DH AH0 | M IY1 DX IH0 NG",
    "IWW": "AY1 | W AH1 N D ER0 | W AH2 T | DH IH2 S | IH0 Z | AH0 B AW1 T",
    "TAI": "DH IY0 | EH1 R P L EY2 N | IH0 Z | AO1 L M OW2 S T | F UH1 L",
    "MTI": "M EY1 B IY0 | T AH0 M AA1 R OW0 | IH0 T | W IH0 L | B IY0 | K OW1 L D",
    "IWL": "AY1 | W UH0 D | L AY1 K | AH0 | N UW2 | AH0 L AA1 R M | K L AA1 K",
    "ITH": "AY1 | TH IH2 NG K | AY0 | HH AE0 V | AH0 | D AA1 K T ER0 Z | AH0 P OY1 N T M AH0 N T",
    "DFA": "D OW1 N T | F ER0 G EH1 T | AH0 | JH AE1 K AH0 T",
    "ITS": "AY1 | TH IH1 NG K | AY0 V | S IY1 N | DH IH0 S | B IH0 F AO1 R",
    "TSI": "DH AH0 | S ER1 F AH0 S | IH0 Z | S L IH1 K",
    "WSI": "W IY1 L | S T AA1 P | IH0 N | AH0 | K AH1 P AH0 L | AH0 V | M IH1 N AH0 T S",
}

# --------------------------------------------------------------------------
# Phones.  Formant targets (F1, F2, F3 in Hz) are adult-male averages
# (vowels: Hillenbrand et al. 1995); a speaker's vocal-tract length scales
# them.  Durations are for a stressed phone at an average speaking rate.
# --------------------------------------------------------------------------

#: vowel: (start formants, end formants, stressed duration in ms)
_VOWELS = {
    "IY": ((342, 2322, 3000), (342, 2322, 3000), 130),
    "IH": ((427, 2034, 2684), (427, 2034, 2684), 95),
    "EY": ((476, 2089, 2691), (360, 2250, 2900), 150),
    "EH": ((580, 1799, 2605), (580, 1799, 2605), 115),
    "AE": ((588, 1952, 2601), (620, 1850, 2550), 150),
    "AH": ((623, 1200, 2550), (623, 1200, 2550), 105),
    "AA": ((768, 1333, 2522), (768, 1333, 2522), 150),
    "AO": ((652, 997, 2538), (652, 997, 2538), 150),
    "OW": ((497, 910, 2459), (400, 880, 2400), 150),
    "UH": ((469, 1122, 2434), (469, 1122, 2434), 95),
    "UW": ((378, 997, 2343), (350, 950, 2300), 130),
    "ER": ((474, 1379, 1710), (474, 1379, 1710), 130),
    "AY": ((750, 1300, 2500), (420, 2000, 2600), 170),
    "AW": ((750, 1300, 2500), (450, 950, 2400), 170),
    "OY": ((550, 900, 2450), (420, 1950, 2600), 180),
}

#: The reduced vowel an unstressed AH becomes.
_SCHWA = ((500, 1500, 2500), (500, 1500, 2500), 105)

#: Consonant places: formant locus (F1, F2, F3) and noise shape
#: (centre Hz, width in octaves, level dB) for bursts and frication.
_PLACES = {
    "labial": ((300, 1000, 2200), (1500.0, 2.0, -8.0)),
    "dental": ((350, 1500, 2500), (4000.0, 2.0, -6.0)),
    "alveolar": ((320, 1750, 2600), (5200.0, 0.6, 0.0)),
    "postalveolar": ((300, 2000, 2500), (2900.0, 0.7, 0.0)),
    "velar": ((300, 2100, 2500), (2100.0, 0.5, 0.0)),
}
_NOISE_SHAPES = tuple(_PLACES)

#: consonant: (kind, place, voiced, duration ms, formant override or None)
_CONSONANTS = {
    "P": ("stop", "labial", False, 85, None),
    "B": ("stop", "labial", True, 70, None),
    "T": ("stop", "alveolar", False, 80, None),
    "D": ("stop", "alveolar", True, 65, None),
    "K": ("stop", "velar", False, 85, None),
    "G": ("stop", "velar", True, 70, None),
    "DX": ("flap", "alveolar", True, 28, None),
    "M": ("nasal", "labial", True, 65, (280, 1100, 2200)),
    "N": ("nasal", "alveolar", True, 60, (280, 1600, 2600)),
    "NG": ("nasal", "velar", True, 70, (280, 2000, 2500)),
    "L": ("approximant", "alveolar", True, 60, (380, 1000, 2600)),
    "R": ("approximant", "alveolar", True, 60, (420, 1250, 1600)),
    "W": ("approximant", "labial", True, 55, (320, 750, 2300)),
    "Y": ("approximant", "postalveolar", True, 55, (280, 2250, 3000)),
    "F": ("fricative", "labial", False, 95, None),
    "V": ("fricative", "labial", True, 60, None),
    "TH": ("fricative", "dental", False, 90, None),
    "DH": ("fricative", "dental", True, 45, None),
    "S": ("fricative", "alveolar", False, 105, None),
    "Z": ("fricative", "alveolar", True, 75, None),
    "SH": ("fricative", "postalveolar", False, 105, None),
    "ZH": ("fricative", "postalveolar", True, 75, None),
    "CH": ("affricate", "postalveolar", False, 110, None),
    "JH": ("affricate", "postalveolar", True, 95, None),
    "HH": ("aspiration", None, False, 60, None),
}

#: Duration factor by vowel stress (accented, stressed, unstressed).
_STRESS_DURATION = {1: 1.0, 2: 0.8, 0: 0.55}
#: Level of a vowel by stress, dB.
_STRESS_LEVEL_DB = {1: 0.0, 2: -1.5, 0: -4.0}

#: Higher formants (F4, F5) of an adult male; bandwidths of F1-F5 in Hz.
_F45 = (3400.0, 4300.0)
_BANDWIDTHS = (80.0, 100.0, 150.0, 250.0, 300.0)

#: Brings a stressed open vowel through the formant cascade to ~0 dB, the
#: reference the segment levels (and frication at ~-10 dB for /s/) are set against.
_VOCAL_TRACT_GAIN = 10.0 ** (-14.0 / 20.0)
#: Frication / burst noise relative to its place's nominal level.
_FRICATION_GAIN = 10.0 ** (-8.0 / 20.0)

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
# Randomness: one independent stream per (purpose, seed, actor, ...).
# ==========================================================================

def _code(text: str) -> int:
    """A stable integer for a short code ("ANG", "IEO"); crc32 is fixed across runs."""
    return zlib.crc32(text.encode("ascii"))


def _rng(seed: int, purpose: str, *keys) -> np.random.Generator:
    """Generator seeded by ``seed``, a purpose tag and integer/str keys.

    Each purpose gets its own stream, so adding a cue or an emotion never
    shifts the numbers any other part draws.
    """
    words = [int(seed), _code(purpose)]
    words += [k if isinstance(k, (int, np.integer)) else _code(str(k)) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def clip_rng(seed: int, actor: int, sentence: str, emotion: str, level: str
             ) -> np.random.Generator:
    """The random stream of one clip, from ``(seed, actor, sentence, emotion, level)`` only.

    Examples
    --------
    >>> a = clip_rng(0, 1001, "DFA", "ANG", "XX").random()
    >>> a == clip_rng(0, 1001, "DFA", "ANG", "XX").random()
    True
    """
    return _rng(seed, "clip", int(actor), sentence, emotion, level)


# ==========================================================================
# Corpus plan: which clips exist (CREMA-D's layout).
# ==========================================================================

@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """One clip of the plan: who says which sentence with which emotion and level."""

    actor: int
    sentence: str
    emotion: str
    level: str

    @property
    def filename(self) -> str:
        """CREMA-D file name, e.g. ``1001_DFA_ANG_XX.wav``."""
        return f"{self.actor}_{self.sentence}_{self.emotion}_{self.level}.wav"


def clip_plan(actors: Sequence[int], sentences: Sequence[str], emotions: Sequence[str]
              ) -> list:
    """Every clip of a corpus in CREMA-D's layout.

    Sentence IEO is recorded at LO, MD and HI for every emotion but neutral,
    which (like the other sentences) is recorded once at XX.

    Parameters
    ----------
    actors : sequence of int
    sentences : sequence of str
        CREMA-D sentence codes.
    emotions : sequence of str
        CREMA-D emotion codes.

    Returns
    -------
    list of ClipSpec
        Ordered by actor, sentence, emotion, level.

    Examples
    --------
    >>> len(clip_plan([1001], CREMAD_SENTENCES, EMOTIONS_4))
    54
    """
    plan = []
    for actor in actors:
        for sentence in sentences:
            for emotion in emotions:
                if sentence == LEVELLED_SENTENCE and emotion != "NEU":
                    levels = ("LO", "MD", "HI")
                else:
                    levels = ("XX",)
                plan.extend(ClipSpec(int(actor), sentence, emotion, lv) for lv in levels)
    return plan


# ==========================================================================
# Speakers.
# ==========================================================================

@dataclasses.dataclass(frozen=True)
class Speaker:
    """A generated actor's voice and acting.

    Attributes
    ----------
    actor : int
        CREMA-D style id (1001...).
    sex : str
        ``"Male"`` or ``"Female"`` (VideoDemographics.csv spelling).
    age : int
    race, ethnicity : str
        Demographic columns of VideoDemographics.csv (no acoustic effect).
    f0_hz : float
        Habitual F0 of neutral speech.
    f0_range_st : float
        Height of the first pitch accent in neutral speech, semitones.
    vtl_factor : float
        Formant scaling (shorter vocal tract -> higher formants).
    vowel_factors : dict
        Per vowel, this speaker's own (F1, F2, F3) factors: an idiolect,
        the same in every clip, as real speakers' vowel spaces differ.
    upper_formants_hz : (float, float)
        F4 and F5, which depend on the speaker's anatomy more than on the
        vowel (and carry speaker identity).
    bandwidth_factor : float
        Formant bandwidth scaling (vocal-tract losses differ per speaker).
    tilt_db_oct : float
        Extra spectral tilt of the voice source, dB per octave.
    open_quotient : float
        Fraction of the glottal cycle the glottis is open (lax voices higher).
    breath_db : float
        Aspiration noise relative to the voiced pulse, dB.
    jitter, shimmer : float
        Cycle-to-cycle F0 and amplitude perturbation (relative SD).
    rate : float
        Speaking-rate factor (>1 faster).
    loudness_db : float
        Speaking level relative to the corpus reference.
    skill : float
        Acting skill: scales every emotion cue (poor actors 0.3-0.6).
    channel_tilt_db_oct, channel_highpass_hz : float
        The recording channel of this actor's session.
    noise_colour : float
        Spectral exponent of the session's background noise (0 white, 1 pink).
    snr_db : float
        Typical signal-to-noise ratio of the session (clips vary around it).
    style : dict
        Per emotion, this actor's own draw of each cue in :data:`EMOTION_CUES`.
    """

    actor: int
    sex: str
    age: int
    race: str
    ethnicity: str
    f0_hz: float
    f0_range_st: float
    vtl_factor: float
    vowel_factors: dict
    upper_formants_hz: tuple
    bandwidth_factor: float
    tilt_db_oct: float
    open_quotient: float
    breath_db: float
    jitter: float
    shimmer: float
    rate: float
    loudness_db: float
    skill: float
    channel_tilt_db_oct: float
    channel_highpass_hz: float
    noise_colour: float
    snr_db: float
    style: dict


def _log_uniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def speaker_sexes(n_speakers: int, seed: int) -> list:
    """``"Male"``/``"Female"`` per actor, in CREMA-D's 48:43 ratio, shuffled by ``seed``."""
    n_male = int(round(n_speakers * MALE_FRACTION))
    sexes = np.array(["Male"] * n_male + ["Female"] * (n_speakers - n_male))
    return list(_rng(seed, "sexes", n_speakers).permutation(sexes))


def draw_speaker(actor: int, sex: str, seed: int, *, skill_range=(0.8, 1.5),
                 poor_skill_range=(0.3, 0.6), poor_actor_fraction: float = 0.2) -> Speaker:
    """Draw one actor's voice, from ``(seed, actor)`` and their sex.

    Parameters
    ----------
    actor : int
    sex : {"Male", "Female"}
    seed : int
    skill_range : (float, float), default (0.8, 1.5)
        Acting skill (the factor on every emotion cue; 1 plays the middle of
        :data:`EMOTION_CUES`'s ranges as drawn) of ordinary actors, uniform.
        Tuned with :mod:`tff_ser.corpus.calibrate` so that held-out-speaker
        accuracy lands near CREMA-D's (~65-75 %).
    poor_skill_range : (float, float), default (0.3, 0.6)
        Acting skill of poor actors, whose emotions differ little from their
        neutral voice.
    poor_actor_fraction : float, default 0.2
        Share of poor actors.

    Returns
    -------
    Speaker
    """
    if sex not in ("Male", "Female"):
        raise ValueError(f"sex must be 'Male' or 'Female', got {sex!r}")
    rng = _rng(seed, "speaker", int(actor))
    male = sex == "Male"
    age = int(rng.integers(20, 75))
    race = str(rng.choice(["Caucasian", "African American", "Asian", "Unknown"],
                          p=[0.60, 0.30, 0.08, 0.02]))
    ethnicity = "Hispanic" if rng.random() < 0.1 else "Not Hispanic"
    f0 = _log_uniform(rng, 85.0, 155.0) if male else _log_uniform(rng, 165.0, 255.0)
    # Women's vocal tracts are ~15 % shorter; individuals vary ~+-7 % around that.
    vtl = (1.0 if male else 1.15) * float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1))
    if rng.random() < poor_actor_fraction:
        skill = rng.uniform(*poor_skill_range)
    else:
        skill = rng.uniform(*skill_range)
    irng = _rng(seed, "idiolect", int(actor))
    vowel_factors = {v: tuple(float(f) for f in np.exp(irng.normal(0.0, 0.04, 3)))
                     for v in sorted(_VOWELS)}
    upper = tuple(float(f * vtl * np.exp(irng.normal(0.0, 0.05))) for f in _F45)
    bandwidth_factor = float(np.exp(irng.normal(0.0, 0.2)))
    style = {}
    for emotion, cues in EMOTION_CUES.items():
        erng = _rng(seed, "style", int(actor), emotion)
        style[emotion] = {cue: float(erng.uniform(lo, hi)) for cue, (lo, hi) in cues.items()}
    return Speaker(
        actor=int(actor), sex=sex, age=age, race=race, ethnicity=ethnicity,
        f0_hz=f0,
        f0_range_st=float(rng.uniform(2.0, 4.5)),
        vtl_factor=vtl,
        vowel_factors=vowel_factors,
        upper_formants_hz=upper,
        bandwidth_factor=bandwidth_factor,
        tilt_db_oct=float(rng.uniform(-2.0, 1.0)),
        open_quotient=float(rng.uniform(0.5, 0.68) + (0.0 if male else 0.04)),
        breath_db=float(rng.uniform(-30.0, -18.0) + (0.0 if male else 4.0)),
        jitter=float(rng.uniform(0.004, 0.012) * (1.0 + max(age - 50, 0) / 50.0)),
        shimmer=float(rng.uniform(0.02, 0.06)),
        rate=_log_uniform(rng, 0.85, 1.18),
        loudness_db=float(rng.uniform(-4.0, 4.0)),
        skill=float(skill),
        channel_tilt_db_oct=float(rng.uniform(-1.0, 1.0)),
        channel_highpass_hz=float(rng.uniform(60.0, 150.0)),
        noise_colour=float(rng.uniform(0.3, 1.5)),
        snr_db=float(rng.uniform(20.0, 32.0)),
        style=style,
    )


def draw_speakers(n_speakers: int, seed: int = 0) -> list:
    """All actors of a corpus, ids ``1001 ... 1000 + n_speakers``."""
    sexes = speaker_sexes(n_speakers, seed)
    return [draw_speaker(FIRST_ACTOR + i, sex, seed) for i, sex in enumerate(sexes)]


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


# ==========================================================================
# Segments: the sentence as a timed sequence of acoustic segments.
# ==========================================================================

@dataclasses.dataclass
class Segments:
    """Acoustic segments of one utterance (parallel arrays, one row per segment).

    Attributes
    ----------
    duration : (n,) float, seconds
    f_start, f_end : (n, 3) float
        F1-F3 targets at the start and end of the segment (male scale).
    voice_db : (n,) float
        Level of voicing (``-inf`` for none), dB relative to a stressed vowel.
    noise_db : (n,) float
        Level of burst / frication noise, dB (``-inf`` for none).
    noise_shape : (n,) int
        Index into :data:`_NOISE_SHAPES`, ``-1`` for none.
    aspiration_db : (n,) float
        Level of aspiration noise through the vocal tract, dB.
    accent : (n,) int
        Vowel stress (1 accented, 2 stressed, 0 unstressed), -1 for consonants.
    """

    duration: np.ndarray
    f_start: np.ndarray
    f_end: np.ndarray
    voice_db: np.ndarray
    noise_db: np.ndarray
    noise_shape: np.ndarray
    aspiration_db: np.ndarray
    accent: np.ndarray

    @property
    def boundaries(self) -> np.ndarray:
        """Start time of each segment and the end of the last, seconds."""
        return np.concatenate([[0.0], np.cumsum(self.duration)])


def parse_phones(transcription: str) -> list:
    """``"DH AH0 | S ER1"`` -> ``[("DH", None), ("AH", 0), ("S", None), ("ER", 1)]``."""
    phones = []
    for token in transcription.split():
        if token == "|":
            continue
        if token[-1].isdigit():
            base, stress = token[:-1], int(token[-1])
            if base not in _VOWELS:
                raise ValueError(f"unknown vowel {token!r} in {transcription!r}")
            phones.append((base, stress))
        else:
            if token not in _CONSONANTS:
                raise ValueError(f"unknown consonant {token!r} in {transcription!r}")
            phones.append((token, None))
    return phones


def sentence_segments(sentence: str, rate: float, rng: np.random.Generator,
                      *, duration_jitter: float = 0.12,
                      vowel_factors: Optional[dict] = None) -> Segments:
    """Time the phones of ``sentence`` into acoustic segments.

    Stops become a closure, a burst and (voiceless) aspiration; affricates a
    closure and frication; aspiration (HH) and flaps take the formants of the
    next vowel.

    Parameters
    ----------
    sentence : str
        CREMA-D sentence code.
    rate : float
        Speaking-rate factor (>1 faster).
    rng : numpy.random.Generator
    duration_jitter : float, default 0.12
        Relative SD of each phone's duration around its nominal value.
    vowel_factors : dict, optional
        A speaker's (F1, F2, F3) factors per vowel (:attr:`Speaker.vowel_factors`).
    """
    phones = parse_phones(SENTENCE_PHONES[sentence])
    rows = []
    ninf = -np.inf

    def vowel_formants(i):
        # formants of the nearest following vowel (for HH, flaps, stop releases)
        for name, stress in phones[i:]:
            if stress is not None:
                return (_SCHWA if name == "AH" and stress == 0 else _VOWELS[name])[0]
        return _SCHWA[0]

    for i, (name, stress) in enumerate(phones):
        jitter = float(np.exp(rng.normal(0.0, duration_jitter))) / rate
        if stress is not None:
            start, end, ms = _SCHWA if (name == "AH" and stress == 0) else _VOWELS[name]
            if vowel_factors is not None:
                start = tuple(f * k for f, k in zip(start, vowel_factors[name]))
                end = tuple(f * k for f, k in zip(end, vowel_factors[name]))
            d = ms * _STRESS_DURATION[stress] * jitter / 1000.0
            if i == len(phones) - 1 or all(s is None for _, s in phones[i + 1:]):
                d *= 1.25  # phrase-final lengthening
            rows.append((d, start, end, _STRESS_LEVEL_DB[stress], ninf, -1, ninf, stress))
            continue
        kind, place, voiced, ms, own = _CONSONANTS[name]
        d = ms * jitter / 1000.0
        locus = own if own is not None else (_PLACES[place][0] if place else vowel_formants(i + 1))
        shape = _NOISE_SHAPES.index(place) if place else -1
        shape_db = _PLACES[place][1][2] if place else ninf
        if kind == "stop" or kind == "affricate":
            closure = 0.55 * d
            rows.append((closure, locus, locus, -24.0 if voiced else ninf, ninf, -1, ninf, -1))
            if kind == "affricate":
                rows.append((0.45 * d, locus, locus, -12.0 if voiced else ninf,
                             shape_db - (10.0 if voiced else 6.0), shape, ninf, -1))
                continue
            burst = max(0.15 * d, 0.008)
            rows.append((burst, locus, locus, -18.0 if voiced else ninf,
                         shape_db - (14.0 if voiced else 8.0), shape, ninf, -1))
            if not voiced:
                nxt = vowel_formants(i + 1)
                rows.append((0.35 * d, locus, nxt, ninf, ninf, -1, -14.0, -1))
        elif kind == "fricative":
            rows.append((d, locus, locus, -12.0 if voiced else ninf,
                         shape_db - (8.0 if voiced else 2.0), shape, ninf, -1))
        elif kind == "aspiration":
            nxt = vowel_formants(i + 1)
            rows.append((d, nxt, nxt, ninf, ninf, -1, -12.0, -1))
        elif kind == "nasal":
            rows.append((d, locus, locus, -9.0, ninf, -1, ninf, -1))
        elif kind == "approximant":
            rows.append((d, locus, locus, -5.0, ninf, -1, ninf, -1))
        else:  # flap: a brief, weakened voiced alveolar contact
            nxt = vowel_formants(i + 1)
            rows.append((d, locus, nxt, -10.0, ninf, -1, ninf, -1))
    cols = list(zip(*rows))
    return Segments(
        duration=np.asarray(cols[0], float),
        f_start=np.asarray(cols[1], float),
        f_end=np.asarray(cols[2], float),
        voice_db=np.asarray(cols[3], float),
        noise_db=np.asarray(cols[4], float),
        noise_shape=np.asarray(cols[5], int),
        aspiration_db=np.asarray(cols[6], float),
        accent=np.asarray(cols[7], int),
    )


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


# ==========================================================================
# The corpus.
# ==========================================================================

@dataclasses.dataclass(frozen=True)
class GenerationReport:
    """What :func:`generate_corpus` did.

    Attributes
    ----------
    out_dir : str
        Corpus root (holds ``AudioWAV/``, ``VideoDemographics.csv`` and
        ``GENERATED.json``).
    n_clips : int
    n_speakers : int
    seconds : float
        Wall-clock time of this call.
    total_audio_s : float
        Summed duration of all clips.
    already_generated : bool
        True when an identical corpus was found and nothing was written.
    """

    out_dir: str
    n_clips: int
    n_speakers: int
    seconds: float
    total_audio_s: float
    already_generated: bool = False

    def __str__(self) -> str:
        if self.already_generated:
            return (f"already generated: {self.n_clips} clips of {self.n_speakers} speakers "
                    f"({self.total_audio_s / 3600:.2f} h) in {self.out_dir}")
        return (f"generated {self.n_clips} clips of {self.n_speakers} speakers "
                f"({self.total_audio_s / 3600:.2f} h of audio) in {self.seconds:.1f} s "
                f"-> {self.out_dir}")


def _resolve_emotions(emotions) -> tuple:
    if isinstance(emotions, str):
        if emotions == "all":
            return EMOTIONS_6
        raise ValueError(f"emotions must be 'all' or a sequence of CREMA-D codes such as "
                         f"{EMOTIONS_4}, got the string {emotions!r}")
    emotions = tuple(emotions)
    unknown = [e for e in emotions if e not in EMOTIONS_6]
    if unknown or not emotions or len(set(emotions)) != len(emotions):
        raise ValueError(f"emotions must be distinct codes from {EMOTIONS_6} (or 'all'), "
                         f"got {emotions}")
    return emotions


def _resolve_sentences(sentences) -> tuple:
    if isinstance(sentences, str):
        raise ValueError(f"sentences must be a sequence of codes such as ('IEO', 'DFA'), "
                         f"not the string {sentences!r}")
    sentences = tuple(sentences)
    unknown = [s for s in sentences if s not in CREMAD_SENTENCES]
    if unknown or not sentences or len(set(sentences)) != len(sentences):
        raise ValueError(f"sentences must be distinct CREMA-D sentence codes from "
                         f"{CREMAD_SENTENCES}, got {sentences}")
    return sentences


def generation_parameters(*, n_speakers: Optional[int] = None, sentences=None,
                          emotions=EMOTIONS_4, seed: int = 0, sr: int = 16000,
                          size: str = "full") -> dict:
    """Validated, JSON-ready parameters of a corpus (what GENERATED.json records).

    ``n_speakers`` and ``sentences`` default to the ``size`` preset
    (:data:`SIZES`).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    if n_speakers is None:
        n_speakers = SIZES[size]["n_speakers"]
    if sentences is None:
        sentences = SIZES[size]["sentences"]
    if isinstance(n_speakers, bool) or not isinstance(n_speakers, (int, np.integer)) \
            or not 1 <= n_speakers <= 8999:
        raise ValueError(f"n_speakers must be an integer from 1 to 8999 (actor ids stay "
                         f"four digits, 1001-9999), got {n_speakers!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 8000 <= sr <= 48000:
        raise ValueError(f"sr must be an integer sample rate from 8000 to 48000 Hz, got {sr!r}")
    return {
        "generator": "tff_ser.corpus.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_speakers": int(n_speakers),
        "sentences": list(_resolve_sentences(sentences)),
        "emotions": list(_resolve_emotions(emotions)),
        "sr": int(sr),
        "size": size,
    }


def _write_speaker_clips(speaker: Speaker, specs: Sequence[ClipSpec], audio_dir: str,
                         seed: int, sr: int) -> list:
    """Synthesise and write one actor's clips; (filename, n_samples, sha256) per clip."""
    import soundfile

    written = []
    for spec in specs:
        pcm = to_pcm16(synthesize_clip(speaker, spec, seed=seed, sr=sr))
        path = os.path.join(audio_dir, spec.filename)
        tmp = path + ".part"
        soundfile.write(tmp, pcm, sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        written.append((spec.filename, len(pcm), digest))
    return written


def _demographics_csv(speakers: Sequence[Speaker]) -> str:
    lines = ["ActorID,Age,Sex,Race,Ethnicity"]
    lines += [f"{s.actor},{s.age},{s.sex},{s.race},{s.ethnicity}" for s in speakers]
    return "\n".join(lines) + "\n"


def read_generated_json(out_dir) -> Optional[dict]:
    """The GENERATED.json of ``out_dir``, or ``None`` when it is not a generated corpus."""
    path = os.path.join(os.fspath(out_dir), "GENERATED.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def generate_corpus(out_dir, *, n_speakers: Optional[int] = None, sentences=None,
                    emotions: Union[str, Sequence[str]] = EMOTIONS_4, seed: int = 0,
                    sr: int = 16000, n_jobs: Optional[int] = None, progress: bool = True,
                    size: str = "full", overwrite: bool = False) -> GenerationReport:
    """Write the generated stand-in for CREMA-D in CREMA-D's layout.

    Writes ``out_dir/AudioWAV/{actor}_{sentence}_{emotion}_{level}.wav``
    (16-bit PCM mono), ``out_dir/VideoDemographics.csv`` and
    ``out_dir/GENERATED.json`` (generator version, parameters, counts and the
    note that these numbers are never CREMA-D numbers; the CREMA-D loader
    marks clips ``corpus="generated"`` when it is present).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Corpus root. Must not hold a real corpus (an ``AudioWAV/`` with WAV
        files but no ``GENERATED.json``).
    n_speakers : int, optional
        Number of actors, ids 1001 upwards. Default: 91 for ``size="full"``
        (CREMA-D's 91 actors, 48 male / 43 female), 12 for ``"small"``.
    sentences : sequence of str, optional
        CREMA-D sentence codes. Default: all 12 for ``"full"``; IEO, DFA,
        TSI, IOM for ``"small"``.
    emotions : sequence of str or "all", default EMOTIONS_4
        ``("NEU", "HAP", "SAD", "ANG")``; ``"all"`` adds fear and disgust.
    seed : int, default 0
        Same seed, same bytes.
    sr : int, default 16000
        Sample rate in Hz.
    n_jobs : int, optional
        Worker processes (joblib); ``None`` uses every CPU, 1 runs in this
        process. The output does not depend on it.
    progress : bool, default True
        Show a tqdm bar over actors.
    size : {"full", "small"}, default "full"
        ``"full"``: 91 x 54 = 4,914 clips with 4 emotions, as CREMA-D's
        4-class subset; ``"small"``: 12 actors x 22 clips for tests.
    overwrite : bool, default False
        When False and ``out_dir`` already holds a complete corpus generated
        with the same parameters, nothing is written.

    Returns
    -------
    GenerationReport

    Examples
    --------
    >>> report = generate_corpus("data/generated", size="small")  # doctest: +SKIP
    >>> report.n_clips                                             # doctest: +SKIP
    264
    """
    started = time.perf_counter()
    params = generation_parameters(n_speakers=n_speakers, sentences=sentences,
                                   emotions=emotions, seed=seed, sr=sr, size=size)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)
                               or n_jobs == 0 or n_jobs < -1):
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    out_dir = os.path.abspath(os.fspath(out_dir))
    # Two processes asking for the same corpus at once (two experiments started
    # on a fresh clone) must not write it side by side: the second would see
    # WAVs without GENERATED.json.  It waits here, then finds the corpus done.
    import fcntl
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    lock_path = os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _generate_locked(out_dir, params, started=started, n_jobs=n_jobs,
                                    progress=progress, overwrite=overwrite)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _generate_locked(out_dir: str, params: dict, *, started: float, n_jobs, progress: bool,
                     overwrite: bool) -> GenerationReport:
    """:func:`generate_corpus`'s work, under the lock on ``out_dir``."""
    audio_dir = os.path.join(out_dir, "AudioWAV")
    speakers = draw_speakers(params["n_speakers"], params["seed"])
    actors = [s.actor for s in speakers]
    plan = clip_plan(actors, params["sentences"], params["emotions"])

    existing = read_generated_json(out_dir)
    if os.path.isdir(audio_dir) and existing is None and any(
            name.lower().endswith(".wav") for name in os.listdir(audio_dir)):
        raise FileExistsError(
            f"{audio_dir} holds WAV files but {out_dir} has no GENERATED.json: it looks like a "
            "real corpus. Choose another out_dir for the generated corpus (the default is "
            "data/generated/).")
    if (not overwrite and existing is not None and existing.get("parameters") == params
            and all(os.path.isfile(os.path.join(audio_dir, c.filename)) for c in plan)):
        return GenerationReport(out_dir, len(plan), len(speakers),
                                time.perf_counter() - started,
                                float(existing["counts"]["total_audio_s"]),
                                already_generated=True)

    os.makedirs(audio_dir, exist_ok=True)
    # Until the new GENERATED.json is written the directory is not a finished corpus.
    if existing is not None:
        os.remove(os.path.join(out_dir, "GENERATED.json"))
        planned = {c.filename for c in plan}
        for name in os.listdir(audio_dir):
            if name.endswith(".wav") and name not in planned:
                os.remove(os.path.join(audio_dir, name))

    by_actor = {s.actor: [] for s in speakers}
    for spec in plan:
        by_actor[spec.actor].append(spec)
    tasks = [(s, by_actor[s.actor]) for s in speakers]
    if n_jobs is None:
        n_jobs = os.cpu_count() or 1
    n_jobs = len(tasks) if n_jobs == -1 else min(n_jobs, len(tasks))

    from tqdm.auto import tqdm
    bar = tqdm(total=len(plan), unit="clip", desc="generating corpus", disable=not progress)
    results = []
    if n_jobs == 1:
        for speaker, specs in tasks:
            results.append(_write_speaker_clips(speaker, specs, audio_dir, params["seed"],
                                                params["sr"]))
            bar.update(len(specs))
    else:
        from joblib import Parallel, delayed
        jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_write_speaker_clips)(speaker, specs, audio_dir, params["seed"],
                                          params["sr"])
            for speaker, specs in tasks)
        for written in jobs:
            results.append(written)
            bar.update(len(written))
    bar.close()

    with open(os.path.join(out_dir, "VideoDemographics.csv"), "w", encoding="utf-8",
              newline="") as f:
        f.write(_demographics_csv(speakers))
    rows = [row for written in results for row in written]
    total_audio_s = sum(n for _, n, _ in rows) / params["sr"]
    corpus_hash = hashlib.sha256("".join(f"{name} {digest}\n" for name, _, digest
                                         in sorted(rows)).encode()).hexdigest()
    per_emotion = {e: sum(1 for c in plan if c.emotion == e) for e in params["emotions"]}
    manifest = {
        "note": GENERATED_NOTE,
        "parameters": params,
        "counts": {
            "n_clips": len(plan),
            "n_speakers": len(speakers),
            "n_male": sum(s.sex == "Male" for s in speakers),
            "n_female": sum(s.sex == "Female" for s in speakers),
            "per_emotion": per_emotion,
            "total_audio_s": round(total_audio_s, 3),
        },
        "audio_sha256": corpus_hash,
    }
    tmp = os.path.join(out_dir, "GENERATED.json.part")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, "GENERATED.json"))
    return GenerationReport(out_dir, len(plan), len(speakers),
                            time.perf_counter() - started, total_audio_s)
