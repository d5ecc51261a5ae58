"""Reading corpus audio robustly: one clear error per broken file.

Real corpus downloads go wrong in a handful of recurring ways: a zip of
CREMA-D's GitHub repository holds 130-byte Git LFS pointer files instead of
audio, the public release has an empty ``1076_MTI_SAD_XX.wav``, interrupted
copies leave truncated headers, and failed downloads save HTML pages under a
``.wav`` name. :func:`probe_audio` names each of these cheaply (file size, the
first bytes, the header) so a loader can list every problem before any
feature is computed; :func:`load_audio` decodes a clip to the mono float32
signal at the sample rate the features expect and turns every decoder failure
into an :class:`AudioError` that says which file, what is wrong and what to do.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from typing import Optional

import numpy as np
import soundfile

#: First line of every Git LFS pointer file (https://git-lfs.com/spec/v1).
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"

#: LFS pointers are ~130 bytes; anything this large is not one.
_LFS_POINTER_MAX_BYTES = 1024

#: A canonical PCM WAV header is 44 bytes; a RIFF file shorter than this
#: cannot hold a single sample.
_WAV_HEADER_BYTES = 44

#: Peak level below which a clip counts as silent (16-bit PCM's quantisation
#: floor is about -96 dBFS, so -80 dBFS is "nothing but dither").
SILENCE_PEAK_DBFS = -80.0

#: Problem kinds :func:`probe_audio` reports.
PROBLEM_KINDS = ("missing", "empty", "lfs-pointer", "truncated-header",
                 "not-audio", "no-samples", "unreadable", "path-encoding")


class AudioError(ValueError):
    """An audio file that cannot be used, with the file, the cause and the fix.

    Parameters
    ----------
    message : str
        Full human-readable message (names the file, what is wrong and what
        to do).
    path : str, optional
        The offending file.
    kind : str, optional
        One of :data:`PROBLEM_KINDS` (``"unreadable"`` when the decoder
        failed for another reason), so callers can group problems.
    """

    def __init__(self, message: str, path: Optional[str] = None,
                 kind: Optional[str] = None):
        super().__init__(message)
        self.path = path
        self.kind = kind

    def __reduce__(self):
        # Keeps path/kind when the error crosses a process boundary
        # (joblib / multiprocessing workers pickle exceptions).
        return (type(self), (str(self), self.path, self.kind))


@dataclasses.dataclass(frozen=True)
class AudioProblem:
    """Why one file cannot be used as a clip.

    Attributes
    ----------
    path : str
        The file.
    kind : str
        One of :data:`PROBLEM_KINDS`.
    message : str
        What is wrong and what to do, naming the file.
    """

    path: str
    kind: str
    message: str

    def to_error(self) -> AudioError:
        """The :class:`AudioError` a loader raises for this problem."""
        return AudioError(self.message, path=self.path, kind=self.kind)


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """Header facts of a readable audio file (no samples decoded).

    Attributes
    ----------
    path : str
    samplerate : int
        Native sample rate in Hz.
    channels : int
    frames : int
        Samples per channel.
    """

    path: str
    samplerate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / float(self.samplerate)


def _read_head(path: str, n: int = _LFS_POINTER_MAX_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def _lfs_problem(path: str, head: bytes, size: int) -> AudioProblem:
    real_size = None
    for line in head.decode("ascii", errors="replace").splitlines():
        if line.startswith("size "):
            real_size = line[len("size "):].strip()
    stands_for = f" standing in for a {real_size}-byte file" if real_size else ""
    return AudioProblem(
        path, "lfs-pointer",
        f"{path} is a Git LFS pointer ({size} bytes){stands_for}, not audio: "
        "the corpus was downloaded without its LFS objects (a GitHub zip "
        "download does this). Run `git lfs install && git lfs pull` inside "
        "the cloned corpus repository (or download the release that ships the "
        "audio) and point tff_ser at that directory.")


def _describe_head(head: bytes) -> str:
    """A short guess at what a non-audio file is, for the error message."""
    stripped = head.lstrip()
    lowered = stripped[:64].lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        return "it looks like an HTML/XML page (a failed or redirected download?)"
    if stripped.startswith((b"{", b"[")):
        return "it looks like JSON text"
    if stripped.startswith(b"PK\x03\x04"):
        return "it is a zip archive; extract it first"
    try:
        text = head[:200].decode("utf-8")
    except UnicodeDecodeError:
        return f"its first bytes are {head[:12]!r}, not a known audio header"
    if text.isprintable() or all(c.isprintable() or c.isspace() for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return f"it is a text file starting {first!r}"
    return f"its first bytes are {head[:12]!r}, not a known audio header"


def _classify(path: str) -> tuple[Optional[AudioProblem], Optional[AudioInfo]]:
    """Problem with ``path`` (or ``None``) and, when readable, its header."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return AudioProblem(
            path, "missing",
            f"{path} does not exist (or is not a regular file); check the "
            "corpus directory and that the clip list matches it."), None
    size = os.path.getsize(path)
    if size == 0:
        return AudioProblem(
            path, "empty",
            f"{path} is empty (0 bytes). The public CREMA-D release ships "
            "1076_MTI_SAD_XX.wav this way; elsewhere re-download or re-copy "
            "the file, or delete it to leave the clip out."), None
    head = _read_head(path)
    if size <= _LFS_POINTER_MAX_BYTES and head.startswith(LFS_POINTER_PREFIX):
        return _lfs_problem(path, head, size), None
    encoding = sys.getfilesystemencoding()
    try:
        path.encode(encoding)
    except UnicodeEncodeError:
        # the audio decoder takes the path as text; bytes the file system's
        # encoding cannot spell fail there, whatever the file holds
        shown = path.encode(encoding, "surrogateescape").decode(encoding, "replace")
        return AudioProblem(
            path, "path-encoding",
            f"{shown}: the path holds bytes that are not valid {encoding} (shown as \ufffd), "
            "so the audio decoder cannot open it; the file itself may be fine. Rename the "
            "file or the folder holding it to a valid name (e.g. `convmv -f latin1 -t utf8`)."
        ), None
    try:
        info = soundfile.info(path)
    except Exception as exc:  # libsndfile raises several types; all mean "unreadable"
        if head.startswith((b"RIFF", b"RIFX", b"RF64")):
            return AudioProblem(
                path, "truncated-header",
                f"{path} starts like a WAV file but its header is truncated "
                f"or corrupt ({size} bytes; the decoder said: {exc}). "
                "Re-download or re-extract this file, or delete it to leave "
                "the clip out."), None
        if head.startswith((b"fLaC", b"OggS", b"FORM")):
            return AudioProblem(
                path, "unreadable",
                f"{path} has an audio header the decoder cannot read "
                f"({exc}); re-download or convert it to 16-bit PCM WAV."), None
        return AudioProblem(
            path, "not-audio",
            f"{path} is not audio: {_describe_head(head)} ({size} bytes). "
            "Replace it with the real recording or delete it."), None
    if info.frames <= 0 or info.samplerate <= 0:
        return AudioProblem(
            path, "no-samples",
            f"{path} has a valid header but holds no samples "
            f"(frames={info.frames}, sample rate={info.samplerate}); the file "
            "was probably cut off while copying. Re-download it or delete it."
        ), None
    return None, AudioInfo(path, int(info.samplerate), int(info.channels),
                           int(info.frames))


