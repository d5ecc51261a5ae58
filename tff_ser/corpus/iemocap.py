"""IEMOCAP loader: utterance wavs labelled from the EmoEvaluation files.

IEMOCAP (Busso et al., 2008) has 5 sessions, each a dyad of one female and
one male actor. Audio lies in
``IEMOCAP_full_release/SessionN/sentences/wav/<dialog>/<utterance>.wav`` and
the consensus label of each utterance in
``SessionN/dialog/EmoEvaluation/<dialog>.txt``, on lines like::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]

Both actors of a session appear in every dialog of it, so the speaker is the
session plus the gender letter that starts the last part of the utterance id
(``Ses01F_impro01_M000`` is spoken by the male actor: ``"Ses01M"``), not the
dialog prefix, which only names who wore the motion-capture markers.
"""
from __future__ import annotations

import os
import re
from typing import Sequence, Union

from tff_ser.corpus.cremad import (CorpusLoad, NoClipsError, Skipped, probe_clips,
                                   raise_if_empty, resolve_emotions)
from tff_ser.corpus.records import EMOTIONS_4, Clip

RELEASE_DIR = "IEMOCAP_full_release"

IEMOCAP_LAYOUT = ("IEMOCAP_full_release/SessionN/sentences/wav/<dialog>/<utterance>.wav "
                  "with labels in IEMOCAP_full_release/SessionN/dialog/EmoEvaluation/"
                  "<dialog>.txt (ROOT may be IEMOCAP_full_release or its parent)")

#: Every consensus label an EmoEvaluation file uses ("xxx": no agreement).
IEMOCAP_LABELS = ("neu", "hap", "sad", "ang", "exc", "fru", "sur", "fea", "dis",
                  "oth", "xxx")

#: IEMOCAP label -> shared emotion code; "exc" joins HAP only with
#: ``merge_excited`` (see :func:`load_iemocap`).
IEMOCAP_TO_EMOTION = {"neu": "NEU", "hap": "HAP", "sad": "SAD", "ang": "ANG",
                      "fea": "FEA", "dis": "DIS"}

