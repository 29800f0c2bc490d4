"""The monitor process: samples host RSS and NVML memory of a process tree at a fixed interval.

It runs in its own process (spawned, talking over a `Pipe`) so that sampling never takes the
measured process's GIL and keeps its pace while the measured process is busy in C++. This module
imports no torch, so the monitor starts in a fraction of a second.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    """Resident set size of `pid` in bytes (0 if it is gone); /proc, no psutil needed."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's `children` list (Linux >= 3.5)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def tree(pid: int, exclude: int) -> list[int]:
    """`pid` and its descendants, without `exclude` (the monitor, itself a child of `pid`)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current != exclude:
            pids.append(current)
            todo += children(current)
    return pids


def nvml_handle(uuid: str) -> Any:
    """An NVML device handle by UUID (torch and NVML may number devices differently)."""
    import pynvml

    pynvml.nvmlInit()
    uuid = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
    return pynvml.nvmlDeviceGetHandleByUUID(uuid)


def gpu_figures(handle: Any, pids: list[int]) -> tuple[int | None, int | None]:
    """Device memory in use, and the part used by `pids` (None where NVML cannot tell)."""
    import pynvml

    used = int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    try:
        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except pynvml.NVMLError:
        return used, None
    ours = [p.usedGpuMemory for p in processes if p.pid in pids and p.usedGpuMemory is not None]
    return used, sum(ours) if ours else None


def _sample(conn: Connection, pid: int, interval: float, gpu_uuid: str | None) -> None:
    """Monitor loop: sample until the parent sends anything, then send back the peaks."""
    me = os.getpid()
    handle = None
    if gpu_uuid:
        try:
            handle = nvml_handle(gpu_uuid)
        except Exception:  # no driver, no library, unknown device: memory figures stay None
            handle = None
    peaks: dict[str, int | None] = {"ram": 0, "global_vram": None, "process_vram": None}

    def sample() -> None:
        pids = tree(pid, exclude=me)
        peaks["ram"] = max(peaks["ram"] or 0, sum(rss(p) for p in pids))
        if handle is not None:
            used, ours = gpu_figures(handle, pids)
            for key, value in (("global_vram", used), ("process_vram", ours)):
                if value is not None:
                    peaks[key] = max(peaks[key] or 0, value)

    try:
        sample()
        conn.send("ready")
        while not conn.poll(interval):  # the timeout of poll is the sampling interval
            sample()
        conn.recv()
        sample()
        conn.send(peaks)
    except (BrokenPipeError, EOFError):
        pass  # the measured process is gone (killed, interrupted): nobody to answer
    finally:
        conn.close()


class Monitor:
    """Context manager around the monitor process; `peaks` holds its figures after exit."""

    def __init__(self, interval: float = 0.01, gpu_uuid: str | None = None) -> None:
        self.interval, self.gpu_uuid = interval, gpu_uuid
        self.peaks: dict[str, int | None] = {}

    def __enter__(self) -> Monitor:
        context = multiprocessing.get_context("spawn")  # never fork a process with torch threads
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_sample,
            args=(theirs, os.getpid(), self.interval, self.gpu_uuid),
            daemon=True,
        )
        from tsfbench.measure.isolate import sigint_ignored  # lazily: the monitor needs no torch

        with sigint_ignored():  # Ctrl-C stops the measured process; its __exit__ stops this one
            self._process.start()
        theirs.close()
        self._conn.recv()  # "ready": the first sample is taken before the work starts
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._conn.send("stop")
            self.peaks = self._conn.recv()
        except (EOFError, OSError):
            self.peaks = {}
        finally:
            self._conn.close()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
