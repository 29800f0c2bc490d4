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
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Latency:
    """Per-step latency in milliseconds; throughput in clips/s (batch / median); `notes`: what
    the timed step includes beyond the model's work (e.g. a host-device sync per step)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    iterations: int
    throughput: float
    notes: str | None = None

    def as_record(self) -> dict[str, float | int | str | None]:
        return {f"latency_{k}" if k.endswith("_ms") else k: v for k, v in asdict(self).items()}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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

    def times_ms(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [start.elapsed_time(end) for start, end in self._events]
        return [ns / 1e6 for ns in self._ns]

    def latency(self, batch: int, notes: Sequence[str] = ()) -> Latency:
        times = self.times_ms()
        median = statistics.median(times)
        return Latency(
            median_ms=median,
            p10_ms=percentile(times, 10),
            p90_ms=percentile(times, 90),
            mean_ms=statistics.fmean(times),
            std_ms=statistics.pstdev(times),
            iterations=len(times),
            throughput=batch / (median / 1e3) if median > 0 else math.inf,
            notes="; ".join(notes) or None,
        )


def time_step(
    step: Callable[[], object],
    *,
    batch: int,
    iterations: int = 10,
    warmup: int = 3,
    device: torch.device | str = "cpu",
) -> Latency:
    """Run `step` `warmup` times untimed (caches, autotuning, compilation), then time it."""
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    tracker = LatencyTracker(device)
    for _ in range(iterations):
        with tracker.track():
            step()
    return tracker.latency(batch)
