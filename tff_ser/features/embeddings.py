"""The ``"embeddings"`` feature kind: a user's own per-clip vectors or sequences, read from a folder.

Paper 003's second stream reads wav2vec-large features (512-d frames, zero-
padded to the longest clip and average-pooled to 727 frames).  Pretrained
weights cannot be downloaded on the machines this package is built on, so
tff_ser does not compute them; a user who extracted wav2vec, WavLM, HuBERT
(or any other) embeddings elsewhere brings them as **one ``.npy`` file per
clip, named by the clip id** (the audio file's stem, e.g.
``1001_DFA_ANG_XX.npy``), each holding

* a vector ``(dim,)`` -- one embedding per clip; or
* a sequence ``(frames, dim)`` -- one per frame, any number of frames.

:func:`load_embeddings` stacks them into a
:class:`~tff_ser.features.pipeline.FeatureSet`, as ``extract(clips,
"embeddings", folder=...)`` does.  Sequences of different lengths need
``frames=N``: every sequence is zero-padded to the longest clip's length
and average-pooled into ``N`` near-equal runs of frames, as paper 003 does
(``frames=727`` for its wav2vec input).

Every problem is named with the file and what to do: a folder that does not
exist, a missing file (an error listing the first ones; ``missing="skip"``
leaves those clips out and lists them in ``FeatureSet.skipped``), a file
NumPy cannot read or that holds Python objects, a file of another rank or
width than the others, sequences of unequal length without ``frames``, and
non-finite values.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tff_ser.corpus.records import Clip
from tff_ser.features.spectrogram import average_pool_frames

#: ``missing=`` choices of :func:`load_embeddings`.
MISSING = ("error", "skip")


class EmbeddingError(ValueError):
    """A user's embedding folder or one of its files cannot be used (the message says why)."""


def embedding_path(folder, clip: Clip) -> str:
    """Where ``clip``'s embedding is expected: ``<folder>/<clip id>.npy``."""
    return os.path.join(os.fspath(folder), f"{clip.clip_id}.npy")


def _read(path: str) -> np.ndarray:
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head != b"\x93NUMPY":
        raise EmbeddingError(f"{path} is no NumPy .npy file (it starts with {head!r}; a Git "
                             "LFS pointer or another format?); save each clip's embedding with "
                             "numpy.save")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise EmbeddingError(f"{path} holds Python objects (a pickled array), not numbers: "
                             f"{exc}. Save each embedding with numpy.save(path, "
                             "array.astype('float32'))") from None
    except Exception as exc:  # noqa: BLE001 - NumPy raises several kinds for a bad file
        raise EmbeddingError(f"{path} is no NumPy .npy file NumPy can read "
                             f"({type(exc).__name__}: {exc}); save each clip's embedding "
                             "with numpy.save") from None
    if not isinstance(array, np.ndarray):
        raise EmbeddingError(f"{path} holds {type(array).__name__}, not one array (an .npz "
                             "archive?); save one array per clip with numpy.save")
    if array.dtype.kind not in "fiu":
        raise EmbeddingError(f"{path} holds {array.dtype} values; embeddings are numbers")
    if array.ndim not in (1, 2) or 0 in array.shape:
        raise EmbeddingError(f"{path} has shape {array.shape}; an embedding is a vector "
                             "(dim,) or a sequence (frames, dim) with at least one frame")
    if not np.all(np.isfinite(array)):
        raise EmbeddingError(f"{path} holds {int(np.sum(~np.isfinite(array)))} non-finite "
                             "values (NaN or inf); re-extract that clip")
    return array.astype(np.float32, copy=False)