#: Clips shorter than this are suspicious (CREMA-D's sentences last 1-5 s).
MIN_CLIP_SECONDS = 0.2


def _wav_data_chunk(path: str):
    """``(riff_size, data_offset, data_size)`` from a RIFF/WAVE header, or None."""
    import struct
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        riff_size = struct.unpack("<I", head[4:8])[0]
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                return riff_size, f.tell(), size
            f.seek(size + (size & 1), os.SEEK_CUR)


def suspicious_audio(path, info: Optional[AudioInfo] = None) -> Optional[str]:
    """Why a readable clip looks damaged or useless, or None.

    The decoder reads these without complaint, so a loader keeps them and
    records them (``CorpusLoad.suspicious``):

    * a WAV whose ``data`` chunk promises more bytes than the file holds
      (a copy cut off mid-file: a clip cut to half its bytes decodes as a
      valid, shorter clip);
    * a RIFF size field that disagrees with the file size;
    * a clip shorter than :data:`MIN_CLIP_SECONDS`.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    try:
        chunk = _wav_data_chunk(path)
    except OSError:
        chunk = None
    if chunk is not None:
        riff_size, offset, data_size = chunk
        present = size - offset
        if data_size > present and data_size != 0xFFFFFFFF:
            return (f"{path} is cut short: its WAV header promises {data_size} bytes of "
                    f"samples but the file holds {present} ({100 * present / data_size:.0f} %); "
                    "the copy was probably interrupted. Re-copy it, or delete it to leave "
                    "the clip out")
        if riff_size + 8 not in (size, size - 1) and riff_size != 0xFFFFFFFF:
            return (f"{path}: its RIFF header says {riff_size + 8} bytes but the file has "
                    f"{size}; it may be cut or have bytes appended. Re-copy it")
    if info is None:
        info = audio_info(path)
    if info.duration < MIN_CLIP_SECONDS:
        return (f"{path} lasts only {info.duration:.2f} s (under {MIN_CLIP_SECONDS} s); "
                "check that it is a whole utterance")
    return None


def probe_audio(path) -> Optional[AudioProblem]:
    """Check a file cheaply without decoding its samples.

    Looks at the size, the first kilobyte (Git LFS pointer, HTML page, text)
    and the header as parsed by libsndfile.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    AudioProblem or None
        ``None`` when the file looks like usable audio.

    Examples
    --------
    >>> problem = probe_audio("AudioWAV/1076_MTI_SAD_XX.wav")  # doctest: +SKIP
    >>> problem.kind                                           # doctest: +SKIP
    'empty'
    """
    problem, _ = _classify(path)
    return problem


def audio_info(path) -> AudioInfo:
    """Sample rate, channels and length of ``path`` from its header.

    Raises
    ------
    AudioError
        When :func:`probe_audio` finds a problem (the message says which).
    """
    problem, info = _classify(path)
    if problem is not None:
        raise problem.to_error()
    return info


def to_mono(signal: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` signal.

    One-dimensional input is returned unchanged.
    """
    signal = np.asarray(signal)
    if signal.ndim == 1:
        return signal
    if signal.ndim != 2:
        raise ValueError(
            f"expected a (frames,) or (frames, channels) signal, got shape "
            f"{signal.shape}")
    return signal.mean(axis=1)


