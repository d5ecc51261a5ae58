"""A study journal that survives a full disk: whole records, torn tails repaired, nothing appended after one.

Optuna's :class:`~optuna.storages.journal.JournalFileBackend` appends one
JSON record per line (with its lock, flush and fsync).  Two faults of it
lose a study:

* a write cut off by a full disk (or a kill) leaves a torn last line, and
  the next append is glued onto it -- from then on every reader fails
  ("Expecting ',' delimiter"), although the records before were fine;
* junk or a broken line in the middle gives a bare ``JSONDecodeError`` (or a
  ``UnicodeDecodeError``) with no line number and no way out.

:class:`DurableJournalFileBackend` is Optuna's backend with

* **a check on open** (:func:`check_journal`): a torn or unparseable *last*
  line is moved to ``<journal>.torn`` and the file cut back to its last
  complete record (:func:`repair_journal`, the user is told); a bad line in
  the *middle* raises :class:`JournalCorrupt` naming the line and
  ``tff-ser hpo repair``;
* **appends that are whole or absent**: under Optuna's lock the tail is
  checked again (another process may have torn it), the size noted, and a
  failed write (``ENOSPC``) truncates the file back to that size before
  :class:`~tff_ser.errors.DiskFull` is raised.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Dict, List, Optional

from optuna.storages.journal import JournalFileBackend

from tff_ser.errors import CorruptFile, DiskFull

_LOG = logging.getLogger(__name__)

#: Where the cut bytes of a repaired journal go (appended, never overwritten).
TORN_SUFFIX = ".torn"


class JournalCorrupt(CorruptFile):
    """A study journal with a bad record before its last one."""


@dataclasses.dataclass(frozen=True)
class JournalCheck:
    """What :func:`check_journal` found.

    Attributes
    ----------
    records : int
        Complete, parseable records before the first problem.
    good_bytes : int
        Bytes those records take (the file is sound up to here).
    size : int
        File size.
    bad_line : int or None
        1-based line number of the first bad record, if any.
    bad_is_last : bool
        Whether no sound record follows it (a torn or junk tail, repaired on open).
    reason : str
    """

    records: int
    good_bytes: int
    size: int
    bad_line: Optional[int] = None
    bad_is_last: bool = False
    reason: str = ""

    @property
    def sound(self) -> bool:
        return self.bad_line is None


def _parse(line: bytes) -> Optional[str]:
    """None if ``line`` (with its newline) is one JSON object, else why not."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "bytes that are not UTF-8 text"
    except ValueError as exc:
        return f"not JSON ({exc.msg})"
    if not isinstance(obj, dict) or "op_code" not in obj:
        return "JSON that is not an Optuna journal record"
    return None


def check_journal(path: str) -> JournalCheck:
    """Scan a journal file; never modifies it."""
    size = os.path.getsize(path)
    records, good = 0, 0
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    # split leaves the text after the last newline (b"" for a sound file) at the end
    complete, tail = lines[:-1], lines[-1]
    for i, line in enumerate(complete):
        reason = _parse(line + b"\n")
        if reason is not None:
            # a tail: no sound record after the bad one (junk appended, a torn write)
            last = not any(_parse(later + b"\n") is None for later in complete[i + 1:])
            return JournalCheck(records, good, size, bad_line=i + 1, bad_is_last=last,
                                reason=reason)
        records += 1
        good += len(line) + 1
    if tail:
        reason = "a record cut off before its end (no newline)"
        if _parse(tail + b"\n") is None:
            reason = "a complete record without its newline"
        return JournalCheck(records, good, size, bad_line=len(complete) + 1, bad_is_last=True,
                            reason=reason)
    return JournalCheck(records, good, size)


def repair_journal(path: str, *, cut_middle: bool = False) -> Optional[str]:
    """Cut ``path`` back to its last sound record; returns what was done (None: nothing).

    A torn last line is always repaired.  A bad middle line is repaired
    only with ``cut_middle`` (``tff-ser hpo repair``): the file is cut
    before it, and that line and every later one go to ``<path>.torn``.
    The cut bytes are appended to ``<path>.torn``, never thrown away.
    """
    check = check_journal(path)
    if check.sound:
        return None
    if not check.bad_is_last and not cut_middle:
        raise JournalCorrupt(_middle_message(path, check))
    with open(path, "rb") as f:
        f.seek(check.good_bytes)
        cut = f.read()
    if check.reason == "a complete record without its newline":
        with open(path, "ab") as f:
            f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        return f"{path}: its last record lacked a newline; added it ({check.records + 1} records)"
    torn = path + TORN_SUFFIX
    with open(torn, "ab") as f:
        f.write(cut)
        f.flush()
        os.fsync(f.fileno())
    os.truncate(path, check.good_bytes)
    moved_lines = cut.count(b"\n") + (0 if cut.endswith(b"\n") else 1)
    return (f"{path}: line {check.bad_line} held {check.reason}; the journal is cut back to its "
            f"{check.records} complete record(s) and the {len(cut)} cut byte(s) "
            f"({moved_lines} line(s)) are kept in {torn}")


def _middle_message(path: str, check: JournalCheck) -> str:
    return (f"study journal {path}: line {check.bad_line} holds {check.reason}, with more "
            f"records after it (lines 1..{check.records} are sound). Run "
            f"`tff-ser hpo repair --storage {path}` to cut the journal before that line (the "
            f"cut lines are kept in {path}{TORN_SUFFIX}; finished points among them are "
            "trained again by the next `hpo run`), or restore the file from a backup")


def _lock_context(lock):
    try:  # Optuna's own helper (acquire with retries, release)
        from optuna.storages.journal._file import get_lock_file
        return get_lock_file(lock)
    except ImportError:  # pragma: no cover - older/newer Optuna layouts
        import contextlib

        @contextlib.contextmanager
        def held():
            lock.acquire()
            try:
                yield
            finally:
                lock.release()
        return held()


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


class DurableJournalFileBackend(JournalFileBackend):
    """Optuna's journal file backend, with torn tails repaired and whole-or-nothing appends."""

    def __init__(self, file_path: str, lock_obj=None) -> None:
        super().__init__(file_path, lock_obj)
        with _lock_context(self._lock):
            self._repair_tail()

    def _repair_tail(self) -> None:
        done = repair_journal(self._file_path)
        if done:
            _LOG.warning("repaired the study journal: %s", done)

    def append_logs(self, logs: List[Dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs)
                + "\n").encode("utf-8")
        with _lock_context(self._lock):
            if not _ends_with_newline(self._file_path):
                self._repair_tail()  # never append after a torn line
            before = os.path.getsize(self._file_path)
            try:
                with open(self._file_path, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                try:
                    os.truncate(self._file_path, before)
                except OSError:
                    pass  # the next open repairs the torn tail instead
                if exc.errno in (28, 122):  # ENOSPC, EDQUOT
                    raise DiskFull(
                        f"the disk holding the study journal {self._file_path} is full: the "
                        "last record was not written and the journal is intact up to it. "
                        "Free some space and run the same command again; finished points are "
                        "kept") from exc
                raise
