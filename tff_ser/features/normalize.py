"""Per-feature standardisation fitted on training clients only."""
from __future__ import annotations

from typing import Optional

import numpy as np


class Standardizer:
    """Zero-mean, unit-variance scaling of each feature (the last axis).

    Statistics are taken over every axis but the last: over clips for
    ``(n, 136)`` clip statistics, over clips *and* windows for ``(n, 100, 34)``
    frame features, so each of the 34 features gets one mean and one std.

    Fit it on the **training clients' clips only**. The validation clients
    are other speakers; fitting on them lets their mean and spread leak into
    training and overstates validation accuracy on unseen speakers -- the
    quantity paper 000's HPO optimises. In a real federation the server
    could not see those statistics either.

    Features whose training std is below ``min_std`` (constant columns, such
    as a padding-only feature) are only centred, not divided.

    Parameters
    ----------
    min_std : float, default 1e-8

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train, val = rng.normal(5, 2, (100, 3)), rng.normal(5, 2, (20, 3))
    >>> s = Standardizer().fit(train)
    >>> bool(np.allclose(s.transform(train).mean(axis=0), 0, atol=1e-6))
    True
    >>> s.transform(val).shape
    (20, 3)
    """

    def __init__(self, min_std: float = 1e-8):
        if not min_std >= 0:
            raise ValueError(f"min_std must be >= 0, got {min_std!r}")
        self.min_std = float(min_std)
        self.mean: Optional[np.ndarray] = None
        self.std: Optional[np.ndarray] = None

    @property
    def fitted(self) -> bool:
        return self.mean is not None

    def fit(self, x) -> "Standardizer":
        """Learn per-feature mean and std from ``x`` (training clips only)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"fit needs an (n_clips, ..., n_features) array with at least "
                             f"one clip, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("fit got NaN or infinite features; check the feature extraction")
        axes = tuple(range(x.ndim - 1))
        self.mean = x.mean(axis=axes)
        std = x.std(axis=axes)
        self.std = np.where(std < self.min_std, 1.0, std)
        return self

    def fit_moments(self, count, total, total_sq) -> "Standardizer":
        """Mean and std from sufficient statistics: clips x frames counted, per-feature sums and
        sums of squares (:func:`moments`), e.g. summed over federated clients -- only these
        aggregates leave a client.  Equal to :meth:`fit` on the pooled data up to rounding."""
        count = float(count)
        if not count > 0:
            raise ValueError("fit_moments needs a positive count (no clips were summed)")
        total, total_sq = np.asarray(total, np.float64), np.asarray(total_sq, np.float64)
        self.mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - self.mean ** 2, 0.0))
        self.std = np.where(std < self.min_std, 1.0, std)
        return self

    def transform(self, x) -> np.ndarray:
        """``(x - mean) / std`` with the fitted statistics, as float32."""
        if not self.fitted:
            raise ValueError("this Standardizer is not fitted; call fit(x_train) first")
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"expected {self.mean.shape[0]} features on the last axis, got "
                             f"shape {x.shape}; fit and transform the same feature kind")
        return ((x - self.mean) / self.std).astype(np.float32)

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def to_dict(self) -> dict:
        """JSON-serialisable statistics (for saving next to a model)."""
        if not self.fitted:
            raise ValueError("this Standardizer is not fitted; nothing to save")
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "min_std": self.min_std}

    @classmethod
    def from_dict(cls, state: dict) -> "Standardizer":
        """Inverse of :meth:`to_dict`."""
        try:
            mean = np.asarray(state["mean"], dtype=np.float64)
            std = np.asarray(state["std"], dtype=np.float64)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a Standardizer state (needs 'mean' and 'std'): {exc}") from None
        if mean.ndim != 1 or mean.shape != std.shape or np.any(std <= 0):
            raise ValueError(f"invalid Standardizer state: mean {mean.shape}, std {std.shape} "
                             "(std must be positive)")
        scaler = cls(min_std=state.get("min_std", 1e-8))
        scaler.mean, scaler.std = mean, std
        return scaler


#: How a task standardizes its features (:func:`tff_ser.task.make_task`):
#: ``"pooled"`` -- statistics of the training clients' clips pooled (the papers'
#: reproduction; a real federation could not pool them); ``"federated"`` -- the same
#: statistics from per-client sums, sums of squares and counts (only aggregates leave a
#: client); ``"per_client"`` -- each client (and each held-out speaker) with its own.
NORMALIZATIONS = ("pooled", "federated", "per_client")


def moments(x):
    """``(count, sum, sum of squares)`` of ``x`` over every axis but the last (float64).

    What one client contributes to the ``"federated"`` statistics.
    """
    x = np.asarray(x, dtype=np.float64)
    axes = tuple(range(x.ndim - 1))
    count = float(np.prod([x.shape[a] for a in axes]))
    return count, x.sum(axis=axes), np.square(x).sum(axis=axes)
