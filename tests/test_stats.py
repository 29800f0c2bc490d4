"""The statistics of kept samples agree with numpy and scipy on fixed samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tsfbench import stats

RNG = np.random.default_rng(1234)
SAMPLES = (100 + RNG.gamma(2.0, 3.0, size=60)).tolist()  # right-skewed, like step times


@pytest.mark.parametrize("q", [10, 50, 90, 95, 99])
def test_percentiles_are_numpys_linear_interpolation(q: float) -> None:
    assert stats.percentile(SAMPLES, q) == pytest.approx(np.percentile(SAMPLES, q), rel=1e-12)


def test_summary_fields_match_numpy_and_leave_unreached_tails_empty() -> None:
    summary = stats.summarize(SAMPLES[:12])
    values = np.asarray(SAMPLES[:12])
    assert summary["median_ms"] == pytest.approx(np.median(values))
    assert summary["mean_ms"] == pytest.approx(values.mean())
    assert summary["std_ms"] == pytest.approx(values.std(ddof=1))
    assert summary["min_ms"] == values.min()
    assert summary["p90_ms"] == pytest.approx(np.percentile(values, 90))
    assert summary["p95_ms"] is None and summary["p99_ms"] is None  # 12 samples reach p90 only
    assert summary["iterations"] == 12


@pytest.mark.parametrize("n", [6, 10, 25, 60])
def test_the_median_interval_is_the_binomial_order_statistic_pair(n: int) -> None:
    low, high = stats.median_ci(SAMPLES[:n])
    ordered = sorted(SAMPLES[:n])
    # scipy's binomial: the pair (x_k, x_{n+1-k}) covers the median with 1 - 2 P(B <= k - 1).
    k = ordered.index(low) + 1
    assert high == ordered[n - k]
    coverage = 1 - 2 * scipy_stats.binom.cdf(k - 1, n, 0.5)
    wider = 1 - 2 * scipy_stats.binom.cdf(k, n, 0.5)  # one step narrower falls short
    assert coverage >= 0.95 > wider


def test_five_samples_give_no_95_percent_interval_rather_than_a_narrower_one() -> None:
    assert stats.median_ci(SAMPLES[:5]) is None
    assert stats.summarize(SAMPLES[:5])["ci_low_ms"] is None
    assert stats.median_ci(SAMPLES[:6]) == (min(SAMPLES[:6]), max(SAMPLES[:6]))


def test_the_median_interval_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    true_median = 2.0 * np.log(2)  # exponential with scale 2
    draws = rng.exponential(2.0, size=(2000, 15))
    covered = sum(low <= true_median <= high for low, high in map(stats.median_ci, draws.tolist()))
    assert 0.95 <= covered / 2000 <= 0.99  # 15 samples: the exact coverage is 96.5%


def test_the_ratio_interval_agrees_with_scipys_bootstrap_within_monte_carlo_error() -> None:
    base, new = SAMPLES[:30], [x * 1.08 + 1 for x in SAMPLES[30:60]]
    ratio, low, high = stats.ratio_ci(base, new, resamples=20000)
    reference = scipy_stats.bootstrap(
        (base, new),
        lambda b, n, axis: np.median(n, axis=axis) / np.median(b, axis=axis),
        method="percentile",
        n_resamples=20000,
        rng=np.random.default_rng(99),
    ).confidence_interval
    assert ratio == pytest.approx(np.median(new) / np.median(base))
    width = reference.high - reference.low
    assert low == pytest.approx(reference.low, abs=0.05 * width)
    assert high == pytest.approx(reference.high, abs=0.05 * width)


def test_the_ratio_interval_is_the_same_for_the_same_samples() -> None:
    assert stats.ratio_ci(SAMPLES[:20], SAMPLES[20:40]) == stats.ratio_ci(
        SAMPLES[:20], SAMPLES[20:40]
    )


def test_half_width_is_relative_to_the_median() -> None:
    summary = {"ci_low_ms": 90.0, "ci_high_ms": 104.0, "median_ms": 100.0}
    assert stats.half_width(summary) == pytest.approx(0.10)
    assert stats.half_width({**summary, "ci_low_ms": None}) is None


def test_each_step_is_divided_by_the_canary_readings_just_before_and_after_it() -> None:
    """Readings between every step: each step gets the mean of its two neighbours; readings
    only at the window's ends: every step gets their mean; one reading: itself."""
    assert stats.step_speeds(3, [10.0, 20.0, 30.0, 40.0], [0, 1, 2, 3]) == [15.0, 25.0, 35.0]
    assert stats.step_speeds(3, [10.0, 40.0], [0, 3]) == [25.0, 25.0, 25.0]
    assert stats.step_speeds(4, [10.0, 20.0, 40.0], [0, 2, 4]) == [15.0, 15.0, 30.0, 30.0]
    assert stats.step_speeds(2, [12.0], [0]) == [12.0, 12.0]
    with pytest.raises(ValueError):
        stats.step_speeds(2, [12.0, 13.0], [0])


def test_a_drift_note_only_beyond_ten_percent_between_rows() -> None:
    assert stats.drift_note([38.0, 40.0, 41.5]) is None
    assert stats.drift_note([40.0]) is None and stats.drift_note([]) is None
    note = stats.drift_note([38.0, float("nan"), 50.0, 44.0])
    assert note is not None and "1.32x" in note and "38.0-50.0 ms" in note