def resample(signal: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    """Resample a mono signal from ``orig_sr`` to ``sr`` Hz (soxr, HQ).

    soxr "HQ" is also librosa's default resampler, so features match what
    ``librosa.load(path, sr=sr)`` would produce.
    """
    if orig_sr == sr:
        return signal
    import soxr  # imported here: only needed for off-rate files
    return soxr.resample(signal, orig_sr, sr, quality="HQ").astype(
        np.float32, copy=False)


def load_audio(path, sr: Optional[int] = 16000) -> np.ndarray:
    """Decode a clip to a mono float32 signal at ``sr`` Hz.

    Stereo files are averaged to mono and other sample rates (e.g. 44.1 kHz)
    resampled; neither is an error. Silent clips load normally; use
    :func:`is_silent` to report them.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file (any format libsndfile reads; corpora ship 16-bit WAV).
    sr : int or None, default 16000
        Target sample rate in Hz (16 kHz is CREMA-D's and IEMOCAP's native
        rate); ``None`` keeps the file's own rate.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_samples,)``, dtype float32, values in [-1, 1] for PCM.

    Raises
    ------
    AudioError
        For a Git LFS pointer, an empty file, a truncated header, non-audio
        data, a header without samples, a decoding failure or non-finite
        samples; the message names the file and the fix.
    FileNotFoundError
        When ``path`` does not exist.

    Examples
    --------
    >>> y = load_audio("AudioWAV/1001_DFA_ANG_XX.wav")  # doctest: +SKIP
    >>> y.dtype, y.ndim                                  # doctest: +SKIP
    (dtype('float32'), 1)
    """
    if sr is not None and (isinstance(sr, bool) or not isinstance(sr, (int, np.integer))
                           or sr <= 0):
        raise ValueError(f"sr must be a positive integer sample rate in Hz or None, "
                         f"got {sr!r}")
    path = os.fspath(path)
    problem, info = _classify(path)
    if problem is not None:
        if problem.kind == "missing":
            raise FileNotFoundError(problem.message)
        raise problem.to_error()
    try:
        data, native_sr = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(
            f"{path} could not be decoded ({exc}); the header reads as "
            f"{info.channels} channel(s) at {info.samplerate} Hz but the "
            "sample data is damaged. Re-download the file or delete it.",
            path=path, kind="unreadable") from exc
    if data.shape[0] == 0:
        raise AudioProblem(
            path, "no-samples",
            f"{path} decoded to 0 samples although its header announces "
            f"{info.frames}; the file was cut off. Re-download it or delete it."
        ).to_error()
    signal = to_mono(data)
    if not np.all(np.isfinite(signal)):
        raise AudioError(
            f"{path} contains NaN or infinite samples (a damaged float WAV); "
            "re-export it as 16-bit PCM or delete it.",
            path=path, kind="unreadable")
    if sr is not None:
        try:
            signal = resample(signal, int(native_sr), int(sr))
        except Exception as exc:
            raise AudioError(
                f"{path} could not be resampled from {native_sr} Hz to {sr} Hz "
                f"({exc}); convert it to {sr} Hz mono WAV first.",
                path=path, kind="unreadable") from exc
    return np.ascontiguousarray(signal, dtype=np.float32)


def peak_dbfs(signal: np.ndarray) -> float:
    """Peak level of ``signal`` in dB relative to full scale (1.0).

    ``-inf`` for an all-zero or empty signal.
    """
    signal = np.asarray(signal)
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def is_silent(signal: np.ndarray, threshold_dbfs: float = SILENCE_PEAK_DBFS) -> bool:
    """Whether a clip's peak stays below ``threshold_dbfs``.

    Silent clips decode fine but carry no emotion; loaders keep them and
    ``tff-ser data check`` lists them so the user decides.

    Parameters
    ----------
    signal : numpy.ndarray
    threshold_dbfs : float, default -80.0

    Examples
    --------
    >>> is_silent(np.zeros(16000, dtype=np.float32))
    True
    >>> is_silent(np.full(10, 0.5))
    False
    """
    return peak_dbfs(signal) < threshold_dbfs
