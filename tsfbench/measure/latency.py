"""Latency and throughput of a step: warm-up, then timed iterations.

On a GPU each iteration is timed with CUDA events (device time, no host round trip per step);
on CPU with `time.perf_counter_ns`. Either way the device is synchronised before the figures
are read, so queued work is never mistaken for finished work.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from tsfbench import stats
from tsfbench.measure import canary as canaries

AUTO = "auto"  # `iterations` / `warmup`: until the figure (or the step time) is stable
MIN_AUTO_ITERATIONS = 6  # the fewest samples with a 95% order-statistic interval of the median
MAX_SAMPLES = 5000  # a row keeps its samples: a few thousand floats at most
SETTLE_STEPS, SETTLE_WITHIN = 3, 0.05  # auto warm-up: the last 3 steps within 5% of each other


@dataclass(frozen=True)
class Latency:
    """The kept step times (ms, in measurement order) and the warm-up's, apart; every statistic
    is derived from them (`tsfbench.stats`), so a new one never needs a re-run. `stop_reason`:
    why timing stopped (`iterations`: a fixed count, `target_ci`, `max_time`, `max_samples`);
    `notes`: what the timed step includes beyond the model's work (a host-device sync);
    `canary_ms`: the machine-speed canary's readings beside the timed steps (`canary.Canary`,
    named by `canary_kind`), `canary_steps` the steps done before each, so two rows measured at
    different times can be set side by side (`stats.step_speeds`)."""

    samples_ms: tuple[float, ...]
    warmup_ms: tuple[float, ...] = ()
    batch: int = 1
    stop_reason: str = "iterations"
    notes: str | None = None
    canary_ms: tuple[float, ...] = ()
    canary_kind: str | None = None
    canary_steps: tuple[int, ...] = ()

    @property
    def summary(self) -> dict[str, float | int | str | None]:
        return stats.summarize(self.samples_ms)

    @property
    def median_ms(self) -> float:
        return float(self.summary["median_ms"])  # type: ignore[arg-type]

    @property
    def iterations(self) -> int:
        return len(self.samples_ms)

    @property
    def throughput(self) -> float:
        """Clips per second at the median step."""
        median = self.median_ms
        return self.batch / (median / 1e3) if median > 0 else math.inf

    def as_record(self) -> dict[str, object]:
        """The flat record; with no samples (a failed run's keys) every figure is None."""
        summary: dict[str, object] = (
            dict(stats.summarize(self.samples_ms))
            if self.samples_ms
            else dict.fromkeys(stats.summarize([1.0]))
        )
        figures = {f"latency_{k}": v for k, v in summary.items() if k.endswith("_ms")}
        return {
            "latency_samples_ms": list(self.samples_ms) if self.samples_ms else None,
            "latency_warmup_ms": list(self.warmup_ms) if self.samples_ms else None,
            **figures,
            "latency_ci_method": summary["ci_method"],
            "iterations": summary["iterations"],
            "throughput": self.throughput if self.samples_ms else None,
            "warmup_steps": len(self.warmup_ms) if self.samples_ms else None,
            "stop_reason": self.stop_reason if self.samples_ms else None,
            "ci_half_width": stats.half_width(summary) if self.samples_ms else None,  # type: ignore[arg-type]
            "notes": self.notes,
            "canary_ms": statistics.median(self.canary_ms) if self.canary_ms else None,
            "canary_samples_ms": list(self.canary_ms) if self.canary_ms else None,
            "canary_kind": self.canary_kind if self.canary_ms else None,
            "canary_steps": list(self.canary_steps) if self.canary_ms else None,
        }


class LatencyTracker:
    """`with tracker.track(): step()` times one iteration; `latency(batch)` sums them up."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.cuda = torch.device(device).type == "cuda"
        self._ns: list[int] = []
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    @contextmanager
    def track(self) -> Iterator[None]:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._events.append((start, end))
        else:
            begin = time.perf_counter_ns()
            yield
            self._ns.append(time.perf_counter_ns() - begin)

    @property
    def count(self) -> int:
        """Steps timed so far."""
        return len(self._events) if self.cuda else len(self._ns)

    def times_ms(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [start.elapsed_time(end) for start, end in self._events]
        return [ns / 1e6 for ns in self._ns]

    def latency(self, batch: int, notes: Sequence[str] = ()) -> Latency:
        return Latency(tuple(self.times_ms()), batch=batch, notes="; ".join(notes) or None)


def settled(times_ms: Sequence[float]) -> bool:
    """Whether the last SETTLE_STEPS step times are within SETTLE_WITHIN of each other."""
    last = times_ms[-SETTLE_STEPS:]
    return len(last) == SETTLE_STEPS and max(last) <= min(last) * (1 + SETTLE_WITHIN)


def warm_up(
    step: Callable[[], object],
    warmup: int | str,
    device: torch.device | str = "cpu",
    max_warmup: int = 20,
) -> list[float]:
    """Untimed steps (caches, autotuning, compilation), each one's time kept; `auto`: until the
    step time settles (`settled`) or `max_warmup` steps. Returns the steps' times (ms)."""
    tracker = LatencyTracker(device)
    if warmup != AUTO:
        for _ in range(int(warmup)):
            with tracker.track():
                step()
        return tracker.times_ms()
    times: list[float] = []
    while len(times) < max_warmup and not settled(times):
        with tracker.track():
            step()
        times = tracker.times_ms()  # synchronises: the next decision needs this step's time
    return times


def due(count: int) -> bool:
    """Whether an auto run judges its samples after `count` steps: every step up to 50, then
    every 5%: a judgement costs a device sync and grows with the samples."""
    return count >= MIN_AUTO_ITERATIONS and (count <= 50 or count % max(1, count // 20) == 0)


def timed(
    step: Callable[[], object],
    iterations: int | str,
    device: torch.device | str = "cpu",
    *,
    target_ci: float = 0.02,
    max_time: float = 10.0,
    clock: Callable[[], float] | None = None,
    canary: canaries.Canary | None = None,
) -> tuple[list[float], str]:
    """Time `step`: a fixed count, or `auto`: at least MIN_AUTO_ITERATIONS steps, then until the
    median's interval half-width is within `target_ci` (a fraction of the median) or `max_time`
    seconds have passed. Returns the times (ms) and why it stopped. With a `canary`, it is read
    before the first step, between steps every `canary.EVERY` seconds, and after the last (its
    products are never inside a timed step)."""
    tracker = LatencyTracker(device)
    beside = _Beside(canary)
    times, reason = _time_steps(step, iterations, tracker, beside, target_ci, max_time, clock)
    # the window's last reading, after its last step; none after a step that raised (an
    # out-of-memory step is the row's answer, and the canary must not raise in its place)
    beside.read(tracker.count)
    return times, reason


def _time_steps(
    step: Callable[[], object],
    iterations: int | str,
    tracker: LatencyTracker,
    beside: _Beside,
    target_ci: float,
    max_time: float,
    clock: Callable[[], float] | None,
) -> tuple[list[float], str]:
    """`timed`'s loop: the steps, with the canary read between them where due."""
    if iterations != AUTO:
        for _ in range(int(iterations)):
            beside.read_if_due(tracker.count)
            with tracker.track():
                step()
        return tracker.times_ms(), "iterations"
    clock = clock or time.perf_counter
    begin, count = clock(), 0
    while True:
        beside.read_if_due(tracker.count)
        with tracker.track():
            step()
        count += 1
        if not due(count) and count < MAX_SAMPLES:
            continue
        times = tracker.times_ms()
        width = stats.half_width(stats.summarize(times))
        if width is not None and width <= target_ci:
            return times, "target_ci"
        if clock() - begin >= max_time:
            return times, "max_time"
        if count >= MAX_SAMPLES:
            return times, "max_samples"


class _Beside:
    """When a window's canary is read: at its start, then once `canary.EVERY` seconds of steps
    have passed since the last reading (wall clock, whatever clock the stopping rule runs on)."""

    def __init__(self, canary: canaries.Canary | None) -> None:
        self.canary, self.last = canary, -math.inf

    def read(self, steps_done: int) -> None:
        if self.canary is not None:
            self.canary.read(steps_done)
            self.last = time.perf_counter()

    def read_if_due(self, steps_done: int) -> None:
        if time.perf_counter() - self.last >= canaries.EVERY:
            self.read(steps_done)


def time_step(
    step: Callable[[], object],
    *,
    batch: int,
    iterations: int | str = 10,
    warmup: int | str = 3,
    device: torch.device | str = "cpu",
    target_ci: float = 0.02,
    max_time: float = 10.0,
    max_warmup: int = 20,
) -> Latency:
    """Warm up `step` (`warm_up`), then time it (`timed`): the whole plan in one call."""
    warmed = warm_up(step, warmup, device, max_warmup)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    times, reason = timed(step, iterations, device, target_ci=target_ci, max_time=max_time)
    return Latency(tuple(times), tuple(warmed), batch, reason)
