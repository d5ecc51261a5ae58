"""openSMILE's standard functionals (audEERING's ``opensmile`` package).

SER papers report against two of openSMILE's feature sets, computed here by
openSMILE itself (``opensmile.Smile(...).process_signal``), never
re-implemented:

* ``eGeMAPSv02`` -- the extended Geneva Minimalistic Acoustic Parameter Set
  (Eyben et al., 2016): 88 functionals per clip;
* ``ComParE_2016`` -- the INTERSPEECH 2016 ComParE set: 6,373 functionals per
  clip.

Each clip gives one row of functionals over the whole signal.  The extractor
is built once per process (``opensmile.Smile`` loads its config files) and
reused by every clip that process handles.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

#: Feature set name -> number of functionals.
OPENSMILE_SETS: Dict[str, int] = {"eGeMAPSv02": 88, "ComParE_2016": 6373}

_SMILES: dict = {}


def _smile(feature_set: str):
    if feature_set not in OPENSMILE_SETS:
        raise ValueError(f"unknown openSMILE feature set {feature_set!r}; choose one of "
                         f"{sorted(OPENSMILE_SETS)}")
    if feature_set not in _SMILES:
        try:
            import opensmile
        except ImportError as exc:  # pragma: no cover - the lock file installs it
            raise ImportError("the openSMILE feature kinds need the `opensmile` package "
                              "(in requirements/lock.txt: `make setup`)") from exc
        _SMILES[feature_set] = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, feature_set),
            feature_level=opensmile.FeatureLevel.Functionals)
    return _SMILES[feature_set]


def opensmile_functionals(signal: np.ndarray, sr: int, *, feature_set: str = "eGeMAPSv02",
                          window: float = 0.5) -> np.ndarray:
    """openSMILE's functionals of one mono clip: shape ``(OPENSMILE_SETS[feature_set],)``.

    Parameters
    ----------
    signal : ndarray
        Mono float signal in [-1, 1].
    sr : int
        Its sample rate (the pipeline reads audio at 16 kHz).
    feature_set : {"eGeMAPSv02", "ComParE_2016"}
    window : float
        Shortest clip in seconds; the pipeline zero-pads shorter clips to it
        (openSMILE's F0 and jitter need a few hundred ms of signal).
    """
    frame = _smile(feature_set).process_signal(np.asarray(signal, dtype=np.float32), sr)
    values = frame.to_numpy(dtype=np.float64).reshape(-1)
    if values.shape != (OPENSMILE_SETS[feature_set],):
        raise RuntimeError(f"openSMILE {feature_set} returned {values.shape} values, expected "
                           f"({OPENSMILE_SETS[feature_set]},)")
    return values.astype(np.float32)


def egemaps(signal: np.ndarray, sr: int, *, window: float = 0.5) -> np.ndarray:
    """eGeMAPSv02 functionals (88,) of one clip."""
    return opensmile_functionals(signal, sr, feature_set="eGeMAPSv02", window=window)


def compare_2016(signal: np.ndarray, sr: int, *, window: float = 0.5) -> np.ndarray:
    """ComParE_2016 functionals (6373,) of one clip."""
    return opensmile_functionals(signal, sr, feature_set="ComParE_2016", window=window)
