"""On-disk cache of per-clip feature outcomes, cheap to read back warm.

Two stores under one directory per feature configuration:

* **entries** -- one small ``.npz`` per clip, written as soon as the clip is
  computed (by whichever worker computed it), so an interrupted extraction
  resumes where it stopped and a changed file costs exactly one recompute;
* **packs** -- one ``.npz`` holding the outcomes of a whole clip list, in
  order, written after an extraction. A warm re-run over the same clips reads
  this one file instead of thousands of entries.

An entry is keyed by the file's identity (absolute path, size, modification
time in ns) and the configuration (feature kind, its parameters, sample rate
and :data:`~tff_ser.features.pipeline.FEATURE_CODE_VERSION`), so touching a
file or changing a parameter invalidates exactly the affected entries; a pack
is keyed by the ordered list of entry keys, so it is only used when every
clip is unchanged. Skipped clips (undecodable, silent) are cached as well,
with their reason, because their files are just as stable.

Every read is verified: ``.npz`` members carry a CRC-32 that ``zipfile``
checks, and shapes, dtypes, keys and row indices are compared with what was
asked for. Anything that does not check out is deleted and recomputed,
never trusted. Writes go to a temporary file first and are renamed into place
atomically, so concurrent extractions at worst compute an entry twice.

Layout::

    <root>/<kind>/<config id>/config.json
    <root>/<kind>/<config id>/entries/<key[:2]>/<key>.npz
    <root>/<kind>/<config id>/packs/<clip list id>.npz
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

log = logging.getLogger(__name__)

#: Environment variable that overrides the default cache location.
CACHE_ENV = "TFF_SER_CACHE"
#: Name of the cache directory placed next to a corpus.
CORPUS_CACHE_NAME = ".tff_ser_cache"
#: Packs kept per configuration (least recently used ones are deleted).
MAX_PACKS = 8
# Layout of the files themselves; part of every key.
_STORAGE_FORMAT = 1

FileIdentity = Tuple[str, int, int]


@dataclasses.dataclass(frozen=True)
class ClipOutcome:
    """What feature extraction made of one clip.

    Attributes
    ----------
    features : numpy.ndarray or None
        The clip's feature array, ``None`` when the clip was skipped.
    skip_reason : str or None
        Why the clip was skipped (decoder error, silence, missing file).
    note : str or None
        Something worth knowing about a kept clip (e.g. it was zero-padded).
    """

    features: Optional[np.ndarray] = None
    skip_reason: Optional[str] = None
    note: Optional[str] = None

    def __post_init__(self):
        if (self.features is None) == (self.skip_reason is None):
            raise ValueError("a ClipOutcome has either features or a skip reason, not both")

    @property
    def ok(self) -> bool:
        return self.features is not None


def file_identity(path) -> Optional[FileIdentity]:
    """``(absolute path, size, mtime_ns)`` of a file, ``None`` if it cannot be stat'ed."""
    path = os.path.abspath(os.fspath(path))
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (path, int(stat.st_size), int(stat.st_mtime_ns))


def corpus_directory(paths: Iterable) -> str:
    """The directory a clip list belongs to: the parent of ``AudioWAV`` if the
    clips live under one (CREMA-D layout), else their deepest common directory."""
    dirs = sorted({os.path.dirname(os.path.abspath(os.fspath(p))) for p in paths})
    if not dirs:
        raise ValueError("no clip paths given")
    common = os.path.commonpath(dirs)
    parts = common.split(os.sep)
    if "AudioWAV" in parts:
        cut = len(parts) - 1 - parts[::-1].index("AudioWAV")
        return os.sep.join(parts[:cut]) or os.sep
    return common


