"""``tff-ser data check DIR``: what a corpus directory holds, and what is wrong.

Before any feature is computed a user should see how many clips each speaker
(a federated client) has, how the emotions and levels are spread, how long
the clips are, and every file that will be left out or is silent. This module
computes that as a :class:`CheckReport` and renders it as text.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import statistics
from typing import Optional, Sequence, Union

from tff_ser.corpus.audio import (SILENCE_PEAK_DBFS, AudioError, audio_info,
                                  load_audio, peak_dbfs)
from tff_ser.corpus.cremad import (AUDIO_DIR, CREMAD_LAYOUT, NoClipsError, Skipped,
                                   load_cremad)
from tff_ser.corpus.iemocap import (IEMOCAP_LAYOUT, RELEASE_DIR, load_iemocap,
                                    session_dirs)
from tff_ser.corpus.records import CREMAD_LEVELS

LAYOUTS = ("crema-d", "iemocap")

#: The sample rate every feature kind reads audio at (``extract(sr=16000)``).
FEATURE_SR = 16000


def detect_layout(root) -> str:
    """Which corpus layout ``root`` follows: ``"crema-d"`` or ``"iemocap"``.

    IEMOCAP is recognised by an ``IEMOCAP_full_release`` directory or
    ``SessionN`` directories; CREMA-D by an ``AudioWAV`` directory or by .wav
    files directly in ``root``.

    Raises
    ------
    NoClipsError
        When ``root`` is missing or matches neither layout (the message
        describes both).
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise NoClipsError(f"{root} does not exist or is not a directory")
    if os.path.isdir(os.path.join(root, RELEASE_DIR)) or session_dirs(root):
        return "iemocap"
    if os.path.isdir(os.path.join(root, AUDIO_DIR)) or any(
            name.lower().endswith(".wav") for name in os.listdir(root)):
        return "crema-d"
    raise NoClipsError(
        f"{root} holds neither corpus layout tff_ser reads. CREMA-D: "
        f"{CREMAD_LAYOUT}. IEMOCAP: {IEMOCAP_LAYOUT}.")


@dataclasses.dataclass
class CheckReport:
    """Contents and problems of one corpus directory.

    Attributes
    ----------
    root : str
        Directory the clips were read from.
    layout : str
        ``"crema-d"`` or ``"iemocap"`` (the directory structure).
    corpus : str
        Name on the clips: ``"crema-d"``, ``"iemocap"`` or ``"generated"``.
    emotions : tuple of str
        Emotion set checked.
    clips_per_speaker_emotion : dict
        ``{speaker: {emotion: count}}`` over usable clips.
    clips_per_level : dict
        ``{level: count}``.
    clips_per_sex, speakers_per_sex : dict
        Keyed by ``"M"``, ``"F"`` and ``"unknown"``.
    durations : list of float
        Seconds per usable clip.
    sample_rates, channels : dict
        ``{value: number of clips}`` as found in the files' headers.
    filtered : int
        Clips of emotions outside ``emotions``.
    skipped : list of Skipped
        Files left out, with reasons (loader problems and decode failures).
    silent : list of (str, float)
        ``(path, peak dBFS)`` of clips whose peak is below the threshold.
    """

    root: str
    layout: str
    corpus: str
    emotions: tuple
    clips_per_speaker_emotion: dict
    clips_per_level: dict
    clips_per_sex: dict
    speakers_per_sex: dict
    durations: list
    sample_rates: dict
    channels: dict
    filtered: int = 0
    skipped: list = dataclasses.field(default_factory=list)
    silent: list = dataclasses.field(default_factory=list)
    silence_dbfs: float = SILENCE_PEAK_DBFS
    #: Clips kept but damaged-looking (a WAV cut short, ...): ``CorpusLoad.suspicious``.
    suspicious: list = dataclasses.field(default_factory=list)

    @property
    def n_clips(self) -> int:
        return sum(self.clips_per_speaker.values())

    @property
    def clips_per_speaker(self) -> dict:
        return {s: sum(e.values()) for s, e in self.clips_per_speaker_emotion.items()}

    @property
    def clips_per_emotion(self) -> dict:
        totals = collections.Counter()
        for per_emotion in self.clips_per_speaker_emotion.values():
            totals.update(per_emotion)
        return {e: totals.get(e, 0) for e in self.emotions}

    @property
    def problems(self) -> list:
        """Every skipped file, suspicious clip and silent clip as ``(path, reason)``."""
        return list(self.skipped) + list(self.suspicious) + [
            Skipped(path, f"{path} is silent (peak {_db(peak)} dBFS, below "
                          f"{self.silence_dbfs:g} dBFS); it decodes but carries "
                          "no speech; delete it or expect a useless clip")
            for path, peak in self.silent]


