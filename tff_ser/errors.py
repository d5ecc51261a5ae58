"""The package's own error types: each message says what was wrong and what to do.

The CLI prints these as one or two lines (``--debug`` shows the traceback);
library users catch them like any exception.  They subclass the built-in
type a caller would already catch (``ValueError`` for bad input, ``OSError``
for the disk), so code written against earlier releases keeps working.
"""
from __future__ import annotations

from typing import Optional


class TffSerError(Exception):
    """Base class: a problem of the input, the disk or the run, not a bug of tff_ser."""


class OutputError(TffSerError, OSError):
    """An output or checkpoint folder that cannot take the run's files (checked before training)."""


class OutputExists(TffSerError, FileExistsError):
    """An output folder already holds an earlier run's results."""


class DiskFull(TffSerError, OSError):
    """The disk filled up mid-run; the message says what was saved and how to resume."""


class CorruptFile(TffSerError, ValueError):
    """A checkpoint, journal or result file that cannot be read; the message names it."""


class TrainingDiverged(TffSerError, ArithmeticError):
    """Training produced non-finite numbers, or every client update was rejected."""


class CorpusProblems(TffSerError, ValueError):
    """``strict=True`` and the corpus has skipped or suspicious clips."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training; the message says where it stopped.

    A ``KeyboardInterrupt`` so that ``except Exception`` blocks (the HPO's
    point retries) never swallow it.
    """


def interrupt_in_chain(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised because of, a ``KeyboardInterrupt``.

    Ctrl-C (or SIGTERM, which the CLI turns into one) that lands inside a C
    call TensorFlow or NumPy makes from Python comes out as a ``SystemError``
    ("returned a result with an exception set") whose cause is the
    ``KeyboardInterrupt``: it is an interrupt all the same.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


#: Why the CLI's signal handler asked the run to stop (``None``: it has not).
_stop_reason: Optional[str] = None


def request_stop(reason: Optional[str]) -> None:
    """Record that a signal asked the run to stop (the CLI's SIGINT / SIGTERM handler; None: clear)."""
    global _stop_reason
    _stop_reason = reason


def check_stop_requested() -> None:
    """Raise the ``KeyboardInterrupt`` of a stop request whose own exception was lost.

    Python raises a signal handler's exception in whatever Python code runs
    next.  When that is a finalizer -- TensorFlow runs many, the ``__del__`` of
    its functions and resources -- Python prints it as "Exception ignored in"
    and carries on, and a run sent SIGTERM would go on to the end.  The
    training loop calls this before each round and the experiment runner
    before each run, so such a run stops one round later instead.
    """
    if _stop_reason is not None:
        raise KeyboardInterrupt(_stop_reason)
