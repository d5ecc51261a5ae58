"""CREMA-D loader: ``ROOT/AudioWAV/ActorID_Sentence_Emotion_Level.wav``.

CREMA-D (Cao et al., 2014) has 7,442 clips from 91 actors, 12 sentences and
6 emotions; the file name carries every label, e.g. ``1001_DFA_ANG_XX.wav`` is
actor 1001 saying "Don't forget a jacket" angrily at an unspecified level.
Actor sex comes from ``VideoDemographics.csv`` next to ``AudioWAV``.

Nothing is dropped silently: a file whose name does not parse, whose emotion
code is unknown or whose audio is broken is listed in
:attr:`CorpusLoad.skipped` with the reason; only clips of emotions outside
the requested set are left out quietly (and counted as "filtered").

This module also holds the pieces every loader shares: :class:`CorpusLoad`,
:class:`NoClipsError` and :func:`resolve_emotions`.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import os
import re
import statistics
from typing import Iterable, NamedTuple, Optional, Sequence, Union

from tff_ser.corpus.audio import AudioError, probe_audio, suspicious_audio
from tff_ser.corpus.records import (CREMAD_LEVELS, CREMAD_SENTENCES, EMOTIONS_4,
                                    EMOTIONS_6, Clip)

#: Name of the marker the embedded generator writes at the corpus root; its
#: presence makes every clip ``corpus="generated"``.
GENERATED_MARKER = "GENERATED.json"
DEMOGRAPHICS_FILE = "VideoDemographics.csv"
AUDIO_DIR = "AudioWAV"

CREMAD_LAYOUT = ("ROOT/AudioWAV/<ActorID>_<Sentence>_<Emotion>_<Level>.wav, "
                 "e.g. ROOT/AudioWAV/1001_DFA_ANG_XX.wav (ROOT may also be the "
                 "AudioWAV directory itself)")

_CREMAD_NAME = re.compile(r"^([^_]+)_([^_]+)_([^_]+)_([^_]+)$")
_SEX_CODES = {"male": "M", "m": "M", "female": "F", "f": "F"}

#: How many skipped files :meth:`CorpusLoad.summary` lists one by one.
SUMMARY_MAX_LISTED = 20


class Skipped(NamedTuple):
    """A file a loader left out, and why (unpacks as ``path, reason``)."""

    path: str
    reason: str


class NoClipsError(FileNotFoundError):
    """A corpus directory that yields no usable clip.

    The message names the directory, the layout the loader expected and, when
    files were found but all skipped, the first few reasons.
    """


@dataclasses.dataclass
class CorpusLoad:
    """What a loader found in a corpus directory.

    Attributes
    ----------
    clips : list of Clip
        Usable clips of the requested emotions, sorted by clip id.
    skipped : list of Skipped
        ``(path, reason)`` for every file left out because of a problem
        (unparseable name, unknown emotion code, broken audio, missing label).
    root : str
        The directory the clips were read from.
    corpus : str
        ``"crema-d"``, ``"iemocap"`` or ``"generated"``.
    emotions : tuple of str
        The emotion set requested.
    filtered : int
        Well-formed clips left out only because their emotion is not in
        ``emotions`` (not a problem).
    suspicious : list of Skipped
        ``(path, reason)`` of clips that are kept but look damaged (a WAV
        cut short, a header that disagrees with the file size, a clip under
        0.2 s): :func:`tff_ser.corpus.audio.suspicious_audio`.
    """

    clips: list
    skipped: list
    root: str
    corpus: str
    emotions: tuple = EMOTIONS_4
    filtered: int = 0
    suspicious: list = dataclasses.field(default_factory=list)

    @property
    def speakers(self) -> list:
        """Sorted speaker ids."""
        return sorted({c.speaker for c in self.clips})

    def summary(self) -> str:
        """A few lines saying what was loaded, filtered and skipped."""
        counts = collections.Counter(c.emotion for c in self.clips)
        per_speaker = collections.Counter(c.speaker for c in self.clips)
        lines = [f"{self.corpus}: {len(self.clips)} clips from "
                 f"{len(per_speaker)} speakers in {self.root}"]
        if per_speaker:
            n = sorted(per_speaker.values())
            lines.append(f"  clips per speaker: min {n[0]}, median "
                         f"{statistics.median(n):g}, max {n[-1]}")
        lines.append("  per emotion: " + ", ".join(
            f"{e} {counts.get(e, 0)}" for e in self.emotions))
        if self.filtered:
            lines.append(f"  filtered (emotion not in {','.join(self.emotions)}): "
                         f"{self.filtered}")
        for items, title in ((self.skipped, "skipped {} file(s) with problems:"),
                             (self.suspicious, "kept {} suspicious clip(s):")):
            if items:
                lines.append("  " + title.format(len(items)))
                lines += [f"    - {item.reason}" for item in items[:SUMMARY_MAX_LISTED]]
            if len(items) > SUMMARY_MAX_LISTED:
                lines.append(f"    ... and {len(items) - SUMMARY_MAX_LISTED} more (all listed "
                             "in result.json under extra.corpus_problems)")
        if not self.skipped and not self.suspicious:
            lines.append("  no problems found")
        return "\n".join(lines)


def resolve_emotions(emotions: Union[str, Sequence[str]]) -> tuple:
    """The emotion tuple a loader keeps.

    Parameters
    ----------
    emotions : "all", "4", "6" or sequence of str
        ``"all"``/``"6"`` is :data:`EMOTIONS_6`, ``"4"`` is :data:`EMOTIONS_4`;
        a sequence must hold codes from :data:`EMOTIONS_6`.

    Examples
    --------
    >>> resolve_emotions("all")
    ('NEU', 'HAP', 'SAD', 'ANG', 'FEA', 'DIS')
    """
    if isinstance(emotions, str):
        key = emotions.strip().lower()
        if key in ("all", "6"):
            return EMOTIONS_6
        if key == "4":
            return EMOTIONS_4
        raise ValueError(
            f"emotions={emotions!r} is not understood; pass 'all' (the 6 "
            f"CREMA-D emotions), '4' ({','.join(EMOTIONS_4)}) or a list of "
            f"codes from {EMOTIONS_6}")
    chosen = tuple(emotions)
    unknown = [e for e in chosen if e not in EMOTIONS_6]
    if unknown or not chosen:
        raise ValueError(
            f"emotions={chosen!r}: {unknown or 'empty'} not usable; choose "
            f"codes from {EMOTIONS_6}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"emotions={chosen!r} repeats a code; each class once")
    return chosen


def find_marker(directories: Iterable[str], name: str = GENERATED_MARKER) -> Optional[str]:
    """First ``directories/name`` that exists, or ``None``."""
    for d in directories:
        candidate = os.path.join(d, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def cremad_audio_dir(root) -> tuple[str, str]:
    """``(corpus_root, audio_dir)`` for a CREMA-D root or its AudioWAV dir.

    Raises
    ------
    NoClipsError
        When ``root`` is not a directory.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise NoClipsError(
            f"CREMA-D directory {root} does not exist or is not a directory; "
            f"expected {CREMAD_LAYOUT}")
    nested = os.path.join(root, AUDIO_DIR)
    if os.path.isdir(nested):
        return root, nested
    if os.path.basename(root) == AUDIO_DIR:
        return os.path.dirname(root), root
    # A flat directory of clips not named AudioWAV is its own corpus root:
    # looking in its parent could pick up another corpus's metadata.
    return root, root


