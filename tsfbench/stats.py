"""Statistics of kept timing samples: percentiles, the median's confidence interval, and the
ratio of two medians with its interval.

Torch-free (numpy only), so `compare` and the report can judge stored samples without loading a
model. Two intervals, each chosen for what it answers:

- the median of one row: the distribution-free order-statistic interval (the pair of order
  statistics whose coverage is the binomial tail; exact for any continuous distribution, no
  resampling, no seed). It needs at least 6 samples at 95%: with 5, even (min, max) covers the
  median only 93.75% of the time, and then there is no interval (`None`), never a narrower one.
- the ratio of two rows' medians: a percentile bootstrap (each row resampled with replacement,
  a fixed seed, so the same samples always give the same interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 4000  # bootstrap resamples: the interval's ends move by < 0.5% of a typical width
SEED = 0
BLOCK_VALUES = 1_000_000  # resampled values held at once by ratio_ci
MEDIAN_CI_METHOD = "order-statistic"
RATIO_CI_METHOD = "bootstrap"
# A tail percentile is reported only where the samples reach it: p90 needs 10, p95 20, p99 100.
TAILS = (90, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def tail_reached(count: int, q: float) -> bool:
    """Whether `count` samples say anything about the q-th percentile beyond the maximum."""
    return count >= math.ceil(100 / (100 - q) - 1e-9)


def median_ci(
    samples: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The order-statistic interval of the median: [x_(k), x_(n+1-k)] with the largest k whose
    two binomial tails together stay within 1 - confidence; None when no k >= 1 qualifies."""
    ordered = sorted(samples)
    n = len(ordered)
    alpha = 1 - confidence
    k, tail = 0, 0.0
    # P(Binomial(n, 1/2) <= j), grown one term at a time while both tails stay within alpha.
    # Each term in logs, from the last (math.comb / 2**n on big integers took 0.5 s at n = 5000,
    # and an auto run asks after every few steps).
    log_term = -n * math.log(2)  # log(comb(n, 0) / 2**n)
    for j in range(n // 2):
        tail += math.exp(log_term)
        if 2 * tail > alpha:
            break
        k = j + 1
        log_term += math.log((n - j) / (j + 1))
    if k == 0:
        return None
    return ordered[k - 1], ordered[n - k]


def ratio_ci(
    base: Sequence[float],
    new: Sequence[float],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float, float]:
    """median(new) / median(base) and its percentile-bootstrap interval (fixed seed)."""
    if not base or not new:
        raise ValueError("ratio_ci needs samples on both sides")
    rng = np.random.default_rng(seed)
    base_a, new_a = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    # Resampled in blocks, so a row of a few thousand samples holds ~8 MB, not resamples x n.
    block = max(1, BLOCK_VALUES // max(base_a.size, new_a.size))
    ratios = np.concatenate(
        [
            np.median(rng.choice(new_a, (size, new_a.size)), axis=1)
            / np.median(rng.choice(base_a, (size, base_a.size)), axis=1)
            for size in (min(block, resamples - start) for start in range(0, resamples, block))
        ]
    )
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(np.median(new_a) / np.median(base_a)), float(low), float(high)


def step_speeds(steps: int, readings: Sequence[float], positions: Sequence[int]) -> list[float]:
    """The machine-speed canary at each of `steps` timed steps: the mean of the reading just
    before the step and the one just after it (`positions[j]`: the steps done when reading j was
    taken), or the one of them there is. A step's time divided by its speed is in canary units:
    the machine's drift over the window, and between windows, divided out."""
    if not readings or len(readings) != len(positions):
        raise ValueError("step_speeds needs one position per reading")
    pairs = sorted(zip(positions, readings, strict=True), key=lambda pair: pair[0])
    speeds = []
    for step in range(steps):
        before = [ms for done, ms in pairs if done <= step]
        after = [ms for done, ms in pairs if done > step]
        near = before[-1:] + after[:1]
        speeds.append(sum(near) / len(near))
    return speeds


def summarize(samples: Sequence[float]) -> dict[str, float | int | str | None]:
    """Every statistic a latency row carries, from its samples (ms), with the unit in each key.

    A tail percentile the samples do not reach and an interval they cannot give are None.
    """
    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        raise ValueError("summarize needs at least one sample")
    interval = median_ci(values.tolist())
    summary: dict[str, float | int | str | None] = {
        "median_ms": float(np.median(values)),
        **{
            f"p{q}_ms": percentile(values, q) if tail_reached(values.size, q) else None
            for q in TAILS
        },
        "mean_ms": float(values.mean()),
        "std_ms": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min_ms": float(values.min()),
        "ci_low_ms": None if interval is None else interval[0],
        "ci_high_ms": None if interval is None else interval[1],
        "ci_method": MEDIAN_CI_METHOD,
        "iterations": int(values.size),
    }
    return summary


def half_width(summary: dict[str, float | int | str | None]) -> float | None:
    """The median interval's larger half, as a fraction of the median (None without one)."""
    low, high, median = summary["ci_low_ms"], summary["ci_high_ms"], summary["median_ms"]
    if low is None or high is None or not median:
        return None
    return max(float(median) - float(low), float(high) - float(median)) / float(median)


def median_text(
    median: float | None, low: float | None, high: float | None, digits: int = 1
) -> str | None:
    """`123.4 [120.1, 125.0]`: a median and its interval as the terminal and the report show it
    (the median alone where there is no interval, None without a median)."""
    if median is None or median != median:  # None or NaN: nothing measured
        return None
    text = f"{median:,.{digits}f}"
    if low is None or high is None or low != low or high != high:
        return text
    return f"{text} [{low:,.{digits}f}, {high:,.{digits}f}]"


# The machine-speed canary's spread across rows beyond which a run says its machine's speed
# varied (a quiet machine's canary medians agree within a few percent)
DRIFT = 1.10


def drift_note(canary_ms: Sequence[float]) -> str | None:
    """One sentence where the canary's medians of a run's rows (one machine, one product) span
    more than DRIFT: those rows were measured at different machine speeds. None otherwise."""
    values = [float(v) for v in canary_ms if v is not None and v == v and v > 0]
    if len(values) < 2 or max(values) <= min(values) * DRIFT:
        return None
    return (
        f"the machine's speed varied {max(values) / min(values):.2f}x between these rows (the "
        f"canary, a fixed matmul timed beside each row: {min(values):,.1f}-{max(values):,.1f} "
        "ms): rows measured at different times differ by that much for no reason of their own; "
        "`tsfbench compare` divides it out"
    )
