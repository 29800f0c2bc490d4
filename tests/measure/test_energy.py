"""Energy: the counter's window holds the tracked steps and nothing queued before them."""

from __future__ import annotations

import pynvml
import pytest
import torch

from tsfbench.measure import energy
from tsfbench.measure.energy import EnergyTracker


def test_the_device_is_synchronised_before_the_start_counter_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warm-up kernels still queued when the window opens would be charged to the timed steps."""
    calls: list[str] = []
    readings = iter([1_000.0, 7_000.0])  # millijoules: 6 J over the window

    def counter(device: torch.device) -> tuple[str, float]:
        calls.append("read start")
        return "handle", next(readings)

    def total_energy(handle: str) -> float:
        calls.append("read end")
        return next(readings)

    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(energy, "energy_counter", counter)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", total_energy)
    tracker = EnergyTracker("cuda")
    with tracker.track(clips=3):
        calls.append("steps")
    assert calls == ["sync", "read start", "steps", "sync", "read end"]
    assert tracker.energy.joules == 6.0 and tracker.energy.joules_per_clip == 2.0
