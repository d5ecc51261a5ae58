"""Phonetics: CREMA-D's sentences as ARPAbet phones, phone targets, and the timed segments of a sentence."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np



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
