"""The corpus plan (which clips exist, in CREMA-D's layout) and each clip's random stream."""
from __future__ import annotations

import dataclasses
import zlib
from typing import Sequence

import numpy as np



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


#: The sentence recorded at three intensity levels in CREMA-D.
LEVELLED_SENTENCE = "IEO"


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
