"""The embedded generated corpus: a synthetic stand-in for CREMA-D.

A fresh clone has no CREMA-D (it is a 7,442-clip Git LFS download), yet every
notebook and test should run. :func:`generate_corpus` writes a corpus in
CREMA-D's own layout and naming (``AudioWAV/1001_DFA_ANG_XX.wav``,
``VideoDemographics.csv``), so the same loader, features and experiments run
on it unchanged, plus a ``GENERATED.json`` that marks it as generated: numbers
measured on it are never CREMA-D numbers.

The audio is source-filter speech synthesis (a Klatt-style formant
synthesiser, vectorised over short-time frames):

* **source** -- a Rosenberg glottal-flow pulse train (differentiated, which
  folds in lip radiation) on a sample-accurate F0 contour with per-cycle
  jitter and shimmer, aspiration noise gated by the open phase, optional
  creak (period doubling) and tremor;
* **filter** -- five formant resonances whose targets follow a fixed phone
  sequence per sentence (vowels, nasals, approximants) and are smoothed
  across phones (coarticulation); stops, fricatives and aspiration add
  shaped noise;
* **speaker** -- sex, habitual F0 and range, vocal-tract length (formant
  scaling), spectral tilt, breathiness, jitter/shimmer, speaking rate,
  loudness, a recording channel, and an acting skill that scales how much
  emotion they put across;
* **emotion** -- the prosodic and voice-quality cues of acted emotional speech
  (F0 level and range, tempo, intensity, tilt, voice quality, contour shape;
  Murray & Arnott 1993, Scherer 2003, Juslin & Laukka 2003), drawn per
  speaker and per clip from ranges so the classes overlap; CREMA-D's levels
  LO/MD/HI scale the contrast;
* **recording** -- leading/trailing silence, coloured noise at a random SNR,
  small gain and channel differences, 16-bit quantisation.

Every clip draws its randomness from ``(seed, actor, sentence, emotion,
level)`` alone, so a corpus is byte-identical across runs, parallel equals
serial, and any subset can be regenerated on its own.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Optional, Sequence, Union

import numpy as np

from tff_ser.corpus.records import CREMAD_SENTENCES, EMOTIONS_4, EMOTIONS_6
from tff_ser.corpus.synthesis.dsp import synthesize_clip, to_pcm16
from tff_ser.corpus.synthesis.plan import ClipSpec, clip_plan
from tff_ser.corpus.synthesis.speaker import Speaker, draw_speakers

#: Bumped whenever a change alters the generated audio, so an existing
#: corpus is regenerated instead of being reused.
GENERATOR_VERSION = "1.1"

#: Written into GENERATED.json; the CREMA-D loader keys on the file's presence.
GENERATED_NOTE = "synthetic stand-in for CREMA-D; never report as CREMA-D"

#: Presets of ``generate_corpus(size=...)``: speakers and sentences.
SIZES = {
    "full": {"n_speakers": 91, "sentences": CREMAD_SENTENCES},
    # IEO for the levels, plus the three shortest sentences.
    "small": {"n_speakers": 12, "sentences": ("IEO", "DFA", "TSI", "IOM")},
}


# ==========================================================================
# The corpus.
# ==========================================================================

@dataclasses.dataclass(frozen=True)
class GenerationReport:
    """What :func:`generate_corpus` did.

    Attributes
    ----------
    out_dir : str
        Corpus root (holds ``AudioWAV/``, ``VideoDemographics.csv`` and
        ``GENERATED.json``).
    n_clips : int
    n_speakers : int
    seconds : float
        Wall-clock time of this call.
    total_audio_s : float
        Summed duration of all clips.
    already_generated : bool
        True when an identical corpus was found and nothing was written.
    """

    out_dir: str
    n_clips: int
    n_speakers: int
    seconds: float
    total_audio_s: float
    already_generated: bool = False

    def __str__(self) -> str:
        if self.already_generated:
            return (f"already generated: {self.n_clips} clips of {self.n_speakers} speakers "
                    f"({self.total_audio_s / 3600:.2f} h) in {self.out_dir}")
        return (f"generated {self.n_clips} clips of {self.n_speakers} speakers "
                f"({self.total_audio_s / 3600:.2f} h of audio) in {self.seconds:.1f} s "
                f"-> {self.out_dir}")


def _resolve_emotions(emotions) -> tuple:
    if isinstance(emotions, str):
        if emotions == "all":
            return EMOTIONS_6
        raise ValueError(f"emotions must be 'all' or a sequence of CREMA-D codes such as "
                         f"{EMOTIONS_4}, got the string {emotions!r}")
    emotions = tuple(emotions)
    unknown = [e for e in emotions if e not in EMOTIONS_6]
    if unknown or not emotions or len(set(emotions)) != len(emotions):
        raise ValueError(f"emotions must be distinct codes from {EMOTIONS_6} (or 'all'), "
                         f"got {emotions}")
    return emotions


def _resolve_sentences(sentences) -> tuple:
    if isinstance(sentences, str):
        raise ValueError(f"sentences must be a sequence of codes such as ('IEO', 'DFA'), "
                         f"not the string {sentences!r}")
    sentences = tuple(sentences)
    unknown = [s for s in sentences if s not in CREMAD_SENTENCES]
    if unknown or not sentences or len(set(sentences)) != len(sentences):
        raise ValueError(f"sentences must be distinct CREMA-D sentence codes from "
                         f"{CREMAD_SENTENCES}, got {sentences}")
    return sentences


def generation_parameters(*, n_speakers: Optional[int] = None, sentences=None,
                          emotions=EMOTIONS_4, seed: int = 0, sr: int = 16000,
                          size: str = "full") -> dict:
    """Validated, JSON-ready parameters of a corpus (what GENERATED.json records).

    ``n_speakers`` and ``sentences`` default to the ``size`` preset
    (:data:`SIZES`).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    if n_speakers is None:
        n_speakers = SIZES[size]["n_speakers"]
    if sentences is None:
        sentences = SIZES[size]["sentences"]
    if isinstance(n_speakers, bool) or not isinstance(n_speakers, (int, np.integer)) \
            or not 1 <= n_speakers <= 8999:
        raise ValueError(f"n_speakers must be an integer from 1 to 8999 (actor ids stay "
                         f"four digits, 1001-9999), got {n_speakers!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 8000 <= sr <= 48000:
        raise ValueError(f"sr must be an integer sample rate from 8000 to 48000 Hz, got {sr!r}")
    return {
        "generator": "tff_ser.corpus.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_speakers": int(n_speakers),
        "sentences": list(_resolve_sentences(sentences)),
        "emotions": list(_resolve_emotions(emotions)),
        "sr": int(sr),
        "size": size,
    }


def _write_speaker_clips(speaker: Speaker, specs: Sequence[ClipSpec], audio_dir: str,
                         seed: int, sr: int) -> list:
    """Synthesise and write one actor's clips; (filename, n_samples, sha256) per clip."""
    import soundfile

    written = []
    for spec in specs:
        pcm = to_pcm16(synthesize_clip(speaker, spec, seed=seed, sr=sr))
        path = os.path.join(audio_dir, spec.filename)
        tmp = path + ".part"
        soundfile.write(tmp, pcm, sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        written.append((spec.filename, len(pcm), digest))
    return written


def _demographics_csv(speakers: Sequence[Speaker]) -> str:
    lines = ["ActorID,Age,Sex,Race,Ethnicity"]
    lines += [f"{s.actor},{s.age},{s.sex},{s.race},{s.ethnicity}" for s in speakers]
    return "\n".join(lines) + "\n"


def read_generated_json(out_dir) -> Optional[dict]:
    """The GENERATED.json of ``out_dir``, or ``None`` when it is not a generated corpus."""
    path = os.path.join(os.fspath(out_dir), "GENERATED.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def generate_corpus(out_dir, *, n_speakers: Optional[int] = None, sentences=None,
                    emotions: Union[str, Sequence[str]] = EMOTIONS_4, seed: int = 0,
                    sr: int = 16000, n_jobs: Optional[int] = None, progress: bool = True,
                    size: str = "full", overwrite: bool = False) -> GenerationReport:
    """Write the generated stand-in for CREMA-D in CREMA-D's layout.

    Writes ``out_dir/AudioWAV/{actor}_{sentence}_{emotion}_{level}.wav``
    (16-bit PCM mono), ``out_dir/VideoDemographics.csv`` and
    ``out_dir/GENERATED.json`` (generator version, parameters, counts and the
    note that these numbers are never CREMA-D numbers; the CREMA-D loader
    marks clips ``corpus="generated"`` when it is present).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Corpus root. Must not hold a real corpus (an ``AudioWAV/`` with WAV
        files but no ``GENERATED.json``).
    n_speakers : int, optional
        Number of actors, ids 1001 upwards. Default: 91 for ``size="full"``
        (CREMA-D's 91 actors, 48 male / 43 female), 12 for ``"small"``.
    sentences : sequence of str, optional
        CREMA-D sentence codes. Default: all 12 for ``"full"``; IEO, DFA,
        TSI, IOM for ``"small"``.
    emotions : sequence of str or "all", default EMOTIONS_4
        ``("NEU", "HAP", "SAD", "ANG")``; ``"all"`` adds fear and disgust.
    seed : int, default 0
        Same seed, same bytes.
    sr : int, default 16000
        Sample rate in Hz.
    n_jobs : int, optional
        Worker processes (joblib); ``None`` uses every CPU, 1 runs in this
        process. The output does not depend on it.
    progress : bool, default True
        Show a tqdm bar over actors.
    size : {"full", "small"}, default "full"
        ``"full"``: 91 x 54 = 4,914 clips with 4 emotions, as CREMA-D's
        4-class subset; ``"small"``: 12 actors x 22 clips for tests.
    overwrite : bool, default False
        When False and ``out_dir`` already holds a complete corpus generated
        with the same parameters, nothing is written.

    Returns
    -------
    GenerationReport

    Examples
    --------
    >>> report = generate_corpus("data/generated", size="small")  # doctest: +SKIP
    >>> report.n_clips                                             # doctest: +SKIP
    264
    """
    started = time.perf_counter()
    params = generation_parameters(n_speakers=n_speakers, sentences=sentences,
                                   emotions=emotions, seed=seed, sr=sr, size=size)
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)
                               or n_jobs == 0 or n_jobs < -1):
        raise ValueError(f"n_jobs must be None, -1 or a positive integer, got {n_jobs!r}")
    out_dir = os.path.abspath(os.fspath(out_dir))
    # Two processes asking for the same corpus at once (two experiments started
    # on a fresh clone) must not write it side by side: the second would see
    # WAVs without GENERATED.json.  It waits here, then finds the corpus done.
    import fcntl
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    lock_path = os.path.join(os.path.dirname(out_dir), f".{os.path.basename(out_dir)}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _generate_locked(out_dir, params, started=started, n_jobs=n_jobs,
                                    progress=progress, overwrite=overwrite)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _generate_locked(out_dir: str, params: dict, *, started: float, n_jobs, progress: bool,
                     overwrite: bool) -> GenerationReport:
    """:func:`generate_corpus`'s work, under the lock on ``out_dir``."""
    audio_dir = os.path.join(out_dir, "AudioWAV")
    speakers = draw_speakers(params["n_speakers"], params["seed"])
    actors = [s.actor for s in speakers]
    plan = clip_plan(actors, params["sentences"], params["emotions"])

    existing = read_generated_json(out_dir)
    if os.path.isdir(audio_dir) and existing is None and any(
            name.lower().endswith(".wav") for name in os.listdir(audio_dir)):
        raise FileExistsError(
            f"{audio_dir} holds WAV files but {out_dir} has no GENERATED.json: it looks like a "
            "real corpus. Choose another out_dir for the generated corpus (the default is "
            "data/generated/).")
    if (not overwrite and existing is not None and existing.get("parameters") == params
            and all(os.path.isfile(os.path.join(audio_dir, c.filename)) for c in plan)):
        return GenerationReport(out_dir, len(plan), len(speakers),
                                time.perf_counter() - started,
                                float(existing["counts"]["total_audio_s"]),
                                already_generated=True)

    os.makedirs(audio_dir, exist_ok=True)
    # Until the new GENERATED.json is written the directory is not a finished corpus.
    if existing is not None:
        os.remove(os.path.join(out_dir, "GENERATED.json"))
        planned = {c.filename for c in plan}
        for name in os.listdir(audio_dir):
            if name.endswith(".wav") and name not in planned:
                os.remove(os.path.join(audio_dir, name))

    by_actor = {s.actor: [] for s in speakers}
    for spec in plan:
        by_actor[spec.actor].append(spec)
    tasks = [(s, by_actor[s.actor]) for s in speakers]
    if n_jobs is None:
        n_jobs = os.cpu_count() or 1
    n_jobs = len(tasks) if n_jobs == -1 else min(n_jobs, len(tasks))

    from tqdm.auto import tqdm
    bar = tqdm(total=len(plan), unit="clip", desc="generating corpus", disable=not progress)
    results = []
    if n_jobs == 1:
        for speaker, specs in tasks:
            results.append(_write_speaker_clips(speaker, specs, audio_dir, params["seed"],
                                                params["sr"]))
            bar.update(len(specs))
    else:
        from joblib import Parallel, delayed
        jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_write_speaker_clips)(speaker, specs, audio_dir, params["seed"],
                                          params["sr"])
            for speaker, specs in tasks)
        for written in jobs:
            results.append(written)
            bar.update(len(written))
    bar.close()

    with open(os.path.join(out_dir, "VideoDemographics.csv"), "w", encoding="utf-8",
              newline="") as f:
        f.write(_demographics_csv(speakers))
    rows = [row for written in results for row in written]
    total_audio_s = sum(n for _, n, _ in rows) / params["sr"]
    corpus_hash = hashlib.sha256("".join(f"{name} {digest}\n" for name, _, digest
                                         in sorted(rows)).encode()).hexdigest()
    per_emotion = {e: sum(1 for c in plan if c.emotion == e) for e in params["emotions"]}
    manifest = {
        "note": GENERATED_NOTE,
        "parameters": params,
        "counts": {
            "n_clips": len(plan),
            "n_speakers": len(speakers),
            "n_male": sum(s.sex == "Male" for s in speakers),
            "n_female": sum(s.sex == "Female" for s in speakers),
            "per_emotion": per_emotion,
            "total_audio_s": round(total_audio_s, 3),
        },
        "audio_sha256": corpus_hash,
    }
    from tff_ser.rundir import atomic_write_json
    atomic_write_json(os.path.join(out_dir, "GENERATED.json"), manifest, indent=2)
    return GenerationReport(out_dir, len(plan), len(speakers),
                            time.perf_counter() - started, total_audio_s)
