"""The features stage: clips in, one stacked feature array out.

:func:`extract` decodes every clip (:func:`tff_ser.corpus.audio.load_audio`),
computes one feature kind from :data:`FEATURE_KINDS` for it, in parallel over
clips, through the on-disk cache of :mod:`tff_ser.features.cache`, and
returns a :class:`FeatureSet`: the array, the clips that produced its rows,
and the clips that were left out with the reason. Nothing is dropped
silently:

* a clip that cannot be decoded (Git LFS pointer, empty file, corrupt
  header ...) or is missing is skipped and listed with the decoder's message;
* a silent clip (peak below -80 dBFS) is skipped and listed -- it has no
  emotion to learn and its normalised features would be noise;
* a clip shorter than one analysis window is zero-padded to one window, kept,
  and listed in :attr:`FeatureSet.notes`.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import types
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import joblib
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from tff_ser.corpus.audio import SILENCE_PEAK_DBFS, AudioError, load_audio, peak_dbfs
from tff_ser.corpus.records import EMOTIONS_4, Clip, label_index
from tff_ser.features.cache import ClipOutcome, FeatureCache, file_identity, resolve_cache_root
from tff_ser.features.logmel import log_mel_filterbank
from tff_ser.features.opensmile_sets import OPENSMILE_SETS, compare_2016, egemaps
from tff_ser.features.pyaudioanalysis import (N_FEATURES, clip_statistics,
                                              paper001_frames)
from tff_ser.features.spectrogram import pooled_spectrogram

log = logging.getLogger(__name__)

#: Version of the feature arithmetic, part of every cache key. Bump it
#: whenever a change to any feature function changes its numbers.
FEATURE_CODE_VERSION = 1


class FeatureExtractionError(RuntimeError):
    """No clip of the list produced features."""


@dataclasses.dataclass(frozen=True)
class FeatureKind:
    """One entry of :data:`FEATURE_KINDS`.

    Attributes
    ----------
    name : str
    function : callable
        Pure ``function(signal, sr, **params) -> numpy.ndarray``.
    defaults : mapping
        Every keyword parameter of ``function`` with the pipeline's default;
        all of them enter the cache key.
    window_param : str
        Parameter holding the analysis window in seconds; shorter clips are
        zero-padded to it.
    shape : callable
        ``shape(params) -> tuple``: the shape of one clip's features.
    source : str
        Where the kind comes from, for people reading the registry.
    """

    name: str
    function: Callable[..., np.ndarray]
    defaults: Mapping[str, Any]
    window_param: str
    shape: Callable[[Mapping[str, Any]], Tuple[int, ...]]
    source: str


def _keyword_defaults(function: Callable, **overrides) -> Mapping[str, Any]:
    defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"{function.__name__} has no parameter(s) {sorted(unknown)}")
    defaults.update(overrides)
    return types.MappingProxyType(defaults)


def _paper001_shape(p):
    return (int(p["n_frames"]), N_FEATURES)


def _clip_stats_shape(p):
    return (4 * N_FEATURES,)


def _logmel_shape(p):
    return (int(p["n_frames"]), int(p["n_mels"]))


def _egemaps_shape(p):
    return (OPENSMILE_SETS["eGeMAPSv02"],)


def _compare_shape(p):
    return (OPENSMILE_SETS["ComParE_2016"],)


def _spectrogram_shape(p):
    return (int(p["n_time"]), int(p["n_freq"]))


#: Feature kinds by name: ``"paper001"`` (100, 34), ``"clip_stats"`` (136,),
#: ``"logmel"`` (300, 40), ``"spectrogram"`` (140, 140) with default params, and
#: openSMILE's ``"egemaps"`` (88,) and ``"compare"`` (6373,) functionals.
FEATURE_KINDS: Dict[str, FeatureKind] = {
    "paper001": FeatureKind(
        "paper001", paper001_frames, _keyword_defaults(paper001_frames), "window",
        _paper001_shape,
        "paper 001: 100 windows of 0.2 s x 34 pyAudioAnalysis short-term features"),
    "clip_stats": FeatureKind(
        "clip_stats", clip_statistics, _keyword_defaults(clip_statistics), "window",
        _clip_stats_shape,
        "paper 000: mean and std of the 34 short-term features and their deltas"),
    "logmel": FeatureKind(
        "logmel", log_mel_filterbank, _keyword_defaults(log_mel_filterbank, n_frames=300),
        "win_length", _logmel_shape,
        "paper 004: 40-d log Mel filterbank, 25 ms Hamming, 10 ms step, 3 s"),
    "spectrogram": FeatureKind(
        "spectrogram", pooled_spectrogram, _keyword_defaults(pooled_spectrogram),
        "win_length", _spectrogram_shape,
        "paper 003: 8 s log-power spectrogram pooled to 140 x 140"),
    "egemaps": FeatureKind(
        "egemaps", egemaps, _keyword_defaults(egemaps), "window",
        _egemaps_shape,
        "openSMILE eGeMAPSv02 functionals (88), computed by the opensmile package"),
    "compare": FeatureKind(
        "compare", compare_2016, _keyword_defaults(compare_2016), "window",
        _compare_shape,
        "openSMILE ComParE_2016 functionals (6373), computed by the opensmile package"),
}


#: The feature kind read from a user's folder of per-clip ``.npy`` files instead of computed
#: from audio (:mod:`tff_ser.features.embeddings`): ``extract(clips, "embeddings", folder=...)``.
EMBEDDINGS = "embeddings"


@dataclasses.dataclass
class FeatureSet:
    """Features of a clip list, with what was left out and why.

    Attributes
    ----------
    x : numpy.ndarray
        ``(n_ok, ...)`` float32, one row per kept clip.
    clips : list of Clip
        The clips behind the rows of ``x``, in input order.
    skipped : list of (Clip, str)
        Clips that produced no row and the reason.
    kind : str
        Feature kind name (a key of :data:`FEATURE_KINDS`).
    params : dict
        The kind's full parameter set.
    notes : list of (Clip, str)
        Kept clips worth a remark (zero-padded short clips).
    sr : int
        Sample rate the clips were decoded at.
    corpus_problems : dict, optional
        :func:`tff_ser.corpus.problems.corpus_problems` of the load these
        clips came from, when the caller set it (experiments record it in
        every result).
    """

    x: np.ndarray
    clips: List[Clip]
    skipped: List[Tuple[Clip, str]]
    kind: str
    params: Dict[str, Any]
    notes: List[Tuple[Clip, str]] = dataclasses.field(default_factory=list)
    sr: int = 16000
    corpus_problems: Optional[Dict[str, Any]] = None

    def __post_init__(self):
        if len(self.x) != len(self.clips):
            raise ValueError(f"{len(self.x)} feature rows for {len(self.clips)} clips")

    def __len__(self) -> int:
        return len(self.clips)

    def labels(self, emotions: Sequence[str] = EMOTIONS_4) -> np.ndarray:
        """Integer class of every row, by position of its emotion in ``emotions``.

        Raises ``ValueError`` (from :func:`~tff_ser.corpus.records.label_index`)
        when a clip's emotion is not one of ``emotions``.
        """
        return np.array([label_index(c.emotion, emotions) for c in self.clips],
                        dtype=np.int32)


def common_clips(*feature_sets: "FeatureSet") -> List["FeatureSet"]:
    """The feature sets cut to the clips all of them have, in the first one's order.

    Two kinds of one corpus can keep different clips (one kind could not be
    computed for a clip; a user's embedding folder lacks some): a clip missing
    from any set is dropped from all and added to their ``skipped`` with the
    reason, so nothing is lost silently.
    """
    if not feature_sets:
        return []
    ids = [{c.clip_id for c in fs.clips} for fs in feature_sets]
    keep = set.intersection(*ids)
    order = {c.clip_id: i for i, c in enumerate(feature_sets[0].clips)}
    out = []
    for fs in feature_sets:
        rows = sorted((i for i, c in enumerate(fs.clips) if c.clip_id in keep),
                      key=lambda i: order[fs.clips[i].clip_id])
        lost = [(c, "not in every feature set: no " + ", ".join(
            other.kind for other, have in zip(feature_sets, ids) if c.clip_id not in have)
            + " features") for c in fs.clips if c.clip_id not in keep]
        out.append(dataclasses.replace(fs, x=fs.x[rows], clips=[fs.clips[i] for i in rows],
                                       skipped=list(fs.skipped) + lost))
    return out


def resolve_params(kind: str, params: Mapping[str, Any]) -> Tuple[FeatureKind, Dict[str, Any]]:
    """The :class:`FeatureKind` named ``kind`` and its defaults updated by ``params``."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; choose one of {sorted(FEATURE_KINDS)}")
    spec = FEATURE_KINDS[kind]
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        raise ValueError(f"feature kind {kind!r} has no parameter(s) {unknown}; "
                         f"it takes {sorted(spec.defaults)}")
    merged = {**spec.defaults, **params}
    for name in ("n_frames",):
        if name in merged and merged[name] is None:
            raise ValueError(f"feature kind {kind!r} needs a fixed {name} to stack clips "
                             f"into one array; pass e.g. {name}={spec.defaults[name]}")
    return spec, merged


