"""Speakers of the generated corpus: sex, F0, vocal-tract length, voice quality, rate, channel, acting skill."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from tff_ser.corpus.synthesis.emotion import EMOTION_CUES
from tff_ser.corpus.synthesis.phonetics import _F45, _VOWELS
from tff_ser.corpus.synthesis.plan import _rng

#: CREMA-D's first actor id.
FIRST_ACTOR = 1001

#: CREMA-D has 48 male and 43 female actors; the generated corpus keeps the ratio.
MALE_FRACTION = 48 / 91



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
        Tuned with :mod:`tff_ser.experiments.calibrate` so that held-out-speaker
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
