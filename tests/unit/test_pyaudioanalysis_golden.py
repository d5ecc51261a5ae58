"""tff_ser's 34 short-term features against pyAudioAnalysis 0.3.14 itself.

``tests/golden/pyaudioanalysis_0.3.14.npz`` holds the library's own output
(``ShortTermFeatures.feature_extraction``, deltas off) and its input signals;
``tests/golden/make_pyaudioanalysis_golden.py`` made it with the real library.
"""
import pathlib

import numpy as np
import pytest

from tff_ser.features.pyaudioanalysis import FEATURE_NAMES, short_term_features

GOLDEN = pathlib.Path(__file__).parents[1] / "golden" / "pyaudioanalysis_0.3.14.npz"


def _golden():
    data = np.load(GOLDEN)
    sr, window, step = data["params"]
    names = [k.split("/", 1)[1] for k in data.files if k.startswith("features/")]
    return data, int(sr), float(window), float(step), names


def test_the_golden_file_has_the_libraries_34_feature_names_in_our_order():
    data, *_ = _golden()
    assert len(data["names"]) == 34
    assert list(data["names"]) == list(FEATURE_NAMES)


@pytest.mark.parametrize("clip", _golden()[4])
def test_short_term_features_equal_pyaudioanalysis_to_1e_5_relative(clip):
    data, sr, window, step, _ = _golden()
    pcm = data[f"signal/{clip}"].astype(np.float64)
    expected = data[f"features/{clip}"]
    ours = short_term_features(pcm / 32768.0, sr, window=window, step=step).astype(np.float64)
    assert ours.shape == expected.shape
    # relative 1e-5; an absolute floor of 1e-6 for features that are ~0 (float32 output)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
