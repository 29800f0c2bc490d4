"""Peak memory of a step: measured (five figures) and predicted without running it.

Measured: the torch allocator's `max_memory_allocated` / `max_memory_reserved` (reset per
configuration), NVML device memory and this process tree's share of it, and host RSS. NVML and
RSS are sampled by a separate monitor process (`sampler.Monitor`); RSS also uses the kernel's
own high-water mark (VmHWM, reset through /proc/self/clear_refs) so that no peak between two
samples is missed. On CPU only `max_ram` applies; the other figures are None.

Predicted: `predict_peak`, in `tsfbench.measure.predict` (re-exported here), runs the step
under `FakeTensorMode` and adds up the bytes of the storages alive after each op.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.energy import gpu_uuid
from tsfbench.measure.predict import LiveBytes, predict_peak  # noqa: F401  (re-exported)
from tsfbench.measure.sampler import Monitor
from tsfbench.measure.workload import build_workload


@dataclass(frozen=True)
class Memory:
    """Peak memory in bytes; None where the figure does not apply (no GPU, no NVML)."""

    max_ram: int | None = None  # host RSS of this process and its children
    max_global_vram: int | None = None  # NVML: used on the whole device
    max_process_vram: int | None = None  # NVML: used by this process and its children
    max_reserved: int | None = None  # torch caching allocator: reserved
    max_allocated: int | None = None  # torch caching allocator: allocated
    # Why a figure that applies is missing or may have missed its peak, `figure: reason; ...`
    # (an NVML query that failed, no process of ours in NVML's list); None when all is well.
    note: str | None = None

    def as_record(self) -> dict[str, int | str | None]:
        figures = {f"{k}_bytes": v for k, v in asdict(self).items() if k != "note"}
        return figures | {"memory_note": self.note}


def reset_peak_rss() -> bool:
    """Reset the kernel's VmHWM of this process (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """VmHWM: the highest RSS of this process since start or the last reset, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class MemoryTracker:
    """`with tracker.track(): ...` leaves `tracker.memory`, the peaks over the tracked span."""

    def __init__(
        self, device: torch.device | str = "cpu", interval: float = 0.01, monitor: bool = True
    ) -> None:
        self.device, self.interval, self.monitor = torch.device(device), interval, monitor
        self.memory = Memory()

    @contextmanager
    def track(self) -> Iterator[None]:
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        hwm = reset_peak_rss()
        sampler = Monitor(self.interval, gpu_uuid(self.device)) if self.monitor else None
        with sampler or _nothing():
            yield
            if cuda:
                torch.cuda.synchronize(self.device)
        peaks: dict[str, Any] = sampler.peaks if sampler else {}
        ram = max(peaks.get("ram") or 0, peak_rss() if hwm else 0) or None
        notes = peaks.get("notes") or {}
        self.memory = Memory(
            max_ram=ram,
            max_global_vram=peaks.get("global_vram"),
            max_process_vram=peaks.get("process_vram"),
            max_reserved=torch.cuda.max_memory_reserved(self.device) if cuda else None,
            max_allocated=torch.cuda.max_memory_allocated(self.device) if cuda else None,
            note="; ".join(f"{figure}: {why}" for figure, why in notes.items()) or None,
        )


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# --- Measured CPU allocations (to check the prediction against) --------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc's `mallinfo2`, looked up once. Looked up at each call, a `CDLL` and its function
    types (about 1.8 KB of malloc'd, cyclic garbage per sample, until the collector runs)
    inflated the measured peak of a tiny model's step by 60-280 KB (7-15%)."""
    try:
        function = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    return function


def heap_in_use() -> int | None:
    """Bytes the C heap has handed out (glibc `mallinfo2`); None elsewhere.

    torch's CPU allocator takes its memory from malloc, so this sees every CPU tensor and every
    buffer a kernel keeps, independently of how tensors are tracked. Python objects mostly live
    in pymalloc arenas, which are mmapped directly and do not show here.
    """
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


class HeapPeak(TorchDispatchMode):
    """Peak of `heap_in_use()` above `baseline`, sampled before and after every op."""

    def __init__(self, baseline: int) -> None:
        super().__init__()
        self.baseline, self.peak = baseline, 0

    def _sample(self) -> None:
        self.peak = max(self.peak, (heap_in_use() or 0) - self.baseline)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict | None = None
    ) -> Any:
        self._sample()
        out = func(*args, **(kwargs or {}))
        self._sample()
        return out


def measure_cpu_allocations(
    config: RunConfig,
    settings: ProbeSettings,
    overrides: Mapping[str, object] | None = None,
    steps: int = 2,
) -> int:
    """Measured peak C-heap bytes of `steps` CPU steps, model and inputs included.

    One throw-away step first initialises the runtime (thread pools, oneDNN caches), whose
    lasting allocations would otherwise be charged to the configuration.
    """
    if heap_in_use() is None:
        raise RuntimeError("measuring CPU allocations needs glibc's mallinfo2")
    build_workload(config, settings, "cpu", overrides).step()
    gc.collect()
    baseline = heap_in_use() or 0
    work = build_workload(config, settings, "cpu", overrides)
    tracker = HeapPeak(baseline)
    with tracker:
        for _ in range(steps):
            work.step()
    return tracker.peak