def _check_shapes(arrays: List[np.ndarray], paths: List[str], frames: Optional[int]) -> None:
    ranks = {a.ndim for a in arrays}
    if len(ranks) > 1:
        first = {a.ndim: p for a, p in zip(arrays, paths)}
        raise EmbeddingError(f"the folder mixes vectors and sequences: e.g. {first[1]} is a "
                             f"vector and {first[2]} a sequence; give every clip the same kind")
    dims = [a.shape[-1] for a in arrays]
    values, counts = np.unique(dims, return_counts=True)
    if len(values) > 1:
        usual = int(values[np.argmax(counts)])
        odd = next(p for a, p in zip(arrays, paths) if a.shape[-1] != usual)
        raise EmbeddingError(f"embedding widths differ: {odd} has width "
                             f"{next(a.shape[-1] for a in arrays if a.shape[-1] != usual)}, "
                             f"most files {usual}; every clip needs the same extractor and layer")
    if arrays[0].ndim == 2 and frames is None:
        lengths = {a.shape[0] for a in arrays}
        if len(lengths) > 1:
            raise EmbeddingError(
                f"sequences have {len(lengths)} different lengths ({min(lengths)} to "
                f"{max(lengths)} frames); pass frames=N to zero-pad them to the longest and "
                "average-pool each into N runs (paper 003: frames=727)")


def load_embeddings(clips: Sequence[Clip], folder, *, frames: Optional[int] = None,
                    missing: str = "error"):
    """Stack a user's per-clip embeddings (``<folder>/<clip id>.npy``) into a FeatureSet.

    Parameters
    ----------
    clips : sequence of Clip
        The corpus's clips (a loader of :mod:`tff_ser.corpus`); row order follows them.
    folder : path-like
        One ``.npy`` per clip, named by :attr:`Clip.clip_id`.
    frames : int, optional
        Sequences only: zero-pad every sequence to the longest one's length, then
        average-pool it into ``frames`` runs of consecutive frames (paper 003's 727
        for wav2vec).  Without it, sequences must all have one length.
    missing : {"error", "skip"}
        A clip without a file raises (default), or is left out and listed in
        ``FeatureSet.skipped`` as ``"missing embedding: <path>"``.

    Returns
    -------
    FeatureSet
        ``kind="embeddings"``; ``x`` of shape ``(n, dim)`` or ``(n, frames, dim)``.

    Raises
    ------
    EmbeddingError
        Naming the file and what is wrong with it.

    Examples
    --------
    >>> fs = load_embeddings(load_cremad("CREMA-D"), "wav2vec_large/", frames=727)  # doctest: +SKIP
    >>> fs.x.shape                                                                 # doctest: +SKIP
    (7442, 727, 512)
    """
    from tff_ser.features.pipeline import FeatureSet
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, got {missing!r}")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, (int, np.integer))
                               or frames < 1):
        raise ValueError(f"frames must be a positive integer or None, got {frames!r}")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise EmbeddingError(f"embedding folder {folder} does not exist; point folder= at the "
                             "directory holding one <clip id>.npy per clip")
    clips = list(clips)
    if not clips:
        raise ValueError("no clips given; load a corpus first (tff_ser.corpus)")
    found: List[Tuple[Clip, str]] = []
    absent: List[Tuple[Clip, str]] = []
    for clip in clips:
        path = embedding_path(folder, clip)
        (found if os.path.isfile(path) else absent).append((clip, path))
    if absent and (missing == "error" or not found):
        shown = ", ".join(os.path.basename(p) for _, p in absent[:3])
        raise EmbeddingError(
            f"{len(absent)} of {len(clips)} clips have no embedding in {folder} (e.g. {shown}); "
            "each clip needs <clip id>.npy -- extract the missing ones, or pass "
            "missing='skip' to leave those clips out (they are listed in FeatureSet.skipped)")
    arrays = [_read(path) for _, path in found]
    paths = [path for _, path in found]
    _check_shapes(arrays, paths, frames)
    if arrays[0].ndim == 2 and frames is not None:
        longest = max(a.shape[0] for a in arrays)
        if frames > longest:
            raise EmbeddingError(f"frames={frames} is more than the longest sequence "
                                 f"({longest} frames); choose frames <= {longest}")
        arrays = [average_pool_frames(np.pad(a, ((0, longest - a.shape[0]), (0, 0))), frames)
                  for a in arrays]
    x = np.stack(arrays).astype(np.float32)
    return FeatureSet(x=x, clips=[c for c, _ in found],
                      skipped=[(c, f"missing embedding: {p}") for c, p in absent],
                      kind="embeddings",
                      params={"folder": os.path.abspath(folder), "frames": frames,
                              "missing": missing})
