"""The clip record every stage of tff_ser passes along.

A corpus loader turns a directory into a list of :class:`Clip`; feature
extraction, partitioners and training only ever see these records (and the
feature arrays computed from them), never raw directory layouts.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

#: CREMA-D emotion codes in the order used for integer labels everywhere.
#: The 4-class subset of papers 000/001/004 is the first four.
EMOTIONS_4 = ("NEU", "HAP", "SAD", "ANG")
EMOTIONS_6 = ("NEU", "HAP", "SAD", "ANG", "FEA", "DIS")

EMOTION_NAMES = {
    "NEU": "neutral",
    "HAP": "happy",
    "SAD": "sad",
    "ANG": "angry",
    "FEA": "fear",
    "DIS": "disgust",
}

#: CREMA-D's 12 sentences and 4 intensity levels (IEO is recorded at LO/MD/HI,
#: the other 11 at XX, "unspecified").
CREMAD_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH",
                    "DFA", "ITS", "TSI", "WSI")
CREMAD_LEVELS = ("LO", "MD", "HI", "XX")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One labelled utterance.

    Parameters
    ----------
    path : str
        Absolute path of the audio file.
    speaker : str
        Speaker id, unique within the corpus (CREMA-D actor id such as
        ``"1001"``; IEMOCAP ``"Ses01F"``).
    emotion : str
        Emotion code, one of :data:`EMOTIONS_6` (IEMOCAP labels are mapped
        onto the same codes).
    sentence : str
        Sentence / utterance-script id (CREMA-D sentence code, IEMOCAP
        dialog id).
    intensity : str
        CREMA-D level (LO/MD/HI/XX); ``"XX"`` when the corpus has none.
    corpus : str
        ``"crema-d"``, ``"iemocap"`` or ``"generated"`` (the embedded corpus
        in CREMA-D layout: never to be reported as CREMA-D).
    sex : str or None
        ``"M"``/``"F"`` when known.
    """

    path: str
    speaker: str
    emotion: str
    sentence: str
    intensity: str = "XX"
    corpus: str = "crema-d"
    sex: Optional[str] = None

    @property
    def clip_id(self) -> str:
        """File stem, unique within a corpus (e.g. ``1001_DFA_ANG_XX``)."""
        import os
        return os.path.splitext(os.path.basename(self.path))[0]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def label_index(emotion: str, emotions=EMOTIONS_4) -> int:
    """Integer class of ``emotion`` within ``emotions``.

    Raises ``ValueError`` naming the known classes when the code is not one of
    them, rather than silently mapping it somewhere.
    """
    try:
        return tuple(emotions).index(emotion)
    except ValueError:
        raise ValueError(
            f"emotion {emotion!r} is not one of the classes {tuple(emotions)}; "
            "load the corpus with the same emotion set you train on") from None
