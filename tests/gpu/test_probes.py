"""The CUDA side of the probes: event timing, allocator and NVML memory, NVML energy."""

from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

from tsfbench.measure.energy import EnergyTracker, energy_counter, gpu_uuid
from tsfbench.measure.latency import LatencyTracker
from tsfbench.measure.memory import MemoryTracker
from tsfbench.measure.sampler import nvml_handle

pytestmark = pytest.mark.gpu
GIB = 2**30


def busy(matrix: torch.Tensor, products: int) -> None:
    for _ in range(products):
        matrix @ matrix


def test_cuda_events_time_the_device_work_not_the_host_launch() -> None:
    matrix = torch.randn(4096, 4096, device="cuda")
    busy(matrix, 2)  # cuBLAS handle and workspace, outside the timed spans
    torch.cuda.synchronize()
    tracker = LatencyTracker("cuda")
    walls, launches = [], []
    for _ in range(5):
        torch.cuda.synchronize()
        begin = time.perf_counter()
        with tracker.track():
            busy(matrix, 20)
            launches.append(time.perf_counter() - begin)
        torch.cuda.synchronize()
        walls.append(time.perf_counter() - begin)
    device = [ms / 1e3 for ms in tracker.times_ms()]
    assert len(device) == 5
    for seconds, wall in zip(device, walls, strict=True):
        # the events sit inside the synchronised span, and the kernels fill most of it
        assert 0.7 * wall <= seconds <= wall + 1e-3
    # the host only queued the kernels: an event pair, not a host clock, saw them run
    assert statistics.median(launches) < 0.5 * statistics.median(device)
    assert tracker.latency(batch=4).throughput == pytest.approx(4 / statistics.median(device))


def test_memory_tracker_finds_this_gpu_in_nvml_by_its_uuid() -> None:
    pynvml = pytest.importorskip("pynvml")
    device = torch.device("cuda", torch.cuda.current_device())
    uuid = gpu_uuid(device)
    handle = nvml_handle(uuid)
    named = pynvml.nvmlDeviceGetUUID(handle)
    named = named.decode() if isinstance(named, bytes) else named
    assert named in (f"GPU-{uuid}", f"MIG-{uuid}")
    total = int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    assert torch.cuda.get_device_properties(device).total_memory == pytest.approx(total, rel=0.05)

    tracker = MemoryTracker(device, interval=0.005)
    with tracker.track():
        block = torch.ones(GIB, dtype=torch.uint8, device=device)
        time.sleep(0.2)  # many monitor samples while the block is held
        del block
    memory = tracker.memory
    assert memory.max_allocated is not None and memory.max_allocated >= GIB
    assert memory.max_reserved is not None and memory.max_reserved >= memory.max_allocated
    assert memory.max_global_vram is not None and memory.max_global_vram >= GIB
    assert memory.max_ram is not None and memory.max_ram > 0


def test_process_vram_is_this_process_share_and_never_another_process() -> None:
    pynvml = pytest.importorskip("pynvml")
    device = torch.device("cuda", torch.cuda.current_device())
    tracker = MemoryTracker(device, interval=0.005)
    with tracker.track():
        block = torch.ones(GIB, dtype=torch.uint8, device=device)
        time.sleep(0.2)
        handle = nvml_handle(gpu_uuid(device))
        listed = {
            p.pid: p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        }
        del block
    memory = tracker.memory
    if listed.get(os.getpid()) is None:
        # NVML gives host PIDs; inside a PID namespace (a container) none of them is ours
        assert memory.max_process_vram is None
        pytest.skip(f"NVML does not list this process (PID {os.getpid()}; listed {list(listed)})")
    assert memory.max_process_vram is not None
    assert GIB <= memory.max_process_vram <= memory.max_global_vram


def sustained(matrix: torch.Tensor, seconds: float) -> None:
    """Keep the GPU busy for about `seconds`, waiting on it at every product."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        matrix @ matrix
        torch.cuda.synchronize()


def test_energy_of_a_busy_second_is_a_plausible_power_draw() -> None:
    if energy_counter("cuda") is None:
        pytest.skip("this GPU has no NVML total-energy counter")
    matrix = torch.randn(8192, 8192, device="cuda")
    sustained(matrix, 0.2)
    tracker = EnergyTracker("cuda")
    with tracker.track(clips=10):
        sustained(matrix, 1.5)
    energy = tracker.energy
    assert energy.joules is not None and energy.watts is not None
    assert 30 < energy.watts < 1500  # a busy H100 / H200 draws a few hundred watts
    assert energy.joules_per_clip == pytest.approx(energy.joules / 10)


def test_kernels_queued_before_the_energy_window_are_not_charged_to_it() -> None:
    if energy_counter("cuda") is None:
        pytest.skip("this GPU has no NVML total-energy counter")
    matrix = torch.randn(8192, 8192, device="cuda")
    sustained(matrix, 0.2)
    start = time.perf_counter()
    busy(matrix, 10)
    torch.cuda.synchronize()
    per_product = (time.perf_counter() - start) / 10
    products = max(1, int(1.5 / per_product))  # about 1.5 s of queued work (a long warm-up)
    whole = EnergyTracker("cuda")
    with whole.track(clips=1):
        busy(matrix, products)
    busy(matrix, products)  # queued, not waited for: the warm-up before the timed steps
    window = EnergyTracker("cuda")
    with window.track(clips=1):
        matrix[0, 0] += 1  # the timed steps: almost nothing
    assert whole.energy.joules is not None and window.energy.joules is not None
    assert window.energy.joules < 0.25 * whole.energy.joules