def _writable_directory(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return False
    return True


def user_cache_directory() -> str:
    """``$XDG_CACHE_HOME/tff_ser`` (``~/.cache/tff_ser`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tff_ser")


def resolve_cache_root(paths: Sequence, cache_dir=None) -> str:
    """Where to cache features for the clips at ``paths``.

    Parameters
    ----------
    paths : sequence of path-like
        The clips' files.
    cache_dir : path-like, optional
        Explicit location; must be writable.

    Returns
    -------
    str
        ``cache_dir`` if given; else ``$TFF_SER_CACHE`` if set; else
        ``<corpus directory>/.tff_ser_cache`` (see :func:`corpus_directory`).
        The last two fall back to :func:`user_cache_directory` with a warning
        when not writable.
    """
    if cache_dir is not None:
        root = os.path.abspath(os.fspath(cache_dir))
        if not _writable_directory(root):
            raise ValueError(f"cache_dir {root} is not a writable directory; pass another "
                             "one, or use_cache=False to extract without caching")
        return root
    if os.environ.get(CACHE_ENV):
        root = os.path.abspath(os.environ[CACHE_ENV])
        origin = f"${CACHE_ENV}"
    else:
        root = os.path.join(corpus_directory(paths), CORPUS_CACHE_NAME)
        origin = "the corpus directory"
    if _writable_directory(root):
        return root
    fallback = user_cache_directory()
    if not _writable_directory(fallback):
        raise ValueError(f"neither {root} ({origin}) nor {fallback} is writable; set "
                         f"${CACHE_ENV} to a writable directory or pass use_cache=False")
    log.warning("feature cache %s (from %s) is not writable; using %s instead",
                root, origin, fallback)
    return fallback


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def _atomic_savez(path: str, **arrays) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _discard(path: str, why: str) -> None:
    log.warning("feature cache file %s is unusable (%s); recomputing", path, why)
    try:
        os.unlink(path)
    except OSError:
        pass


class FeatureCache:
    """Cache of one feature configuration.

    Parameters
    ----------
    root : path-like
        Cache root (see :func:`resolve_cache_root`).
    kind : str
        Feature kind name.
    params : mapping
        The kind's full parameter set (JSON-serialisable values).
    sr : int
        Sample rate the clips are decoded at.
    version : int
        Feature code version; bump it when the feature math changes.
    shape : tuple of int
        Shape of one clip's features, checked on every read.

    Examples
    --------
    >>> cache = FeatureCache("/tmp/c", "paper001", {"n_frames": 100}, 16000, 1,
    ...                      (100, 34))                               # doctest: +SKIP
    >>> key = cache.key(file_identity("a.wav"))                       # doctest: +SKIP
    >>> cache.get(key) is None                                        # doctest: +SKIP
    True
    """

    def __init__(self, root, kind: str, params: Mapping, sr: int, version: int,
                 shape: Sequence[int]):
        self.root = os.path.abspath(os.fspath(root))
        self.kind = kind
        self.shape = tuple(int(s) for s in shape)
        self.config = {"kind": kind, "params": dict(params), "sr": int(sr),
                       "feature_code_version": int(version),
                       "storage_format": _STORAGE_FORMAT, "shape": list(self.shape)}
        canonical = json.dumps(self.config, sort_keys=True, default=repr)
        self.config_id = _digest(canonical, 16)
        self.directory = os.path.join(self.root, kind, self.config_id)

    # -- keys ---------------------------------------------------------------
    def key(self, identity: FileIdentity) -> str:
        """Entry key of a file identity under this configuration."""
        return _digest(json.dumps([self.config_id, *identity]), 40)

    def entry_path(self, key: str) -> str:
        return os.path.join(self.directory, "entries", key[:2], key + ".npz")

    def pack_path(self, keys: Sequence[str]) -> str:
        return os.path.join(self.directory, "packs", _digest("\n".join(keys), 32) + ".npz")

    # -- per-clip entries ---------------------------------------------------
    def get(self, key: str) -> Optional[ClipOutcome]:
        """The cached outcome for ``key``, or ``None`` (missing or corrupt)."""
        path = self.entry_path(key)
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                status = str(z["status"])
                message = str(z["message"])
                features = z["features"]
        except Exception as exc:  # truncated zip, bad CRC, missing member ...
            _discard(path, f"{type(exc).__name__}: {exc}")
            return None
        if status == "skipped" and message:
            return ClipOutcome(skip_reason=message)
        if status == "ok" and self._valid_features(features, (1,) + self.shape, n_rows=1):
            return ClipOutcome(features=features[0], note=message or None)
        _discard(path, f"status {status!r}, features {features.dtype} {features.shape}")
        return None

    def put(self, key: str, outcome: ClipOutcome) -> None:
        """Store ``outcome`` under ``key`` (atomically)."""
        if outcome.ok:
            features = np.asarray(outcome.features, dtype=np.float32)[None]
            status, message = "ok", outcome.note or ""
        else:
            features = np.zeros((0,) + self.shape, dtype=np.float32)
            status, message = "skipped", outcome.skip_reason
        self._write_config()
        _atomic_savez(self.entry_path(key), features=features, status=np.array(status),
                      message=np.array(message))

    # -- packs ----------------------------------------------------------------
    def get_pack(self, keys: Sequence[str]) -> Optional[Tuple[List[ClipOutcome], np.ndarray]]:
        """Outcomes of exactly this ordered key list, or ``None``.

        Returns the outcomes and the ``(n_ok, *shape)`` array that their
        features are rows (views) of, already stacked in clip order.
        """
        keys = list(keys)
        path = self.pack_path(keys)
        if not os.path.exists(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                stored_keys = z["keys"]
                rows = z["rows"]
                messages = z["messages"]
                features = z["features"]
        except Exception as exc:
            _discard(path, f"{type(exc).__name__}: {exc}")
            return None
        n_ok = int(np.count_nonzero(rows >= 0)) if rows.ndim == 1 else -1
        if (stored_keys.shape != (len(keys),) or stored_keys.tolist() != keys
                or rows.shape != (len(keys),) or messages.shape != (len(keys),)
                or not np.array_equal(rows[rows >= 0], np.arange(n_ok))
                or not self._valid_features(features, (n_ok,) + self.shape, n_rows=n_ok)):
            _discard(path, "contents do not match the clip list")
            return None
        try:
            os.utime(path)  # least-recently-used pruning keeps packs in use
        except OSError:
            pass
        outcomes = []
        for row, message in zip(rows.tolist(), messages.tolist()):
            if row >= 0:
                outcomes.append(ClipOutcome(features=features[row], note=message or None))
            else:
                outcomes.append(ClipOutcome(skip_reason=message or "skipped"))
        return outcomes, features

    def put_pack(self, keys: Sequence[str], outcomes: Sequence[ClipOutcome]) -> None:
        """Store the outcomes of an ordered key list as one file."""
        keys = list(keys)
        if len(keys) != len(outcomes):
            raise ValueError(f"{len(keys)} keys for {len(outcomes)} outcomes")
        rows = np.full(len(keys), -1, dtype=np.int64)
        kept = [i for i, o in enumerate(outcomes) if o.ok]
        rows[kept] = np.arange(len(kept))
        messages = [(o.note or "") if o.ok else o.skip_reason for o in outcomes]
        if kept:
            features = np.stack([np.asarray(outcomes[i].features, dtype=np.float32)
                                 for i in kept])
        else:
            features = np.zeros((0,) + self.shape, dtype=np.float32)
        self._write_config()
        _atomic_savez(self.pack_path(keys), keys=np.array(keys, dtype=str), rows=rows,
                      messages=np.array(messages, dtype=str), features=features)
        self._prune_packs()

    # -- housekeeping -----------------------------------------------------------
    def clear(self) -> None:
        """Delete everything cached for this configuration."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def _valid_features(self, features: np.ndarray, shape: tuple, n_rows: int) -> bool:
        return (n_rows >= 0 and features.dtype == np.float32
                and tuple(features.shape) == tuple(shape)
                and bool(np.all(np.isfinite(features))))

    def _write_config(self) -> None:
        path = os.path.join(self.directory, "config.json")
        if os.path.exists(path):
            return
        os.makedirs(self.directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(self.config, f, indent=2, sort_keys=True, default=repr)
        os.replace(tmp, path)

    def _prune_packs(self) -> None:
        directory = os.path.join(self.directory, "packs")
        try:
            packs = [os.path.join(directory, n) for n in os.listdir(directory)
                     if n.endswith(".npz")]
            packs.sort(key=os.path.getmtime, reverse=True)
        except OSError:
            return
        for stale in packs[MAX_PACKS:]:
            try:
                os.unlink(stale)
            except OSError:
                pass
