"""Energy of the timed steps from NVML's total-energy counter (millijoules since driver load).

The counter difference over a run is exact where the GPU has one (Volta and later); elsewhere,
and on CPU, the figures are None. The counter updates every few tens of milliseconds, so runs
much shorter than a second give coarse figures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from tsfbench.measure.sampler import nvml_handle


@dataclass(frozen=True)
class Energy:
    joules: float | None = None
    joules_per_clip: float | None = None
    watts: float | None = None  # average power over the tracked span

    def as_record(self) -> dict[str, float | None]:
        return {
            "energy_j": self.joules,
            "energy_j_per_clip": self.joules_per_clip,
            "power_w": self.watts,
        }


def gpu_uuid(device: torch.device | str) -> str | None:
    """The UUID of a CUDA device, by which NVML finds it; None on CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return str(torch.cuda.get_device_properties(device.index or 0).uuid)


def energy_counter(device: torch.device | str) -> tuple[Any, float] | None:
    """(handle, millijoules now), or None where the device has no energy counter."""
    uuid = gpu_uuid(device)
    if uuid is None:
        return None
    try:
        import pynvml

        handle = nvml_handle(uuid)
        return handle, float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except Exception:  # no NVML, or NVML_ERROR_NOT_SUPPORTED on this GPU
        return None


class EnergyTracker:
    """`with tracker.track(clips): ...` leaves `tracker.energy` (None fields without NVML)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.energy = Energy()

    @contextmanager
    def track(self, clips: int) -> Iterator[None]:
        if self.device.type == "cuda":  # kernels still queued (warm-up) are not the span's
            torch.cuda.synchronize(self.device)
        start = energy_counter(self.device)
        begin = time.perf_counter()
        yield
        if start is None:
            return
        torch.cuda.synchronize(self.device)
        import pynvml

        handle, before = start
        joules = (pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - before) / 1e3
        seconds = time.perf_counter() - begin
        self.energy = Energy(
            joules=joules,
            joules_per_clip=joules / clips if clips else None,
            watts=joules / seconds if seconds > 0 else None,
        )
