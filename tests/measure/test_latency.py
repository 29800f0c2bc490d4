"""Latency probe: kept samples, the auto plan's stopping rules, sane figures on a tiny model."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from types import SimpleNamespace

import pytest

from tsfbench import stats
from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure import latency as latency_module
from tsfbench.measure.latency import (
    MIN_AUTO_ITERATIONS,
    Latency,
    LatencyTracker,
    settled,
    time_step,
    timed,
    warm_up,
)
from tsfbench.measure.workload import build_workload


class FakeClock:
    """A clock that only the fake step moves: each step takes the next of `durations` (ms)."""

    def __init__(self, durations: Iterable[float]) -> None:
        self.durations, self.ns, self.steps = iter(durations), 0, 0

    def step(self) -> None:
        self.steps += 1
        self.ns += int(next(self.durations) * 1e6)

    def perf_counter_ns(self) -> int:
        return self.ns

    def perf_counter(self) -> float:
        return self.ns / 1e9


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterable[FakeClock]:
    def install(durations: Iterable[float]) -> FakeClock:
        fake = FakeClock(durations)
        monkeypatch.setattr(latency_module, "time", SimpleNamespace(**{
            "perf_counter_ns": fake.perf_counter_ns, "perf_counter": fake.perf_counter,
        }))  # fmt: skip
        return fake

    return install  # type: ignore[return-value]


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_latency_figures_are_sane(mode: str, tiny: dict[str, object]) -> None:
    settings = ProbeSettings(mode=mode, batch=2)
    work = build_workload(RunConfig(attention="divided", frames=2, size=32), settings, "cpu", tiny)
    latency = time_step(work.step, batch=2, iterations=7, warmup=1)
    record = latency.as_record()
    assert latency.iterations == 7 == len(record["latency_samples_ms"])
    assert len(record["latency_warmup_ms"]) == 1 == record["warmup_steps"]
    assert 0 < record["latency_min_ms"] <= record["latency_median_ms"]
    assert record["latency_ci_low_ms"] <= latency.median_ms <= record["latency_ci_high_ms"]
    assert record["throughput"] == pytest.approx(2 / (latency.median_ms / 1e3))
    assert record["stop_reason"] == "iterations"


def test_the_record_keeps_every_sample_in_order_and_derives_its_statistics() -> None:
    samples = (5.0, 3.0, 4.0, 9.0, 4.5, 4.2, 4.1)
    record = Latency(samples, warmup_ms=(30.0, 6.0), batch=4).as_record()
    assert record["latency_samples_ms"] == list(samples)  # measurement order, not sorted
    assert record["latency_warmup_ms"] == [30.0, 6.0] and record["warmup_steps"] == 2
    summary = stats.summarize(samples)
    assert record["latency_median_ms"] == summary["median_ms"] == 4.2
    assert (record["latency_ci_low_ms"], record["latency_ci_high_ms"]) == (3.0, 9.0)
    assert record["ci_half_width"] == pytest.approx(stats.half_width(summary))
    assert record["latency_p90_ms"] is None  # 7 samples do not reach p90
    assert record["latency_ci_method"] == "order-statistic"


def test_a_run_without_samples_gives_every_figure_key_as_none() -> None:
    record = Latency(()).as_record()
    assert {"latency_median_ms", "latency_samples_ms", "ci_half_width", "stop_reason"} <= set(
        record
    )
    assert all(value is None for key, value in record.items())


def test_auto_stops_once_the_interval_is_within_the_target(clock) -> None:
    fake = clock(itertools.cycle([100.0, 100.5, 99.5]))
    times, reason = timed(fake.step, "auto", target_ci=0.02, max_time=60)
    assert reason == "target_ci" and len(times) == MIN_AUTO_ITERATIONS  # stable from the start
    width = stats.half_width(stats.summarize(times))
    assert width is not None and width <= 0.02


def test_auto_stops_at_max_time_when_the_figure_stays_noisy_and_says_so(clock) -> None:
    fake = clock(itertools.cycle([100.0, 200.0, 150.0, 300.0]))
    times, reason = timed(fake.step, "auto", target_ci=0.001, max_time=2.0)
    assert reason == "max_time"
    assert sum(times) >= 2000 and sum(times) - times[-1] < 2000  # stopped at the first look past it


def test_auto_times_at_least_six_steps_even_past_max_time(clock) -> None:
    fake = clock(itertools.repeat(5000.0))
    times, reason = timed(fake.step, "auto", max_time=1.0)
    assert len(times) == MIN_AUTO_ITERATIONS == 6 and reason == "target_ci"  # identical: 0 wide


def test_a_fixed_count_times_exactly_that_many_steps(clock) -> None:
    fake = clock(itertools.repeat(10.0))
    times, reason = timed(fake.step, 4)
    assert len(times) == 4 == fake.steps and reason == "iterations"


def test_auto_warmup_runs_until_the_last_three_steps_agree_within_5_percent(clock) -> None:
    fake = clock([900.0, 300.0, 120.0, 104.0, 100.0, 102.0, 101.0, 100.0])
    warmed = warm_up(fake.step, "auto", max_warmup=20)
    assert warmed == [900.0, 300.0, 120.0, 104.0, 100.0, 102.0]  # 104, 100, 102: within 5%
    assert settled(warmed) and not settled(warmed[:-1])


def test_auto_warmup_stops_at_max_warmup(clock) -> None:
    fake = clock(itertools.cycle([100.0, 150.0]))
    assert len(warm_up(fake.step, "auto", max_warmup=7)) == 7 == fake.steps


def test_tracker_times_each_tracked_block() -> None:
    tracker = LatencyTracker("cpu")
    for _ in range(3):
        with tracker.track():
            sum(range(10_000))
    assert len(tracker.times_ms()) == 3
    assert tracker.latency(batch=1).iterations == 3


def test_notes_on_the_timed_step_are_one_field_of_the_record() -> None:
    tracker = LatencyTracker("cpu")
    with tracker.track():
        pass
    assert tracker.latency(batch=1).as_record()["notes"] is None
    noted = tracker.latency(batch=1, notes=["a sync per step", "compiled"])
    assert noted.as_record()["notes"] == "a sync per step; compiled"