def _minimum_samples(spec: FeatureKind, params: Mapping[str, Any], sr: int) -> int:
    n = int(round(float(params[spec.window_param]) * sr))
    if params.get("n_fft") is not None:
        n = max(n, int(params["n_fft"]))
    return max(n, 1)


def _resolve_n_jobs(n_jobs: Optional[int], n_tasks: int) -> int:
    if n_jobs is None or n_jobs == -1:
        n = joblib.cpu_count()
    elif isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, -1 or None (all cores), "
                         f"got {n_jobs!r}")
    else:
        n = int(n_jobs)
    return max(1, min(n, n_tasks))


def extract_clip(path: str, function: Callable[..., np.ndarray], params: Mapping[str, Any],
                 sr: int, min_samples: int, shape: Tuple[int, ...],
                 cache: Optional[FeatureCache] = None,
                 key: Optional[str] = None) -> ClipOutcome:
    """Decode one clip and compute its features (the per-clip unit of work).

    Undecodable, missing and silent clips become skipped outcomes; clips
    shorter than ``min_samples`` are zero-padded and noted. When ``cache`` and
    ``key`` are given the outcome is stored before returning, so work done
    survives an interrupted run.
    """
    note = None
    try:
        signal = load_audio(path, sr=sr)
    except FileNotFoundError as exc:
        return ClipOutcome(skip_reason=f"missing: {exc}")
    except AudioError as exc:
        outcome = ClipOutcome(skip_reason=f"{exc.kind or 'unreadable'}: {exc}")
    else:
        peak = peak_dbfs(signal)
        if peak < SILENCE_PEAK_DBFS:
            outcome = ClipOutcome(skip_reason=f"silent: peak below {SILENCE_PEAK_DBFS:g} dBFS "
                                              f"({peak:.1f} dBFS)")
        else:
            if len(signal) < min_samples:
                note = (f"shorter than one analysis window ({len(signal)} < {min_samples} "
                        "samples): zero-padded to one window")
                signal = np.pad(signal, (0, min_samples - len(signal)))
            features = np.asarray(function(signal, sr, **params), dtype=np.float32)
            if features.shape != tuple(shape) or not np.all(np.isfinite(features)):
                raise RuntimeError(
                    f"{getattr(function, '__name__', function)} returned "
                    f"{features.shape} features for {path} (expected {tuple(shape)}, all "
                    "finite); this is a bug in the feature function, please report it")
            outcome = ClipOutcome(features=features, note=note)
    if cache is not None and key is not None:
        cache.put(key, outcome)
    return outcome


