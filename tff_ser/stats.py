"""Spread over seeds (or folds): mean, standard deviation, t-interval, paired test.

A difference between two settings is claimed only when these say so: the
95 % t-intervals of the two means do not overlap, or a paired t-test over
the seeds both were run with (same seed = same initial weights, partition
and sampling) gives p < 0.05.  With one seed there is no interval, and the
functions say so instead of printing a spread of zero.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its sample sd and a two-sided t-interval.

    ``sd``, ``low`` and ``high`` are NaN when ``n < 2`` (no spread can be
    estimated from one value).
    """

    n: int
    mean: float
    sd: float
    low: float
    high: float
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def format(self, digits: int = 3) -> str:
        """``"0.689 ± 0.012"`` (mean ± sd), or ``"0.689"`` with one value."""
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"

    def format_interval(self, digits: int = 3) -> str:
        """``"[0.671, 0.707]"``, or ``"n = 1"`` when there is no interval."""
        if self.n < 2:
            return f"n = {self.n}"
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean, sample sd (ddof 1) and the t-interval ``mean ± t_{n-1} * sd / sqrt(n)``.

    NaN values are refused, not dropped: a run that produced no number must
    not shrink the sample silently.

    Raises
    ------
    ValueError
        If ``values`` is empty or holds NaN, or ``confidence`` is not in (0, 1).
    """
    from scipy import stats
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("no values to summarise")
    if np.isnan(x).any():
        raise ValueError(f"{int(np.isnan(x).sum())} of {x.size} values are NaN; a run without "
                         "a score must be rerun or removed explicitly, not averaged over")
    mean = float(x.mean())
    if x.size < 2:
        return Interval(1, mean, math.nan, math.nan, math.nan, confidence)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, x.size - 1)) * sd / math.sqrt(x.size)
    return Interval(int(x.size), mean, sd, mean - half, mean + half, confidence)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Setting a against setting b over seeds: difference of means and the tests."""

    n_a: int
    n_b: int
    diff: float                  # mean(a) - mean(b)
    intervals_overlap: Optional[bool]   # None when either side has one value
    paired_n: int                # seeds both sides were run with
    paired_p: Optional[float]    # paired t-test over those seeds (None if < 2)

    @property
    def differs(self) -> bool:
        """True only when the intervals separate or the paired test gives p < 0.05."""
        return (self.intervals_overlap is False) or (self.paired_p is not None
                                                     and self.paired_p < 0.05)

    @property
    def p_text(self) -> str:
        """The paired test's p as a table cell: ``p = 0.012``, ``p < 0.001``, or '' (none)."""
        if self.paired_p is None:
            return ""
        return "p < 0.001" if self.paired_p < 0.001 else f"p = {self.paired_p:.3f}"

    @property
    def verdict(self) -> str:
        """``a difference`` or ``no difference shown`` (:attr:`differs`)."""
        return "a difference" if self.differs else "no difference shown"

    def reading(self, a: str, b: str, metric: str = "F1") -> str:
        """One sentence a README can quote."""
        base = f"{a} - {b}: {metric} {self.diff:+.3f}"
        if self.n_a < 2 or self.n_b < 2:
            return (f"{base} (n = {self.n_a} / {self.n_b} seeds: no interval, "
                    "no difference claimed)")
        tests = ["95 % intervals " + ("overlap" if self.intervals_overlap else "separate")]
        if self.paired_p is not None:
            tests.append(f"paired t-test over {self.paired_n} seeds {self.p_text}")
        return f"{base} ({'; '.join(tests)}): {self.verdict}"


def compare(a: dict, b: dict, confidence: float = 0.95) -> Comparison:
    """Compare two settings given as ``{seed: value}``.

    The t-intervals use every seed of each side; the paired t-test
    (``scipy.stats.ttest_rel``) uses the seeds both sides share.
    """
    from scipy import stats
    ia, ib = mean_interval(list(a.values()), confidence), mean_interval(list(b.values()),
                                                                          confidence)
    overlap = None
    if ia.n >= 2 and ib.n >= 2:
        overlap = not (ia.high < ib.low or ib.high < ia.low)
    shared = sorted(set(a) & set(b))
    p = None
    if len(shared) >= 2:
        da = np.array([a[s] for s in shared], float)
        db = np.array([b[s] for s in shared], float)
        if np.allclose(da - db, (da - db)[0]):
            # constant differences: the t statistic is undefined (zero variance)
            p = 0.0 if not np.isclose((da - db)[0], 0.0) else 1.0
        else:
            p = float(stats.ttest_rel(da, db).pvalue)
    return Comparison(ia.n, ib.n, ia.mean - ib.mean, overlap, len(shared), p)
