"""Peak memory: the CPU figures, and the prediction against measured CPU allocations.

"Measured" is glibc's count of heap bytes in use (`mallinfo2`), sampled around every op of real
CPU steps: it sees whatever torch's CPU allocator takes, workspaces included, and nothing of how
the prediction tracks tensors. RSS would be the other choice, but at a few MB its page-level
noise (libraries paged in on first use, malloc keeping freed memory) is as large as the signal.
"""

from __future__ import annotations

import pytest
import torch

import tsfbench.measure.memory as memory_module
from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.memory import (
    MemoryTracker,
    heap_in_use,
    measure_cpu_allocations,
    predict_peak,
)


def test_cpu_tracker_reports_ram_only() -> None:
    tracker = MemoryTracker("cpu", interval=0.005)
    with tracker.track():
        block = torch.ones(64, 2**20, dtype=torch.uint8)  # 64 MiB touched
        block += 1
    memory = tracker.memory
    assert memory.max_ram is not None and memory.max_ram > 64 * 2**20
    assert memory.max_allocated is memory.max_reserved is None
    assert memory.max_global_vram is memory.max_process_vram is None
    assert memory.as_record()["memory_note"] is None  # nothing that applies is missing


def test_the_monitors_notes_reach_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why an NVML figure is missing travels with the row, as one flat, unit-free string."""
    why = "NVML listed 2 process(es), none of this process tree"

    class Monitor:  # what the monitor process answers in a container with a flaky NVML
        def __init__(self, interval: float, gpu_uuid: str | None) -> None:
            self.peaks: dict[str, object] = {}

        def __enter__(self) -> Monitor:
            return self

        def __exit__(self, *exc: object) -> None:
            notes = {"global_vram": "NVMLError: Unknown (failed in 2 of 9 samples)"}
            self.peaks = {"ram": 2**20, "global_vram": 3 * 2**30, "process_vram": None}
            self.peaks["notes"] = notes | {"process_vram": why}

    monkeypatch.setattr(memory_module, "Monitor", Monitor)
    tracker = MemoryTracker("cpu")
    with tracker.track():
        pass
    record = tracker.memory.as_record()
    assert record["max_global_vram_bytes"] == 3 * 2**30
    assert record["max_process_vram_bytes"] is None
    assert record["memory_note"] == (
        f"global_vram: NVMLError: Unknown (failed in 2 of 9 samples); process_vram: {why}"
    )


needs_mallinfo2 = pytest.mark.skipif(heap_in_use() is None, reason="needs glibc mallinfo2")


@needs_mallinfo2
def test_sampling_the_heap_leaves_no_garbage_on_it() -> None:
    """The sampler runs before and after every op: what it allocates itself would be measured.
    (It built a `ctypes.CDLL` per call, 1.8 KB of cyclic garbage a sample, 7-15% of a tiny
    model's measured peak.)"""
    import gc

    heap_in_use()
    gc.collect()
    gc.disable()
    try:
        before = heap_in_use() or 0
        for _ in range(1000):
            heap_in_use()
        grown = (heap_in_use() or 0) - before
    finally:
        gc.enable()
    assert grown < 16 * 1024, grown


@needs_mallinfo2
@pytest.mark.parametrize(
    ("mode", "attention", "frames", "size", "batch"),
    [
        ("infer", "joint", 4, 32, 2),
        ("infer", "divided", 4, 64, 4),
        ("infer", "joint", 2, 64, 8),
        ("train", "divided", 4, 64, 4),
        ("train", "joint", 2, 64, 8),
    ],
)
def test_prediction_is_within_5_percent_of_measured_cpu_allocations(
    mode: str, attention: str, frames: int, size: int, batch: int, tiny: dict[str, object]
) -> None:
    config = RunConfig(attention=attention, frames=frames, size=size)
    settings = ProbeSettings(mode=mode, batch=batch)
    predicted = predict_peak(config, settings, "cpu", tiny)
    measured = measure_cpu_allocations(config, settings, tiny)
    assert predicted == pytest.approx(measured, rel=0.05)


@needs_mallinfo2
def test_a_tiny_training_step_is_under_predicted_by_its_bookkeeping_only(
    tiny: dict[str, object],
) -> None:
    """The prediction counts tensor storages; the heap also holds what torch keeps about them
    (tensor headers, autograd nodes and saved variables: about 0.7 KB per forward op, 0.13 MB
    for this model's training step, whatever the clip). At 2.4 MB that is 5.3%, over the 5%
    the test above holds larger steps to; at full size it is under 0.1%. So this step is held
    to the bookkeeping's size instead of a share."""
    config = RunConfig(attention="joint", frames=4, size=32)
    settings = ProbeSettings(mode="train", batch=2)
    predicted = predict_peak(config, settings, "cpu", tiny)
    measured = measure_cpu_allocations(config, settings, tiny)
    assert 0 <= measured - predicted <= 256 * 1024, (predicted, measured)


def test_training_is_predicted_to_need_more_than_inference(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="joint", frames=4, size=32)
    infer = predict_peak(config, ProbeSettings(mode="infer", batch=2), "cpu", tiny)
    train = predict_peak(config, ProbeSettings(mode="train", batch=2), "cpu", tiny)
    assert train > 2 * infer


def test_full_size_models_are_predicted_without_allocating() -> None:
    config = RunConfig(model="l", attention="joint", frames=96, size=224)
    predicted = predict_peak(config, ProbeSettings(mode="train", backend="math"), "cpu")
    assert predicted > 32 * 2**30  # the paper's V100 boundary, answered in seconds


@pytest.mark.gpu
def test_gpu_prediction_is_within_10_percent_of_max_allocated(tiny: dict[str, object]) -> None:
    from tsfbench.measure.sweep import measure

    config = RunConfig(attention="joint", frames=8, size=224)
    settings = ProbeSettings(mode="train", batch=2, iterations=3, warmup=1)
    record = measure(config, settings, isolate=False)
    assert record["status"] == "ok"
    assert record["predicted_peak_bytes"] == pytest.approx(record["max_allocated_bytes"], rel=0.1)
    for key in ("max_reserved_bytes", "max_global_vram_bytes", "max_ram_bytes"):
        assert record[key] > 0
