"""The machine-speed canary: what it runs, when a window reads it, and what a row keeps."""

from __future__ import annotations

import itertools
import statistics

import pytest
import torch

from tsfbench.measure import canary as canaries
from tsfbench.measure.canary import Canary
from tsfbench.measure.latency import Latency, timed


def test_the_canary_runs_on_every_usable_cpu_whatever_threads_the_step_uses(monkeypatch):
    """A one-thread run must not slow its own canary, or compare would divide the slowdown
    away: the product runs with the CPUs the process may use, and the step's count comes back."""
    monkeypatch.setattr(canaries, "usable_cpus", lambda: 3)
    seen = []
    real_mm = torch.mm
    monkeypatch.setattr(
        torch, "mm", lambda a, b: (seen.append(torch.get_num_threads()), real_mm(a, b))[1]
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probe = Canary("cpu")
        probe.read()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert seen == [3] * canaries.REPEATS
    assert "3 threads" in probe.kind and "784x768x3072" in probe.kind


def test_a_reading_is_the_median_product_time_and_reset_starts_a_new_window():
    probe = Canary("cpu")
    probe.read(0)
    probe.read(4)
    readings = probe.readings_ms()
    assert len(readings) == 2 and all(0 < ms < 60_000 for ms in readings)
    assert probe.positions() == [0, 4]
    probe.reset()
    assert probe.readings_ms() == [] and probe.positions() == []


class Log:
    """A fake canary and step writing one shared log, to check the order of events."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.positions: list[int] = []

    def read(self, after_steps: int = 0) -> None:
        self.events.append("canary")
        self.positions.append(after_steps)

    def step(self) -> None:
        self.events.append("step")


EVERY_STEP = ["canary", "step"] * 3 + ["canary"]
AT_THE_ENDS = ["canary", "step", "step", "step", "canary"]


@pytest.mark.parametrize(
    "every, expected, positions", [(0.0, EVERY_STEP, [0, 1, 2, 3]), (1e9, AT_THE_ENDS, [0, 3])]
)
def test_a_window_reads_the_canary_at_its_ends_and_between_steps_never_inside_one(
    monkeypatch, every, expected, positions
):
    """Each reading keeps the number of steps done before it: which steps it brackets."""
    monkeypatch.setattr(canaries, "EVERY", every)
    log = Log()
    times, reason = timed(log.step, 3, canary=log)  # type: ignore[arg-type]
    assert log.events == expected and len(times) == 3 and reason == "iterations"
    assert log.positions == positions


def test_an_auto_window_reads_the_canary_once_more_after_its_last_step(monkeypatch):
    monkeypatch.setattr(canaries, "EVERY", 1e9)
    log = Log()
    ticks = itertools.count(0, 100)  # every look at the clock: 100 s later, so max_time ends it
    times, reason = timed(log.step, "auto", max_time=1, clock=lambda: next(ticks), canary=log)  # type: ignore[arg-type]
    assert reason in ("max_time", "target_ci")
    assert log.events == ["canary", *["step"] * len(times), "canary"]


def test_a_row_keeps_its_canary_readings_their_median_and_which_product():
    kind = "float32 784x768x3072 matmul, 2 threads"
    readings = Latency((5.0,) * 6, canary_ms=(20.0, 24.0, 21.0), canary_kind=kind,
                       canary_steps=(0, 3, 6))  # fmt: skip
    record = readings.as_record()
    assert record["canary_samples_ms"] == [20.0, 24.0, 21.0]
    assert record["canary_steps"] == [0, 3, 6]
    assert record["canary_ms"] == statistics.median([20.0, 24.0, 21.0])
    assert record["canary_kind"] == kind
    bare = Latency((5.0,) * 6).as_record()
    assert bare["canary_ms"] is None and bare["canary_samples_ms"] is None
    assert bare["canary_kind"] is None and bare["canary_steps"] is None


def test_a_step_that_raises_is_not_followed_by_a_canary_reading():
    """An out-of-memory step is the row's answer: no reading after it could raise in its place."""
    log = Log()

    def failing() -> None:
        log.step()
        raise MemoryError("out of memory")

    with pytest.raises(MemoryError):
        timed(failing, 3, canary=log)  # type: ignore[arg-type]
    assert log.events == ["canary", "step"]