def check_directory(root, emotions: Union[str, Sequence[str]] = "all",
                    scan_silence: bool = True,
                    silence_dbfs: float = SILENCE_PEAK_DBFS,
                    layout: Optional[str] = None, **loader_kwargs) -> CheckReport:
    """Inspect a corpus directory: counts, durations and problems.

    Parameters
    ----------
    root : str or os.PathLike
        A CREMA-D or IEMOCAP directory (see :func:`detect_layout`).
    emotions : sequence of str or "all", default "all"
        Emotion set to count; "all" so the check shows the whole corpus.
    scan_silence : bool, default True
        Decode every clip to find silent ones (reads all audio; ``False``
        only reads headers).
    silence_dbfs : float, default -80.0
        Peak level below which a clip is reported silent.
    layout : {"crema-d", "iemocap"}, optional
        Skip detection and read ``root`` with this layout.
    **loader_kwargs
        Passed to the loader (e.g. ``merge_excited`` for IEMOCAP).

    Returns
    -------
    CheckReport

    Raises
    ------
    NoClipsError
        When the directory matches no layout or yields no clip.
    AudioError
        When every clip is a Git LFS pointer.
    """
    layout = layout or detect_layout(root)
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is not one of {LAYOUTS}")
    loader = load_cremad if layout == "crema-d" else load_iemocap
    load = loader(root, emotions=emotions, **loader_kwargs)

    per_speaker = collections.defaultdict(collections.Counter)
    levels, sex_clips = collections.Counter(), collections.Counter()
    sex_speakers = collections.defaultdict(set)
    durations, rates, channels = [], collections.Counter(), collections.Counter()
    skipped, silent = list(load.skipped), []
    for clip in load.clips:
        try:
            info = audio_info(clip.path)
            if scan_silence:
                peak = peak_dbfs(load_audio(clip.path, sr=None))
                if peak < silence_dbfs:
                    silent.append((clip.path, peak))
        except AudioError as exc:
            skipped.append(Skipped(clip.path, str(exc)))
            continue
        per_speaker[clip.speaker][clip.emotion] += 1
        levels[clip.intensity] += 1
        sex = clip.sex or "unknown"
        sex_clips[sex] += 1
        sex_speakers[sex].add(clip.speaker)
        durations.append(info.duration)
        rates[info.samplerate] += 1
        channels[info.channels] += 1

    level_order = [lv for lv in CREMAD_LEVELS if lv in levels] + sorted(
        set(levels) - set(CREMAD_LEVELS))
    return CheckReport(
        root=load.root, layout=layout, corpus=load.corpus, emotions=load.emotions,
        clips_per_speaker_emotion={s: dict(per_speaker[s]) for s in sorted(per_speaker)},
        clips_per_level={lv: levels[lv] for lv in level_order},
        clips_per_sex=dict(sorted(sex_clips.items())),
        speakers_per_sex={s: len(v) for s, v in sorted(sex_speakers.items())},
        durations=durations, sample_rates=dict(sorted(rates.items())),
        channels=dict(sorted(channels.items())), filtered=load.filtered,
        skipped=sorted(skipped, key=lambda s: s.path), silent=silent,
        silence_dbfs=silence_dbfs, suspicious=list(load.suspicious))


