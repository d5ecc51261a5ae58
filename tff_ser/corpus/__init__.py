"""Corpora: clip records, real-corpus loaders and the embedded generated corpus.

:func:`resolve_corpus` is how notebooks and the CLI find their data: a real
CREMA-D copy at ``data/CREMA-D`` (or a path given) when there is one,
otherwise the generated stand-in at ``data/generated`` (made on first use).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

from tff_ser.corpus.records import (CREMAD_LEVELS, CREMAD_SENTENCES, EMOTION_NAMES,
                                    EMOTIONS_4, EMOTIONS_6, Clip, label_index)

#: Where tff_ser looks for data when no directory is given (``TFF_SER_DATA``
#: overrides it).
def data_root() -> str:
    return os.path.abspath(os.environ.get("TFF_SER_DATA", "data"))


def default_generated_dir(size: str = "full") -> str:
    return os.path.join(data_root(), "generated" if size == "full" else f"generated-{size}")


def load_corpus(root: str, *, emotions: Union[str, Sequence[str]] = EMOTIONS_4, **kwargs):
    """Load a corpus directory, CREMA-D or IEMOCAP layout (detected).

    Returns the loader's ``CorpusLoad`` (clips, skipped files with reasons).
    """
    from tff_ser.corpus.check import detect_layout
    layout = detect_layout(root)
    if layout == "iemocap":
        from tff_ser.corpus.iemocap import load_iemocap
        return load_iemocap(root, emotions=emotions, **kwargs)
    from tff_ser.corpus.cremad import load_cremad
    return load_cremad(root, emotions=emotions, **kwargs)


def resolve_corpus(data_dir: Optional[str] = None, *, size: str = "full", seed: int = 0,
                   emotions: Union[str, Sequence[str]] = EMOTIONS_4, progress: bool = True):
    """The corpus an experiment runs on, and say which one it is.

    ``data_dir`` given: load it (CREMA-D or IEMOCAP layout).  Otherwise use real
    CREMA-D at ``data/CREMA-D`` when present, else the generated corpus
    (``size`` "full" or "small"), generating it first if needed.
    """
    if data_dir is None:
        real = os.path.join(data_root(), "CREMA-D")
        if os.path.isdir(os.path.join(real, "AudioWAV")):
            data_dir = real
        else:
            from tff_ser.corpus.generate import generate_corpus
            data_dir = default_generated_dir(size)
            generate_corpus(data_dir, size=size, seed=seed, overwrite=False, progress=progress)
    return load_corpus(data_dir, emotions=emotions)
