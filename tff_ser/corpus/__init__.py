"""Corpora: clip records, real-corpus loaders and the embedded generated corpus.

:func:`resolve_corpus` is how notebooks and the CLI find their data: a real
CREMA-D copy at ``data/CREMA-D`` (or a path given) when there is one,
otherwise the generated stand-in at ``data/generated`` (made on first use).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

# the records' names, re-exported for ``from tff_ser.corpus import ...``
from tff_ser.corpus.records import CREMAD_LEVELS as CREMAD_LEVELS
from tff_ser.corpus.records import CREMAD_SENTENCES as CREMAD_SENTENCES
from tff_ser.corpus.records import EMOTION_NAMES as EMOTION_NAMES
from tff_ser.corpus.records import EMOTIONS_4 as EMOTIONS_4
from tff_ser.corpus.records import EMOTIONS_6 as EMOTIONS_6
from tff_ser.corpus.records import Clip as Clip
from tff_ser.corpus.records import label_index as label_index

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


def resolve_corpus(data_dir: Optional[str] = None, *, size: str = "full", corpus_seed: int = 0,
                   emotions: Union[str, Sequence[str]] = EMOTIONS_4, progress: bool = True,
                   corpus_name: Optional[str] = None):
    """The corpus an experiment runs on, and say which one it is.

    ``data_dir`` given: load it (CREMA-D or IEMOCAP layout).  Otherwise use real
    CREMA-D at ``data/CREMA-D`` when present, else the generated corpus
    (``size`` "full" or "small", generated with ``corpus_seed``), generating it
    on first use when it is absent.

    ``corpus_seed`` is the seed of the *corpus*, not of training: a training
    seed never reaches here.  A generated corpus on disk made with other
    parameters (another ``corpus_seed``) is never rewritten as a side effect:
    that is a ``ValueError`` saying how to regenerate it.

    ``corpus_name`` labels the clips and results of a real corpus (default: the
    loader's rule, e.g. ``"crema-d-layout"`` for a CREMA-D-layout folder that is
    not known to be CREMA-D); a generated corpus is always ``"generated"``.
    """
    if data_dir is None:
        real = os.path.join(data_root(), "CREMA-D")
        if os.path.isdir(os.path.join(real, "AudioWAV")):
            data_dir = real
        else:
            from tff_ser.corpus.generate import (generate_corpus, generation_parameters,
                                                 read_generated_json)
            data_dir = default_generated_dir(size)
            existing = read_generated_json(data_dir)
            wanted = generation_parameters(seed=corpus_seed, size=size)
            if existing is not None and existing.get("parameters") != wanted:
                have = existing.get("parameters", {})
                raise ValueError(
                    f"{data_dir} holds a corpus generated with seed {have.get('seed')!r} "
                    f"({have.get('n_speakers')} speakers), not the one asked for (corpus_seed="
                    f"{corpus_seed}, size={size!r}). It is not rewritten behind your back: "
                    f"regenerate it with `tff-ser data generate --size {size} --seed "
                    f"{corpus_seed} --overwrite`, or ask for corpus_seed={have.get('seed')!r}.")
            generate_corpus(data_dir, size=size, seed=corpus_seed, overwrite=False,
                            progress=progress)
    if corpus_name:
        return load_corpus(data_dir, emotions=emotions, corpus=corpus_name)
    return load_corpus(data_dir, emotions=emotions)
