"""A machine-speed canary: one fixed matrix product timed beside every timed window, so a change
of the machine's own speed is in the row, not hidden in its figure.

Contention readings see processes; some slowdowns have none to see. On the 2-core VM this
project is developed on, the speed drifts 10-40% over minutes with no other process and no steal
time in the guest: one ViT-B divided step went from ~3,000 to ~2,250 ms within a minute while
this product went from ~50 to ~38 ms, and back (docs/timing.md has the run). Two rows measured
minutes apart differ by that much for no reason of theirs; the canary beside each step says by
how much, and `compare` divides it out, step by step (docs/compare.md).

The product is the same whatever the row measures: on the CPU fp32 (M x 768) @ (768 x 3072),
the shape of a ViT-B MLP's first layer (most of a step's FLOPs), with every CPU this process may
use, not the step's thread count (a one-thread run must not slow its own canary, or `compare`
would divide the slowdown away); on a GPU ten bf16 products on the measured device, timed with CUDA
events and read after the window, so the timed steps are never synchronised for it. The operands
live only during a reading (between two steps, when the step's activations are freed), so the
canary does not raise the row's peak memory.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

EVERY = 2.0  # seconds of timed steps between two readings (and one at each end of a window)
REPEATS = 3  # products per reading; a reading is their median (one stray slow product is not it)
CPU_SHAPE = (784, 768, 3072)  # a ViT-B MLP's first layer on four frames: 19-36 ms on 2 EPYC cores
GPU_SHAPE = (1024, 1024, 1024)  # bf16, 6 MiB with the product; ten per timing: ~0.05 ms on an H100
GPU_PRODUCTS = 10


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Canary:
    """`read(after_steps)` times one reading (REPEATS products) and keeps it with the number of
    timed steps done before it; `readings_ms()` and `positions()` return the window's readings
    and those counts in order; `reset()` starts a new window. `kind` names the product, so two
    rows' canaries are compared only when they ran the same one."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.shape = GPU_SHAPE if self.cuda else CPU_SHAPE
        self.dtype = torch.bfloat16 if self.cuda else torch.float32
        self.threads = None if self.cuda else usable_cpus()
        m, k, n = self.shape
        where = f"{GPU_PRODUCTS} on the GPU" if self.cuda else f"{self.threads} threads"
        self.kind = f"{str(self.dtype).removeprefix('torch.')} {m}x{k}x{n} matmul, {where}"
        self._ms: list[float] = []
        self._positions: list[int] = []
        self._events: list[list[tuple[torch.cuda.Event, torch.cuda.Event]]] = []

    def _operands(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Constant operands (the values do not change a product's speed; no denormals)."""
        m, k, n = self.shape
        like = {"dtype": self.dtype, "device": self.device}
        return torch.full((m, k), 0.5, **like), torch.full((k, n), 0.25, **like)

    def read(self, after_steps: int = 0) -> None:
        self._positions.append(after_steps)
        a, b = self._operands()
        if self.cuda:
            events = []
            for _ in range(REPEATS):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(GPU_PRODUCTS):
                    torch.mm(a, b)
                end.record()
                events.append((start, end))
            self._events.append(events)
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            times = []
            for _ in range(REPEATS):
                begin = time.perf_counter_ns()
                torch.mm(a, b)
                times.append((time.perf_counter_ns() - begin) / 1e6)
        finally:
            torch.set_num_threads(threads)
        self._ms.append(statistics.median(times))

    def readings_ms(self) -> list[float]:
        if self.cuda and self._events:
            torch.cuda.synchronize(self.device)
            return [
                statistics.median(start.elapsed_time(end) for start, end in reading)
                for reading in self._events
            ]
        return list(self._ms)

    def positions(self) -> list[int]:
        return list(self._positions)

    def reset(self) -> None:
        self._ms, self._events, self._positions = [], [], []
