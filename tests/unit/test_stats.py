"""Spread over seeds: the t-interval and the tests a README reading rests on."""
import math

import numpy as np
import pytest

from tff_ser.stats import compare, mean_interval


def test_the_t_interval_of_three_values_matches_the_textbook():
    iv = mean_interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2 dof) = 4.302653
    assert (iv.n, iv.mean, iv.sd) == (3, 2.0, 1.0)
    assert iv.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert iv.format() == "2.000 ± 1.000"


def test_one_value_has_no_interval_and_says_so():
    iv = mean_interval([0.7])
    assert iv.n == 1 and math.isnan(iv.sd) and math.isnan(iv.low)
    assert iv.format() == "0.700" and iv.format_interval() == "n = 1"


def test_a_missing_score_is_refused_not_averaged_over():
    with pytest.raises(ValueError, match="NaN"):
        mean_interval([0.5, float("nan"), 0.6])
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])


def test_separated_intervals_are_a_difference_and_overlapping_ones_are_not():
    far = compare({0: 0.70, 1: 0.71, 2: 0.72}, {0: 0.50, 1: 0.51, 2: 0.52})
    assert far.intervals_overlap is False and far.differs
    assert "intervals separate" in far.reading("a", "b")
    rng = np.random.default_rng(0)
    noise = {s: 0.6 + v for s, v in enumerate(rng.normal(0, 0.05, 3))}
    near = compare(noise, {s: v + rng.normal(0, 0.05) for s, v in noise.items()})
    assert near.intervals_overlap is True


def test_the_paired_test_finds_a_consistent_gain_that_the_intervals_hide():
    # a large spread between seeds, but b beats a by ~0.02 on every seed
    a = {0: 0.50, 1: 0.60, 2: 0.70, 3: 0.55}
    b = {s: v + 0.02 + 0.001 * s for s, v in a.items()}
    c = compare(b, a)
    assert c.intervals_overlap is True
    assert c.paired_n == 4 and c.paired_p < 0.01 and c.differs
    assert "paired t-test over 4 seeds" in c.reading("b", "a")


def test_one_seed_per_side_claims_nothing():
    c = compare({0: 0.9}, {0: 0.1})
    assert not c.differs and "no difference claimed" in c.reading("a", "b")


def test_results_view_names_the_run_when_two_settings_would_read_the_same():
    import pandas as pd

    from tff_ser.experiments.report import results_view
    rows = [{"condition": c, "model": "darts_derived", "setup": "derived", "mode": "federated",
             "clients": 73, "seed": s, "f1_macro": f, "uar": f}
            for c, scores in (("derived-darts-federated", (0.30, 0.34)),
                              ("derived-fednas-federated", (0.26, 0.28)))
            for s, f in enumerate(scores)]
    view = results_view(pd.DataFrame(rows))
    assert list(view["run"]) == ["derived-darts-federated", "derived-fednas-federated"]
    assert list(view["F1 (macro)"]) == ["0.320 ± 0.028", "0.270 ± 0.014"]
    # settings that model, setup and clients tell apart keep paper 001's columns
    rows[2:] = [dict(r, condition="derived-darts-centralized", mode="centralized", clients=None)
                for r in rows[2:]]
    assert "run" not in results_view(pd.DataFrame(rows))
