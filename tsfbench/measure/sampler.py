"""The monitor process: samples host RSS and NVML memory of a process tree at a fixed interval.

The process tree and RSS come from psutil (a well-kept library that also works beyond Linux).

It runs in its own process (spawned, talking over a `Pipe`) so that sampling never takes the
measured process's GIL and keeps its pace while the measured process is busy in C++. This module
imports no torch, so the monitor starts in a fraction of a second.

Each figure is sampled on its own: an NVML query that fails (an unsupported call, a library
older than the bindings, a lost GPU) leaves that figure's peak as far as it got and a note that
says why, and never the other figures. The monitor's answer carries those notes, and its own CPU
time, so that its cost is measured where it runs (`benchmarks/sampler_overhead.py`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import psutil

# Seconds between two walks of the process tree. A walk (psutil: every process's parent) costs a
# few milliseconds on a busy machine, 20% of a core if done at every 10 ms sample. Between walks
# the known processes' RSS is still read each sample (one small /proc read each); a child is
# counted from at most this long after it starts.
RESCAN = 0.5
FIGURES = ("ram", "global_vram", "process_vram")


def rss(process: psutil.Process | int) -> int:
    """Resident set size in bytes (0 if the process is gone)."""
    try:
        if isinstance(process, int):
            process = psutil.Process(process)
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def children(pid: int) -> list[int]:
    """Direct children of `pid` (none if it is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def tree(pid: int, exclude: int) -> list[int]:
    """`pid` and its descendants, without `exclude` (the monitor, itself a child of `pid`)."""
    try:
        root = psutil.Process(pid)
        found = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    return [process.pid for process in found if process.pid != exclude]


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def nvml_handle(uuid: str) -> Any:
    """An NVML device handle by UUID (torch and NVML may number devices differently).

    torch gives the bare UUID (`str(get_device_properties(i).uuid)`, 8-4-4-4-12 hex, no
    prefix). NVML spells a whole GPU `GPU-<hex>` and a MIG slice `MIG-<hex>` (drivers >= R470,
    where CUDA reports the slice's own UUID); the bare hex does not say which, so both are tried.
    """
    import pynvml

    pynvml.nvmlInit()
    if uuid.startswith(("GPU-", "MIG-")):
        return pynvml.nvmlDeviceGetHandleByUUID(uuid)
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    except pynvml.NVMLError as first:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(f"MIG-{uuid}")
        except pynvml.NVMLError:
            raise first from None


def describe(error: BaseException) -> str:
    """`Kind: message` of an exception, even one whose message cannot be built (an NVMLError
    asks the library for its text)."""
    try:
        text = str(error)
    except Exception:
        text = ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Sampler:
    """The monitor's state: peaks of each figure, and why a figure is missing or partial.

    Catches per figure, not per sample: `NVMLLibraryMismatchError` (an unversioned call missing
    from an older driver's library) is no `NVMLError`, and one failing query used to end the
    monitor and empty every peak, RSS included.
    """

    def __init__(
        self, pid: int, exclude: int, gpu_uuid: str | None = None, rescan: float = RESCAN
    ) -> None:
        self.pid, self.exclude, self.rescan = pid, exclude, rescan
        self.peaks: dict[str, int | None] = {"ram": None, "global_vram": None, "process_vram": None}
        self.samples = 0
        self.failures: dict[str, tuple[int, str]] = {}  # figure: (times failed, first error)
        self.notes: dict[str, str] = {}
        self.listed = self.foreign = self.unmeasured = 0  # what NVML's process list showed
        self.pids: set[int] = set()
        self.processes: dict[int, psutil.Process | None] = {}
        self.walked = -float("inf")
        self.handle = None
        if gpu_uuid:
            try:
                self.handle = nvml_handle(gpu_uuid)
            except Exception as error:  # no driver, no library, unknown device
                self.notes["nvml"] = f"no NVML device {gpu_uuid} ({describe(error)})"

    def _figure(self, name: str, read: Callable[[], int | None]) -> None:
        try:
            value = read()
        except Exception as error:
            count, first = self.failures.get(name, (0, describe(error)))
            self.failures[name] = (count + 1, first)
            return
        if value is not None:
            self.peaks[name] = max(self.peaks[name] or 0, value)

    def _process_vram(self) -> int | None:
        """This tree's share of the device; None, with the reason counted, where NVML lists no
        process of it: NVML gives host PIDs, so in a container's PID namespace none matches."""
        import pynvml

        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        ours = [p for p in processes if p.pid in self.pids]
        self.listed = max(self.listed, len(processes))
        if processes and not ours:
            self.foreign += 1
        known = [p.usedGpuMemory for p in ours if p.usedGpuMemory is not None]
        if ours and not known:
            self.unmeasured += 1
        return sum(known) if known else None

    def sample(self) -> None:
        self.samples += 1
        now = time.monotonic()
        if now - self.walked >= self.rescan:
            try:
                self.pids = set(tree(self.pid, self.exclude)) or {self.pid}
            except Exception:  # keep the last known tree
                self.pids.add(self.pid)
            self.walked = now
            # psutil.Process objects kept between walks: building one reads /proc twice more
            known = {pid: self.processes.get(pid) for pid in self.pids}
            self.processes = {pid: found or _process(pid) for pid, found in known.items()}
        self._figure("ram", lambda: sum(rss(p) for p in self.processes.values() if p))
        if self.handle is not None:
            import pynvml

            self._figure(
                "global_vram", lambda: int(pynvml.nvmlDeviceGetMemoryInfo(self.handle).used)
            )
            self._figure("process_vram", self._process_vram)

    def result(self) -> dict[str, Any]:
        """The peaks, and `notes`: per figure, why it is missing or may have missed its peak."""
        notes = dict(self.notes)
        for name, (count, first) in self.failures.items():
            notes[name] = f"{first} (failed in {count} of {self.samples} samples)"
        if self.handle is not None and self.peaks["process_vram"] is None:
            if self.foreign:
                notes.setdefault(
                    "process_vram",
                    f"NVML listed {self.listed} process(es), none of this process tree: NVML "
                    "gives host PIDs, which never match inside a container's PID namespace",
                )
            elif self.unmeasured:
                notes.setdefault("process_vram", "NVML gives no per-process memory here")
            else:
                notes.setdefault("process_vram", "NVML listed no compute process on the device")
        return {**self.peaks, "notes": notes}


def _sample(
    conn: Connection, pid: int, interval: float, gpu_uuid: str | None, rescan: float
) -> None:
    """Monitor loop: sample until the parent sends anything, then send back the peaks."""
    cpu, wall = time.process_time(), time.perf_counter()
    sampler = Sampler(pid, os.getpid(), gpu_uuid, rescan)
    try:
        sampler.sample()
        conn.send("ready")
        while not conn.poll(interval):  # the timeout of poll is the sampling interval
            sampler.sample()
        conn.recv()
        sampler.sample()
        cost = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
        conn.send(sampler.result() | {"monitor": cost, "samples": sampler.samples})
    except (ConnectionError, EOFError):  # a broken pipe, or a socket reset by a killed peer
        pass  # the measured process is gone (killed, interrupted): nobody to answer
    finally:
        conn.close()


class Monitor:
    """Context manager around the monitor process; `peaks` holds its figures after exit.

    `peaks` has `ram`, `global_vram`, `process_vram` (bytes or None), `notes` (figure: why it is
    missing or partial), `samples`, and `monitor` (the monitor's own CPU and wall seconds).
    """

    def __init__(
        self, interval: float = 0.01, gpu_uuid: str | None = None, rescan: float = RESCAN
    ) -> None:
        self.interval, self.gpu_uuid, self.rescan = interval, gpu_uuid, rescan
        self.peaks: dict[str, Any] = {}

    def __enter__(self) -> Monitor:
        context = multiprocessing.get_context("spawn")  # never fork a process with torch threads
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_sample,
            args=(theirs, os.getpid(), self.interval, self.gpu_uuid, self.rescan),
            daemon=True,
        )
        from tsfbench.measure.isolate import sigint_ignored  # lazily: the monitor needs no torch

        with sigint_ignored():  # Ctrl-C stops the measured process; its __exit__ stops this one
            self._process.start()
        theirs.close()
        # "ready": the first sample is taken before the work starts. A monitor that died before
        # it is no reason to fail the measurement: __exit__ notes it.
        with contextlib.suppress(EOFError):
            self._conn.recv()
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
            self._process.join(timeout=5)
            code = self._process.exitcode
            self.peaks = {"notes": {"monitor": f"the monitor process ended early (exit {code})"}}
        finally:
            self._conn.close()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
