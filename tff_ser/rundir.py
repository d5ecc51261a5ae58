"""Run folders that never lose work: checked before training, written atomically, marked complete.

Every trainer writes through these helpers:

* :func:`check_writable` -- before any training, an output or checkpoint
  folder is proven writable (a probe file is created and removed, so a
  read-only mount or a file in the way fails now, not after hours) and its
  disk has room for the run's expected files;
* :func:`prepare_output` -- an ``--out`` that already holds an earlier run is
  refused unless the caller overwrites it (then stale files, e.g. ``fold_3/``
  of an earlier 4-fold run, are removed) or resumes it;
* :func:`atomic_write_bytes` and friends -- temp file in the same folder,
  flush, fsync, ``os.replace``: a kill or a full disk leaves the old file or
  the new one, never half of one; on a full disk the temp file is removed
  and :class:`~tff_ser.errors.DiskFull` names the file;
* :func:`mark_complete` -- ``COMPLETE.json`` (every file with its size) is
  written last, so a folder without it is visibly unfinished;
* :func:`sweep_temp_files` -- temp files of writers that were killed are
  removed when a run resumes.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
from typing import Iterable, List, Optional

from tff_ser.errors import DiskFull, OutputError, OutputExists

#: Written last into a finished run folder.
COMPLETE_FILE = "COMPLETE.json"
#: Temp files: ``<name>.tmp<pid>`` (and the older ``<name>.tmp``).
_TEMP = re.compile(r"\.tmp(\d*)$")
#: Headroom kept free on the disk beyond a run's own files.
MIN_FREE_BYTES = 1 << 20


def _is_disk_full(exc: OSError) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)


def _disk_full(path: str, exc: OSError) -> DiskFull:
    folder = os.path.dirname(os.path.abspath(path)) or "."
    return DiskFull(
        f"the disk holding {folder} is full: {os.path.basename(path)} was not written (an "
        f"earlier version of it, if any, is intact). Free some space and run the same command "
        f"again; a run with a checkpoint folder resumes from its last saved round")


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temp + fsync + rename)."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if _is_disk_full(exc):
            raise _disk_full(path, exc) from exc
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, *, indent: Optional[int] = 1, default=None) -> None:
    """``json.dump`` of ``obj`` to ``path``, atomically (NumPy scalars/arrays allowed)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, default=default or _json_default)
                      + "\n")


def atomic_write_csv(path, frame) -> None:
    """``frame.to_csv(path, index=False)``, atomically."""
    atomic_write_text(path, frame.to_csv(index=False))


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path, *, what: str = "file", remedy: str = "delete it to start over"):
    """``json.load`` that names the file and the way out when it is unreadable."""
    from tff_ser.errors import CorruptFile
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptFile(f"{what} {path} is unreadable ({exc.__class__.__name__}: {exc}); "
                          f"{remedy}") from exc


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (of any user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temp_files(directory, *, recursive: bool = True) -> List[str]:
    """Remove temp files that killed writers left in ``directory``; returns their paths.

    A temp file whose writer (the pid in its name) is still alive is kept:
    another worker may be writing it now.  TFF's own ``*_temp*`` folders of
    program state are removed too.
    """
    removed: List[str] = []
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return removed
    for root, dirs, files in os.walk(directory):
        for name in files:
            m = _TEMP.search(name)
            if m and not (m.group(1) and pid_alive(int(m.group(1))) and
                          int(m.group(1)) != os.getpid()):
                path = os.path.join(root, name)
                try:
                    os.remove(path)
                    removed.append(path)
                except OSError:
                    pass
        for name in list(dirs):
            if re.match(r"program_state_\d+_temp", name):
                path = os.path.join(root, name)
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
                dirs.remove(name)
        if not recursive:
            break
    return removed


def _existing_ancestor(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_writable(directory, *, need_bytes: int = 0, what: str = "output folder") -> None:
    """Fail now, not after training, if ``directory`` cannot take ``need_bytes`` of files.

    Creates the folder (and its parents), writes and removes a probe file,
    and checks the disk's free space.  Raises
    :class:`~tff_ser.errors.OutputError` with what to do.
    """
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise OutputError(f"{what} {directory} is a file, not a folder; pass a folder path")
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, f".tff_ser-write-probe{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"0" * 512)
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as exc:
        if _is_disk_full(exc):
            raise OutputError(f"{what} {directory}: its disk is full; free some space or "
                              "choose a folder on another disk") from exc
        raise OutputError(f"{what} {directory} is not writable ({exc.strerror or exc}); "
                          "choose a folder you can write to") from exc
    free = shutil.disk_usage(_existing_ancestor(directory)).free
    need = int(need_bytes) + MIN_FREE_BYTES
    if free < need:
        raise OutputError(
            f"{what} {directory}: its disk has {_mb(free)} free but this run writes about "
            f"{_mb(need_bytes)} there; free some space or choose a folder on another disk")


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def holds_results(directory) -> bool:
    """Whether ``directory`` exists and holds anything but hidden files."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return False
    return any(not name.startswith(".") for name in os.listdir(directory))


def prepare_output(directory, *, overwrite: bool = False, resume: bool = False,
                   need_bytes: int = 0, what: str = "--out") -> None:
    """Make ``directory`` ready for a run's results, before training.

    An existing non-empty folder is refused (:class:`~tff_ser.errors.OutputExists`)
    unless ``overwrite`` (its contents are removed, so no stale ``fold_<i>/``
    of an earlier run stays beside the new tables) or ``resume`` (kept: the
    caller continues the run saved there).  Then :func:`check_writable`.
    """
    directory = os.fspath(directory)
    if holds_results(directory) and not resume:
        if not overwrite:
            state = "a finished" if os.path.exists(os.path.join(directory, COMPLETE_FILE)) \
                else "an unfinished"
            raise OutputExists(
                f"{what} {directory} already holds {state} run's results; pass --overwrite to "
                "replace them, or choose another folder")
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
    check_writable(directory, need_bytes=need_bytes, what=what)
    clear_complete(directory)


def clear_complete(directory) -> None:
    try:
        os.remove(os.path.join(os.fspath(directory), COMPLETE_FILE))
    except FileNotFoundError:
        pass


def mark_complete(directory, files: Optional[Iterable[str]] = None, **info) -> None:
    """Write ``COMPLETE.json`` last: the folder's files (relative paths, sizes) and ``info``.

    ``files`` defaults to every file under the folder.
    """
    directory = os.fspath(directory)
    if files is None:
        files = []
        for root, _, names in os.walk(directory):
            files += [os.path.relpath(os.path.join(root, n), directory) for n in names
                      if n != COMPLETE_FILE and not _TEMP.search(n)]
    sizes = {f: os.path.getsize(os.path.join(directory, f)) for f in sorted(files)}
    atomic_write_json(os.path.join(directory, COMPLETE_FILE), {"files": sizes, **info})


def is_complete(directory) -> bool:
    """Whether ``directory`` was marked complete and every file it lists is there, whole."""
    path = os.path.join(os.fspath(directory), COMPLETE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            sizes = json.load(f)["files"]
    except (OSError, ValueError, KeyError):
        return False
    for name, size in sizes.items():
        p = os.path.join(os.fspath(directory), name)
        if not os.path.isfile(p) or os.path.getsize(p) != size:
            return False
    return True
