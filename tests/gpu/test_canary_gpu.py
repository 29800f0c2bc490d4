"""The machine-speed canary on a GPU: timed with CUDA events inside the window, read after it,
and its operands gone once a reading is done (the row's peak memory is the step's)."""

from __future__ import annotations

import pytest
import torch

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.canary import Canary
from tsfbench.measure.sweep import probe

pytestmark = pytest.mark.gpu


def test_readings_are_device_times_and_leave_no_memory_behind() -> None:
    canary = Canary("cuda")
    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated()
    for steps_done in (0, 1, 2):
        canary.read(steps_done)
    readings = canary.readings_ms()  # synchronises once, here
    assert len(readings) == 3 and all(0 < ms < 1000 for ms in readings)
    assert canary.positions() == [0, 1, 2] and "on the GPU" in canary.kind
    assert torch.cuda.memory_allocated() == held


def test_a_gpu_row_keeps_its_canary_beside_its_steps(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="divided", frames=4, size=32)
    record = probe(config, ProbeSettings(warmup=1, iterations=5, device="cuda"), tiny)
    assert record["canary_samples_ms"] and len(record["canary_steps"]) == len(
        record["canary_samples_ms"]
    )
    assert record["canary_steps"][0] == 0 and record["canary_steps"][-1] == 5
    assert record["canary_kind"].startswith("bfloat16 1024x1024x1024")
