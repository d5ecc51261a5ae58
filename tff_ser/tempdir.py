"""A temp folder per ``tff-ser`` process, removed at exit and swept after a kill.

TensorFlow's autograph writes one ``__autograph_generated_file*.py`` per
traced function into the temp directory and removes them only at a clean
exit, so every killed run left 11-47 of them behind (and the test suite,
which kills runs on purpose, 158).  The CLI (and the test suite) point
:mod:`tempfile` at ``<tmp>/tff_ser-<pid>-<random>/``: a clean exit removes
it, and the next process removes those whose process is gone.  Library
users' own processes are left alone (a notebook's temp files are its own).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from typing import List, Optional

from tff_ser.rundir import pid_alive

PREFIX = "tff_ser-"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_OURS: Optional[str] = None


def sweep_orphans(base: Optional[str] = None) -> List[str]:
    """Remove the private temp folders of ``tff-ser`` processes that are gone."""
    base = base or _system_tempdir()
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        m = _NAME.match(name)
        path = os.path.join(base, name)
        if m and path != _OURS and not pid_alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _system_tempdir() -> str:
    if _OURS is not None:
        return os.path.dirname(_OURS)
    return tempfile.gettempdir()


def use_private_tempdir() -> str:
    """Point :mod:`tempfile` (hence autograph) at a folder of this process; returns it.

    Idempotent.  Sweeps the folders of dead processes first.
    """
    global _OURS
    if _OURS is not None and os.path.isdir(_OURS):
        return _OURS
    base = tempfile.gettempdir()
    sweep_orphans(base)
    _OURS = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)
    # traversable, not listable: a folder made inside for another user (a test's
    # PostgreSQL server runs as `postgres`) must be reachable; what is made in
    # here keeps tempfile's own 0600/0700 modes
    os.chmod(_OURS, 0o711)
    tempfile.tempdir = _OURS
    atexit.register(_remove, _OURS, base)
    return _OURS


def _remove(path: str, base: str) -> None:
    # atexit runs last-registered first: autograph's own removals (registered
    # later) have run by now, so the folder holds only what nobody removed.
    global _OURS
    if tempfile.tempdir == path:
        tempfile.tempdir = base
    shutil.rmtree(path, ignore_errors=True)
    if _OURS == path:
        _OURS = None