def parse_cremad_name(filename: str) -> tuple[Optional[dict], Optional[str]]:
    """Labels from a CREMA-D file name, or the reason it does not parse.

    Returns
    -------
    (fields, None) or (None, reason)
        ``fields`` has keys ``speaker, sentence, emotion, intensity``; the
        emotion code is returned even if unknown so the caller can tell a
        malformed name from an unknown emotion (``reason`` then says which).

    Examples
    --------
    >>> parse_cremad_name("1001_DFA_ANG_XX.wav")[0]["emotion"]
    'ANG'
    """
    base = os.path.basename(filename)
    stem = os.path.splitext(base)[0]
    if base.startswith("._"):
        return None, (f"{base} is a macOS resource-fork file (made when the "
                      "corpus was zipped on a Mac), not a clip; delete the ._* files")
    match = _CREMAD_NAME.match(stem)
    if match is None:
        return None, (f"file name {base!r} does not match "
                      "ActorID_Sentence_Emotion_Level.wav (e.g. 1001_DFA_ANG_XX.wav); "
                      "rename or remove it")
    actor, sentence, emotion, level = match.groups()
    if not actor.isdigit():
        return None, f"{base}: actor id {actor!r} is not numeric (CREMA-D actors are 1001-1091)"
    if sentence not in CREMAD_SENTENCES:
        return None, (f"{base}: sentence code {sentence!r} is not one of CREMA-D's "
                      f"12 ({', '.join(CREMAD_SENTENCES)})")
    if level not in CREMAD_LEVELS:
        return None, (f"{base}: level code {level!r} is not one of "
                      f"{', '.join(CREMAD_LEVELS)}")
    fields = dict(speaker=actor, sentence=sentence, emotion=emotion, intensity=level)
    if emotion not in EMOTIONS_6:
        return None, (f"{base}: emotion code {emotion!r} is unknown (CREMA-D uses "
                      f"{', '.join(EMOTIONS_6)})")
    return fields, None