def _needs_own_process(function) -> bool:
    """True for openSMILE's functionals in a process that has imported TensorFlow.

    Measured on the current stack (TensorFlow 2.20, opensmile 2.6.0): once
    TensorFlow is imported, openSMILE's C library corrupts the heap on its
    second or third clip (``malloc(): invalid size``, then SIGABRT or
    SIGSEGV); loaded before TensorFlow, or in a process without it, it is
    fine (``tests/unit/test_opensmile.py``).  Such clips are computed in spawned
    worker processes, which do not import TensorFlow.
    """
    import sys
    return (getattr(function, "__module__", "") == "tff_ser.features.opensmile_sets"
            and "tensorflow" in sys.modules)


def _one_blas_thread() -> None:
    threadpool_limits(limits=1, user_api="blas")


def _extract_task(task: tuple) -> ClipOutcome:
    return extract_clip(*task)


def _compute(tasks: List[tuple], n_jobs: Optional[int], progress: bool, desc: str):
    """Run :func:`extract_clip` over ``tasks``; results in task order.

    BLAS runs single-threaded in every path: OpenBLAS splits a matrix product
    differently with more threads, which changes the last bits of e.g. the
    spectral centroid, and results must not depend on ``n_jobs`` or the
    machine's core count. One thread per clip is also the faster use of the
    cores when clips run in parallel.
    """
    n_workers = _resolve_n_jobs(n_jobs, len(tasks))
    results = []
    own_process = bool(tasks) and _needs_own_process(tasks[0][1])
    with tqdm(total=len(tasks), disable=not progress, desc=desc, unit="clip") as bar:
        if n_workers == 1 and not own_process:
            with threadpool_limits(limits=1, user_api="blas"):
                for task in tasks:
                    results.append(extract_clip(*task))
                    bar.update()
            return results
        warm_librosa_cache()  # before the workers: see its docstring
        if own_process:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            # joblib runs n_jobs=1 in this process; a spawned pool never does.
            from concurrent.futures.process import BrokenProcessPool
            try:
                with ProcessPoolExecutor(max_workers=n_workers,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_one_blas_thread) as pool:
                    for outcome in pool.map(_extract_task, tasks, chunksize=8):
                        results.append(outcome)
                        bar.update()
            except BrokenProcessPool:
                raise RuntimeError(
                    "openSMILE crashed in its worker process. openSMILE's library corrupts "
                    "the heap in a process that imported TensorFlow first, and a worker "
                    "re-imports your main script: if that script imports tensorflow at the "
                    "top, extract the openSMILE features before importing it, or cache them "
                    "first with `tff-ser features --kind egemaps` (or compare)") from None
            return results
        with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
            parallel = joblib.Parallel(n_jobs=n_workers, return_as="generator",
                                       batch_size="auto")
            for outcome in parallel(joblib.delayed(extract_clip)(*task) for task in tasks):
                results.append(outcome)
                bar.update()
        return results


