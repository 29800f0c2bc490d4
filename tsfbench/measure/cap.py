"""The GPU memory cap (`--memory-limit`): an emulated card of `limit` bytes, counting only this
process's own memory.

A real card of `limit` bytes holds this process's CUDA context (and kernels, cuBLAS workspaces,
anything outside torch's allocator) and the allocator's blocks. The cap lets the allocator take
`limit` less that context, as a fraction of the card. The context is this process's alone:
another process on the card (or a finished task's cached blocks in another process) must not
shrink the emulated card, or every allocation fails and the row reads `oom`.

How the context is measured, best first:
1. NVML's memory of this PID on the device, less what torch's allocator reserves;
2. without NVML, or where NVML lists no PID of ours (a container's PID namespace): the device's
   free memory right after the child creates its CUDA context (`start`, before any warm-up)
   less free memory now, less the allocator's blocks. The bare context's own few hundred MiB,
   created by that first query, is not counted, and memory another process takes during the
   warm-up would be; the row's notes say which way was used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from tsfbench.config import GIB


@dataclass(frozen=True)
class Capped:
    """What a cap did: a note for the row where it differs from a real card of that size, and
    this process's own memory outside the allocator (bytes; None on a CPU), which the cap left
    out: with the predicted peak, it says which configurations a card of `limit` bytes runs."""

    note: str | None = None
    context: int | None = None


class CapError(RuntimeError):
    """A cap under which nothing can run (at or below this process's own context): the row is
    an `error` that says so, not an `oom` of the configuration."""


def gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


def device_index(device: torch.device) -> int:
    """The CUDA device's index (`torch.device("cuda")` carries none: the current one)."""
    return torch.cuda.current_device() if device.index is None else device.index


def start(device: torch.device) -> int | None:
    """Free device memory right after this process's CUDA context is created (the query creates
    it), before any warm-up: the fallback's baseline. None on a CPU."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.mem_get_info(device_index(device))[0])


def nvml_process_used(index: int) -> int | None:
    """Bytes NVML charges to this PID on CUDA device `index`; None where NVML cannot say
    (no library or driver, or no PID of ours in its list: a container)."""
    from tsfbench.measure.energy import gpu_uuid
    from tsfbench.measure.sampler import nvml_handle

    try:
        import pynvml

        handle = nvml_handle(gpu_uuid(torch.device("cuda", index)) or "")
        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:  # no NVML here: the fallback measures instead
        return None
    ours = [p.usedGpuMemory for p in processes if p.pid == os.getpid()]
    return int(ours[0]) if ours and ours[0] is not None else None


def own_context(
    index: int, free: int, reserved: int, start_free: int | None
) -> tuple[int, str | None]:
    """(bytes this process holds on the device outside torch's allocator, a note on how it was
    measured where that is less than exact)."""
    used = nvml_process_used(index)
    if used is not None:
        return max(0, used - reserved), None
    if start_free is not None:
        note = (
            "memory cap: context measured from the CUDA context's creation on (no NVML "
            "process memory here); the bare context itself is not counted"
        )
        return max(0, start_free - free - reserved), note
    raise CapError(
        "memory_limit: cannot measure this process's own GPU memory (no NVML process memory "
        "and no baseline); run it through tsfbench.measure.isolate.run_isolated"
    )


def fraction(
    limit: int, total: int, free: int, reserved: int, context: int
) -> tuple[float, str | None]:
    """The allocator's share of the card for an emulated card of `limit` bytes, and a note
    where the emulation differs from a real card of that size. Raises `CapError` where the
    context alone fills the cap."""
    if limit <= context:
        raise CapError(
            f"memory_limit: {gib(limit)} is at or below this process's own GPU memory outside "
            f"the allocator ({gib(context)}: CUDA context, kernels, workspaces), so nothing could "
            f"run; give more than {gib(context)}"
        )
    if limit > total:
        return (
            1.0,
            f"memory cap: {gib(limit)} is above this GPU's {gib(total)}; the card is the limit",
        )
    room = limit - context
    if room > free + reserved:  # other processes hold the rest: the cap cannot be reached
        return room / total, (
            f"memory cap: only {gib(free + reserved)} of the emulated {gib(room)} is free on the "
            f"device ({gib(total - free - reserved - context)} held by other processes)"
        )
    return room / total, None


def cap_gpu(limit: int, device: torch.device, start_free: int | None = None) -> Capped:
    """Cap torch's allocator on `device` to emulate a card of `limit` bytes; returns the note
    for the row's `notes` (or None) and the context it measured. Called after a warm-up step,
    whose cached blocks are released first, so that `reserved` is what torch still holds
    (cuBLAS workspaces, inside the cap)."""
    index = device_index(device)
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info(index)
    reserved = torch.cuda.memory_reserved(index)
    context, how = own_context(index, free, reserved, start_free)
    share, note = fraction(limit, total, free, reserved, context)
    torch.cuda.set_per_process_memory_fraction(share, index)
    return Capped("; ".join(filter(None, [note, how])) or None, context)