def read_demographics(path: str) -> dict:
    """``{actor_id: "M"|"F"}`` from CREMA-D's ``VideoDemographics.csv``.

    Actors whose Sex is neither Male nor Female are left out (sex unknown).

    Raises
    ------
    ValueError
        When the file lacks the ``ActorID`` or ``Sex`` column.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [h.strip() for h in (reader.fieldnames or [])]
        if "ActorID" not in fields or "Sex" not in fields:
            raise ValueError(
                f"{path} has columns {fields}, expected at least ActorID and Sex "
                "(CREMA-D's VideoDemographics.csv: ActorID,Age,Sex,Race,Ethnicity); "
                "fix or remove the file")
        sex = {}
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            code = _SEX_CODES.get(row["Sex"].lower())
            if row["ActorID"] and code:
                sex[row["ActorID"]] = code
    return sex


def probe_clips(candidates: list, corpus_dir: str, pointer_advice: str,
                suspicious: Optional[list] = None) -> tuple[list, list]:
    """Split ``(path, clip)`` pairs into usable clips and skipped files.

    Usable clips that look damaged are appended to ``suspicious`` as
    ``Skipped(path, reason)`` (kept, and recorded).

    Raises
    ------
    AudioError
        When every candidate is a Git LFS pointer: then nothing at all was
        downloaded and a list of thousands of skipped files would hide that.
    """
    clips, skipped, pointers = [], [], 0
    for path, clip in candidates:
        problem = probe_audio(path)
        if problem is None:
            clips.append(clip)
            if suspicious is not None:
                reason = suspicious_audio(path)
                if reason:
                    suspicious.append(Skipped(path, reason))
            continue
        pointers += problem.kind == "lfs-pointer"
        skipped.append(Skipped(path, problem.message))
    if candidates and pointers == len(candidates):
        raise AudioError(
            f"all {pointers} .wav files in {corpus_dir} are Git LFS pointer files "
            "(~130-byte text stubs), not audio: the corpus was downloaded "
            f"without its LFS objects. {pointer_advice}",
            path=corpus_dir, kind="lfs-pointer")
    return clips, skipped


def raise_if_empty(clips: list, skipped: list, filtered: int, emotions: tuple,
                   where: str, layout: str) -> None:
    """Raise :class:`NoClipsError` when a load kept nothing, saying why."""
    if clips:
        return
    if skipped:
        reasons = "; ".join(s.reason for s in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        raise NoClipsError(
            f"no usable clips in {where}: all {len(skipped)} candidate files "
            f"were skipped: {reasons}{more}")
    if filtered:
        raise NoClipsError(
            f"no clips of emotions {','.join(emotions)} in {where} "
            f"({filtered} clips of other emotions); choose other emotions")
    raise NoClipsError(f"no clips found in {where}; expected {layout}")


#: CREMA-D's 91 actors (1001-1091) and its 7,442 clips: a folder in CREMA-D layout is
#: labelled "crema-d" only when it holds all 91 actors and at least this many clips.
CREMAD_ACTORS = tuple(str(a) for a in range(1001, 1092))
CREMAD_MIN_FILES = 7400

#: The label of a folder in CREMA-D layout that is not known to be CREMA-D.
LAYOUT_ONLY = "crema-d-layout"


def load_cremad(root, emotions: Union[str, Sequence[str]] = EMOTIONS_4,
                corpus: Optional[str] = None, probe: bool = True) -> CorpusLoad:
    """Load CREMA-D clip records from a directory.

    Parameters
    ----------
    root : str or os.PathLike
        Corpus root holding ``AudioWAV/`` (and optionally
        ``VideoDemographics.csv``), or the ``AudioWAV`` directory itself.
    emotions : sequence of str or "all", default EMOTIONS_4
        Emotions to keep; the 4-class NEU/HAP/SAD/ANG set of the papers, or
        ``"all"`` for the 6 CREMA-D emotions.
    corpus : str, optional
        Name recorded on each clip and in every result (``tff-ser
        --corpus-name``).  Default: ``"crema-d"`` when the folder holds
        CREMA-D's 91 actors (1001-1091) and at least 7,400 clips, else
        ``"crema-d-layout"`` (the layout, not known to be CREMA-D).  Always
        ``"generated"`` when a ``GENERATED.json`` marker sits at the root, so
        numbers from the embedded corpus can never be reported as CREMA-D.
    probe : bool, default True
        Check every kept file's audio (size, LFS pointer, header) and skip
        broken ones; ``False`` trusts the directory (faster on slow disks).

    Returns
    -------
    CorpusLoad

    Raises
    ------
    AudioError
        When every .wav file is a Git LFS pointer (run ``git lfs pull``).
    NoClipsError
        When the directory is missing or yields no usable clip.

    Examples
    --------
    >>> load = load_cremad("data/CREMA-D")   # doctest: +SKIP
    >>> print(load.summary())                # doctest: +SKIP
    """
    emotions = resolve_emotions(emotions)
    corpus_root, audio_dir = cremad_audio_dir(root)
    if find_marker([corpus_root, audio_dir]):
        corpus = "generated"
    demographics = find_marker([corpus_root, audio_dir], DEMOGRAPHICS_FILE)
    sex = read_demographics(demographics) if demographics else {}

    candidates, skipped, filtered = [], [], 0
    for name in sorted(os.listdir(audio_dir)):
        path = os.path.join(audio_dir, name)
        if not name.lower().endswith(".wav") or not os.path.isfile(path):
            continue
        fields, reason = parse_cremad_name(name)
        if fields is None:
            skipped.append(Skipped(path, reason))
            continue
        if fields["emotion"] not in emotions:
            filtered += 1
            continue
        candidates.append((path, fields))
    if corpus is None:
        every = [f for f in (parse_cremad_name(n)[0] for n in os.listdir(audio_dir)
                             if n.lower().endswith(".wav")) if f]
        actors = {f["speaker"] for f in every}
        corpus = "crema-d" if (set(CREMAD_ACTORS) <= actors
                               and len(every) >= CREMAD_MIN_FILES) else LAYOUT_ONLY
    candidates = [(path, Clip(path=path, corpus=corpus, sex=sex.get(fields["speaker"]),
                              **fields)) for path, fields in candidates]

    pointer_advice = ("Clone the CREMA-D repository with git-lfs installed and run "
                      "`git lfs pull` inside it (a GitHub zip download only has "
                      "pointers), then point tff_ser at its AudioWAV directory.")
    suspicious: list = []
    if probe:
        clips, audio_skipped = probe_clips(candidates, audio_dir, pointer_advice, suspicious)
        skipped.extend(audio_skipped)
    else:
        clips = [clip for _, clip in candidates]
    raise_if_empty(clips, skipped, filtered, emotions, audio_dir, CREMAD_LAYOUT)
    clips.sort(key=lambda c: c.clip_id)
    skipped.sort(key=lambda s: s.path)
    return CorpusLoad(clips=clips, skipped=skipped, root=audio_dir, corpus=corpus,
                      emotions=emotions, filtered=filtered,
                      suspicious=sorted(suspicious, key=lambda s: s.path))
