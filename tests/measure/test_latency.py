"""Latency probe: sane figures on CPU with a tiny model."""

from __future__ import annotations

import pytest

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.latency import LatencyTracker, percentile, time_step
from tsfbench.measure.workload import build_workload


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 10) == pytest.approx(1.4)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_latency_figures_are_sane(mode: str, tiny: dict[str, object]) -> None:
    settings = ProbeSettings(mode=mode, batch=2)
    work = build_workload(RunConfig(attention="divided", frames=2, size=32), settings, "cpu", tiny)
    latency = time_step(work.step, batch=2, iterations=7, warmup=1)
    assert latency.iterations == 7
    assert 0 < latency.p10_ms <= latency.median_ms <= latency.p90_ms
    assert latency.mean_ms > 0 and latency.std_ms >= 0
    assert latency.throughput == pytest.approx(2 / (latency.median_ms / 1e3))


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