def warm_librosa_cache() -> None:
    """Compile librosa's numba functions in this process before any worker process does.

    librosa compiles its ``guvectorize`` functions (``localmax``, ``localmin``,
    ``peak_pick``, pitch and zero-crossing helpers) with ``cache=True`` when
    its modules are first used, writing two cache files per compiled
    signature into its ``__pycache__``.  Processes that compile at the same
    time on a cold cache (a fresh environment, two feature workers) can leave
    a pair of files from two different processes, and any later process that
    loads that pair crashes with a segmentation fault (numba issue #10128; two
    CI runs of this project died so, in a test far from the workers).  Once
    the cache is complete, processes only read it.  So the parent compiles
    first, alone: call this before starting worker processes.  Cheap when the
    cache is warm (it only loads), and once per process.
    """
    if _WARMED:
        return
    import librosa
    silence = np.zeros(4096, dtype=np.float32)
    librosa.feature.melspectrogram(y=silence, sr=16000)  # util.utils, core.spectrum
    librosa.zero_crossings(silence)  # core.audio
    librosa.yin(silence, fmin=80, fmax=400, sr=16000, frame_length=1024)  # core.pitch
    _WARMED.append(True)


_WARMED: list = []


def extract(clips: Sequence[Clip], kind: str, *, sr: int = 16000, cache_dir=None,
            use_cache: bool = True, n_jobs: Optional[int] = None, progress: bool = True,
            **params) -> FeatureSet:
    """Compute one feature kind for every clip, through the cache.

    Parameters
    ----------
    clips : sequence of Clip
        The clips, typically from a corpus loader.
    kind : str
        A key of :data:`FEATURE_KINDS`: ``"paper001"``, ``"clip_stats"``,
        ``"logmel"``, ``"spectrogram"``, ``"egemaps"`` or ``"compare"``; or
        :data:`EMBEDDINGS` (``"embeddings"``), a user's own per-clip vectors or
        sequences read from ``folder=`` (:func:`~tff_ser.features.embeddings.load_embeddings`:
        ``frames=``, ``missing=``; no cache, no audio decoded).
    sr : int, default 16000
        Sample rate clips are decoded at.
    cache_dir : path-like, optional
        Cache location; default ``$TFF_SER_CACHE``, else ``.tff_ser_cache``
        next to the corpus's ``AudioWAV`` (or the clips' common directory),
        else ``~/.cache/tff_ser`` (see
        :func:`~tff_ser.features.cache.resolve_cache_root`).
    use_cache : bool, default True
        ``False`` computes everything and writes nothing.
    n_jobs : int, optional
        Worker processes; ``None`` or ``-1`` uses every core. Results do not
        depend on it.
    progress : bool, default True
        Show a progress bar while computing.
    **params
        Overrides of the kind's parameters (see ``FEATURE_KINDS[kind].defaults``).

    Returns
    -------
    FeatureSet

    Raises
    ------
    FeatureExtractionError
        When not a single clip yields features.

    Examples
    --------
    >>> fs = extract(clips, "paper001", n_jobs=2)      # doctest: +SKIP
    >>> fs.x.shape, fs.labels()[:3]                     # doctest: +SKIP
    ((4880, 100, 34), array([3, 3, 1], dtype=int32))
    """
    clips = list(clips)
    if not clips:
        raise ValueError("no clips given; load a corpus first (tff_ser.corpus)")
    if kind == EMBEDDINGS:  # read from the user's folder, not computed from audio
        from tff_ser.features.embeddings import load_embeddings
        unknown = sorted(set(params) - {"folder", "frames", "missing"})
        if unknown or "folder" not in params:
            raise ValueError(f"feature kind 'embeddings' takes folder= (required), frames= and "
                             f"missing=; got {sorted(params)}")
        return load_embeddings(clips, **params)
    bad = [c for c in clips if not isinstance(c, Clip)]
    if bad:
        raise ValueError(f"extract expects tff_ser.corpus.records.Clip records, got "
                         f"{type(bad[0]).__name__} ({len(bad)} of {len(clips)})")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer sample rate in Hz, got {sr!r}")
    spec, params = resolve_params(kind, params)
    shape = spec.shape(params)
    min_samples = _minimum_samples(spec, params, sr)

    identities = [file_identity(c.path) for c in clips]
    cache = None
    keys: List[Optional[str]] = [None] * len(clips)
    if use_cache:
        root = resolve_cache_root([c.path for c in clips], cache_dir)
        cache = FeatureCache(root, kind, params, sr, FEATURE_CODE_VERSION, shape)
        keys = [cache.key(i) if i is not None else f"missing:{os.path.abspath(c.path)}"
                for c, i in zip(clips, identities)]
        pack = cache.get_pack(keys)
        if pack is not None:  # warm: every clip unchanged since the last run
            outcomes, stacked = pack
            return _assemble(clips, outcomes, kind, params, sr, stacked=stacked)

    outcomes: List[Optional[ClipOutcome]] = [None] * len(clips)
    for i, identity in enumerate(identities):
        if identity is None:
            outcomes[i] = ClipOutcome(skip_reason=f"missing: {clips[i].path} does not exist")
        elif cache is not None:
            outcomes[i] = cache.get(keys[i])
    todo = [i for i, o in enumerate(outcomes) if o is None]
    if todo:
        log.info("computing %s features for %d of %d clips (%d cached)", kind, len(todo),
                 len(clips), len(clips) - len(todo))
        tasks = [(clips[i].path, spec.function, params, sr, min_samples, shape, cache, keys[i])
                 for i in todo]
        for i, outcome in zip(todo, _compute(tasks, n_jobs, progress, f"{kind} features")):
            outcomes[i] = outcome
    if cache is not None:
        cache.put_pack(keys, outcomes)
    return _assemble(clips, outcomes, kind, params, sr)