def _db(value: float) -> str:
    return "-inf" if value == float("-inf") else f"{value:.1f}"


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def format_report(report: CheckReport, max_problems: Optional[int] = None) -> str:
    """Render a :class:`CheckReport` as plain text for the terminal.

    Parameters
    ----------
    report : CheckReport
    max_problems : int, optional
        List at most this many problems (all by default, since the point of
        the check is to see them).
    """
    lines = [f"Directory: {report.root}",
             f"Layout: {report.layout}    corpus name on clips: {report.corpus}"]
    if report.corpus == "generated":
        lines.append("  NOTE: GENERATED.json marker found: these are generated clips, "
                     "not recordings; never report their numbers as CREMA-D.")
    lines.append(f"Clips: {report.n_clips} usable (emotions {','.join(report.emotions)}); "
                 f"{report.filtered} filtered by emotion; "
                 f"{len(report.problems)} problem(s)")
    per_speaker = report.clips_per_speaker
    if per_speaker:
        n = sorted(per_speaker.values())
        lines.append(f"Speakers: {len(n)}; clips per speaker min {n[0]}, median "
                     f"{statistics.median(n):g}, max {n[-1]}")
    lines.append("Clips per emotion: " + _counts(report.clips_per_emotion))
    lines.append("Clips per level: " + _counts(report.clips_per_level))
    if set(report.clips_per_sex) - {"unknown"}:
        lines.append("Sex: " + ", ".join(
            f"{s} {report.speakers_per_sex[s]} speakers / {report.clips_per_sex[s]} clips"
            for s in report.clips_per_sex))
    else:
        lines.append("Sex: unknown (no demographics found)")
    if report.durations:
        d = report.durations
        total = sum(d)
        total_text = f"{total / 3600:.2f} h" if total >= 3600 else f"{total / 60:.1f} min"
        lines.append(f"Duration (s): min {min(d):.2f}, mean {statistics.fmean(d):.2f}, "
                     f"max {max(d):.2f}; total {total_text}")
    lines.append("Sample rates: " + (", ".join(
        f"{sr} Hz ({n} clips)" for sr, n in report.sample_rates.items()) or "none"))
    other = [sr for sr in report.sample_rates if int(sr) != FEATURE_SR]
    if other:
        lines.append(f"Features use {FEATURE_SR} Hz: clips at "
                     f"{', '.join(f'{sr} Hz' for sr in other)} are resampled to {FEATURE_SR} Hz "
                     "(soxr, HQ) when features are extracted; the files are not changed.")
    elif report.sample_rates:
        lines.append(f"Features use {FEATURE_SR} Hz, the clips' own rate: no resampling.")
    lines.append("Channels: " + (", ".join(
        f"{c} ({n} clips)" for c, n in report.channels.items()) or "none"))

    if per_speaker:
        lines.append("")
        lines.append("Clips per speaker:")
        width = max(7, *(len(s) for s in per_speaker))
        header = f"  {'speaker':<{width}} " + " ".join(
            f"{e:>4}" for e in report.emotions) + "  total"
        lines.append(header)
        for speaker, per_emotion in report.clips_per_speaker_emotion.items():
            lines.append(f"  {speaker:<{width}} " + " ".join(
                f"{per_emotion.get(e, 0):>4}" for e in report.emotions)
                + f"  {per_speaker[speaker]:>5}")

    problems = report.problems
    lines.append("")
    if not problems:
        lines.append("Problems: none")
    else:
        lines.append(f"Problems ({len(problems)}):")
        shown = problems if max_problems is None else problems[:max_problems]
        lines.extend(f"  - {p.reason}" for p in shown)
        if len(shown) < len(problems):
            lines.append(f"  ... and {len(problems) - len(shown)} more")
    return "\n".join(lines)