_SESSION_DIR = re.compile(r"^Session(\d+)$")
_LABEL_LINE = re.compile(
    r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[")
_UTTERANCE = re.compile(r"^(Ses\d+)[FM]_.+_([FM])[^_]*$")


def iemocap_release_dir(root) -> str:
    """The ``IEMOCAP_full_release`` directory for ``root`` or its parent.

    Raises
    ------
    NoClipsError
        When ``root`` is missing or holds no ``SessionN`` directory.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise NoClipsError(f"IEMOCAP directory {root} does not exist; expected "
                           f"{IEMOCAP_LAYOUT}")
    nested = os.path.join(root, RELEASE_DIR)
    release = nested if os.path.isdir(nested) else root
    if not session_dirs(release):
        raise NoClipsError(f"no SessionN directories in {release}; expected "
                           f"{IEMOCAP_LAYOUT}")
    return release


def session_dirs(release: str) -> list:
    """``SessionN`` subdirectories of ``release``, in session order."""
    found = []
    for name in os.listdir(release):
        match = _SESSION_DIR.match(name)
        if match and os.path.isdir(os.path.join(release, name)):
            found.append((int(match.group(1)), os.path.join(release, name)))
    return [path for _, path in sorted(found)]


def parse_emo_evaluation(path: str) -> dict:
    """``{utterance_id: label}`` from one EmoEvaluation ``<dialog>.txt``.

    Only the per-utterance summary lines (``[start - end]<TAB>id<TAB>label<TAB>
    [V, A, D]``) count; the individual evaluators' lines are ignored.
    """
    labels = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = _LABEL_LINE.match(line.strip())
            if match:
                labels[match.group(3)] = match.group(4)
    return labels


def speaker_of(utterance_id: str):
    """``(speaker, sex)`` of an utterance id, or ``None`` if malformed.

    Examples
    --------
    >>> speaker_of("Ses01F_impro01_M000")
    ('Ses01M', 'M')
    >>> speaker_of("Ses05M_script01_1b_F012")
    ('Ses05F', 'F')
    """
    match = _UTTERANCE.match(utterance_id)
    if match is None:
        return None
    session, sex = match.groups()
    return session + sex, sex


def emotion_of(label: str, merge_excited: bool = True):
    """Shared emotion code for an IEMOCAP label, ``None`` if it has none."""
    if label == "exc" and merge_excited:
        return "HAP"
    return IEMOCAP_TO_EMOTION.get(label)


def load_iemocap(root, emotions: Union[str, Sequence[str]] = EMOTIONS_4,
                 merge_excited: bool = True, improvised_only: bool = False,
                 corpus: str = "iemocap", probe: bool = True) -> CorpusLoad:
    """Load IEMOCAP clip records with their consensus emotion labels.

    Parameters
    ----------
    root : str or os.PathLike
        ``IEMOCAP_full_release`` or the directory that holds it.
    emotions : sequence of str or "all", default EMOTIONS_4
        Emotion codes to keep (neu/hap/sad/ang -> NEU/HAP/SAD/ANG; fea/dis
        map to FEA/DIS for ``"all"``). Utterances labelled fru, sur, oth or
        xxx have no code and are counted as filtered.
    merge_excited : bool, default True
        Count "exc" as HAP, the common 4-class IEMOCAP practice (the merged
        set has 1,636 happy utterances instead of 595).
    improvised_only : bool, default False
        Keep only improvised dialogs (``"impro"`` in the dialog id), whose
        emotions are considered more natural than the scripted ones.
    corpus : str, default "iemocap"
        Name recorded on each clip.
    probe : bool, default True
        Check every kept file's audio and skip broken ones.

    Returns
    -------
    CorpusLoad
        Clips with ``speaker`` such as ``"Ses01F"``, ``sentence`` the dialog
        id, ``sex`` the speaker's gender letter and ``intensity="XX"``.

    Raises
    ------
    AudioError
        When every wav is a Git LFS pointer.
    NoClipsError
        When the directory has no sessions or yields no usable clip.
    """
    emotions = resolve_emotions(emotions)
    release = iemocap_release_dir(root)
    candidates, skipped, filtered = [], [], 0
    for session in session_dirs(release):
        wav_root = os.path.join(session, "sentences", "wav")
        label_dir = os.path.join(session, "dialog", "EmoEvaluation")
        # A dialog with labels but no wav directory still counts: its
        # utterances are reported missing rather than silently absent.
        dialogs = sorted({d for d in _listdir(wav_root)
                          if os.path.isdir(os.path.join(wav_root, d))}
                         | {os.path.splitext(n)[0] for n in _listdir(label_dir)
                            if n.startswith("Ses") and n.endswith(".txt")})
        for dialog in dialogs:
            if improvised_only and "impro" not in dialog:
                continue
            label_file = os.path.join(label_dir, dialog + ".txt")
            wav_dir = os.path.join(wav_root, dialog)
            wavs = {os.path.splitext(n)[0]: os.path.join(wav_dir, n)
                    for n in sorted(_listdir(wav_dir)) if n.lower().endswith(".wav")}
            if not os.path.isfile(label_file):
                skipped.extend(Skipped(p, f"{os.path.basename(p)}: no label file "
                                          f"{label_file} for dialog {dialog}")
                               for p in wavs.values())
                continue
            labels = parse_emo_evaluation(label_file)
            for utterance, path in wavs.items():
                kept = _clip_or_reason(utterance, path, dialog, labels, label_file,
                                       emotions, merge_excited, corpus)
                if isinstance(kept, Skipped):
                    skipped.append(kept)
                elif kept is None:
                    filtered += 1
                else:
                    candidates.append((path, kept))
            for utterance in sorted(set(labels) - set(wavs)):
                if emotion_of(labels[utterance], merge_excited) in emotions:
                    skipped.append(Skipped(
                        os.path.join(wav_dir, utterance + ".wav"),
                        f"{utterance} is labelled in {label_file} but its wav "
                        f"file is missing from {wav_dir}"))

    suspicious: list = []
    if probe:
        clips, audio_skipped = probe_clips(
            candidates, release,
            "Fetch the audio (`git lfs pull` in the repository it came from, or "
            "re-extract the IEMOCAP release archive).", suspicious)
        skipped.extend(audio_skipped)
    else:
        clips = [clip for _, clip in candidates]
    raise_if_empty(clips, skipped, filtered, emotions, release, IEMOCAP_LAYOUT)
    clips.sort(key=lambda c: c.clip_id)
    skipped.sort(key=lambda s: s.path)
    return CorpusLoad(clips=clips, skipped=skipped, root=release, corpus=corpus,
                      emotions=emotions, filtered=filtered,
                      suspicious=sorted(suspicious, key=lambda s: s.path))


def _listdir(path: str) -> list:
    return os.listdir(path) if os.path.isdir(path) else []


def _clip_or_reason(utterance, path, dialog, labels, label_file, emotions,
                    merge_excited, corpus):
    """A Clip, a Skipped with the reason, or ``None`` for a filtered label."""
    name = os.path.basename(path)
    if name.startswith("._"):
        return Skipped(path, f"{name} is a macOS resource-fork file, not a clip; "
                             "delete the ._* files")
    who = speaker_of(utterance)
    if who is None:
        return Skipped(path, f"{name}: utterance id {utterance!r} does not look like "
                             "SesNN[FM]_<dialog>_[FM]NNN, so its speaker is unknown")
    if utterance not in labels:
        return Skipped(path, f"{name}: no label for {utterance} in {label_file}")
    label = labels[utterance]
    if label not in IEMOCAP_LABELS:
        return Skipped(path, f"{name}: label {label!r} in {label_file} is not an "
                             f"IEMOCAP label ({', '.join(IEMOCAP_LABELS)})")
    emotion = emotion_of(label, merge_excited)
    if emotion not in emotions:
        return None
    speaker, sex = who
    return Clip(path=path, speaker=speaker, emotion=emotion, sentence=dialog,
                intensity="XX", corpus=corpus, sex=sex)