def _assemble(clips: List[Clip], outcomes: List[ClipOutcome], kind: str,
              params: Dict[str, Any], sr: int,
              stacked: Optional[np.ndarray] = None) -> FeatureSet:
    kept = [(c, o) for c, o in zip(clips, outcomes) if o.ok]
    skipped = [(c, o.skip_reason) for c, o in zip(clips, outcomes) if not o.ok]
    notes = [(c, o.note) for c, o in kept if o.note]
    if not kept:
        shown = "; ".join(f"{c.path}: {r}" for c, r in skipped[:3])
        raise FeatureExtractionError(
            f"none of the {len(clips)} clips yielded {kind} features; first reasons: {shown}. "
            "Check the corpus files (`tff-ser data check`) before extracting features.")
    if skipped:
        counts: Dict[str, int] = {}
        for _, reason in skipped:
            counts[reason.split(":", 1)[0]] = counts.get(reason.split(":", 1)[0], 0) + 1
        log.warning("%d of %d clips skipped for %s features (%s); every result.json lists "
                    "them under extra.corpus_problems",
                    len(skipped), len(clips), kind,
                    ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    if notes:
        log.info("%d clips shorter than one analysis window were zero-padded; see "
                 "FeatureSet.notes", len(notes))
    if stacked is None:
        stacked = np.stack([o.features for _, o in kept])
    x = stacked.astype(np.float32, copy=False)
    return FeatureSet(x=x, clips=[c for c, _ in kept], skipped=skipped, kind=kind,
                      params=dict(params), notes=notes, sr=int(sr))
