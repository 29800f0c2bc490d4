"""What else used the machine while steps were timed, so a contended figure is noticed, not
averaged in.

A timed window's CPU figure is the machine's busy CPU time (psutil.cpu_times: every process)
minus this process tree's (the process that runs the step and its children: the memory
monitor; for a GPU under `torchrun`, the launcher's tree: every rank drives its own GPU from its
own core, so the ranks of one job are not each other's contention, while ranks on the CPU share
its cores and are), as average cores over the window; on a GPU, the compute processes NVML
lists that are not ours, the SM clock and the clock-event (throttle) reasons. A busy machine can
leave a perfectly stable row (its spread does not reveal it: one busy process made `divided`
2.3x slower with p10-p90 within 4%), so only a reading of the machine can tell.

Torch-free: the environment's idle state is read before any model is built.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

# Other work above this many cores on average over a window marks it contended: 10% of a core
# already moved a 2-core CPU's medians by several percent.
THRESHOLD_CORES = 0.10
# /proc/stat and /proc/PID/stat count CPU time in clock ticks; each difference of two readings
# can be off by one tick per counter (one per CPU for the machine, two per process of ours).
TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
TORCHRUN_ID = "TORCHELASTIC_RUN_ID"  # set by torchrun in each rank's environment
RETRIES = 2  # auto: a contended window is timed again at most this many times
IDLE_SECONDS = 0.5  # how long the environment's idle reading looks before a run
# NVML clock-event reasons (nvml.h, nvmlClocksEventReason*): a bit each
GPU_IDLE = 0x1
REASONS = {
    0x2: "applications clocks",
    0x4: "power cap",
    0x8: "hw slowdown",
    0x10: "sync boost",
    0x20: "sw thermal",
    0x40: "hw thermal",
    0x80: "power brake",
    0x100: "display clocks",
}
# The reasons that mean the GPU ran slower than it can. Idle, clock settings and sync boost
# are not slowdowns; the power cap is a GPU at full load's normal state (a big model on an H100
# runs at its cap; re-measuring would not change it), so it is recorded and not a contention.
SLOWDOWNS = 0x8 | 0x20 | 0x40 | 0x80


def busy_seconds(times: Any) -> float:
    """CPU seconds the machine spent on any process: all but idle and I/O wait (guest time is
    already inside user time on Linux; steal is another machine's)."""
    fields = times._asdict()
    return sum(
        v for k, v in fields.items() if k not in ("idle", "iowait", "steal", "guest", "guest_nice")
    )


class CpuSource(Protocol):
    """Where the CPU readings come from (psutil; a fake in tests)."""

    def machine_busy(self) -> float: ...
    def tree(self) -> dict[int, float]: ...  # pid: CPU seconds, this process and descendants
    def load(self) -> float | None: ...
    def cpus(self) -> int: ...


def job_root(process: psutil.Process | None = None) -> psutil.Process:
    """The process whose tree is this job: `process` (default this one), or under `torchrun` its
    launcher, the first ancestor outside the run (`TORCHELASTIC_RUN_ID`, which torchrun gives
    every rank), so that the ranks of one job do not count each other as other work."""
    process = process if process is not None else psutil.Process()
    run = os.environ.get(TORCHRUN_ID)
    if not run:
        return process
    for ancestor in process.parents():
        try:
            if ancestor.environ().get(TORCHRUN_ID) != run:
                return ancestor
        except psutil.Error:  # not ours to read: not a rank of this run
            return ancestor
    return process


class PsutilCpu:
    """The CPU readings of this machine and of the process tree rooted at `pid` (default: this
    process, or with `whole_job` this job's launcher, `job_root`)."""

    def __init__(self, pid: int | None = None, whole_job: bool = False) -> None:
        self.root = psutil.Process(pid) if pid is not None or not whole_job else job_root()

    def machine_busy(self) -> float:
        return busy_seconds(psutil.cpu_times())

    def tree(self) -> dict[int, float]:
        seconds = {}
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:  # ended between the listing and the reading
                continue
            seconds[process.pid] = times.user + times.system
        return seconds

    def load(self) -> float | None:
        try:
            return psutil.getloadavg()[0]
        except (OSError, AttributeError):
            return None

    def cpus(self) -> int:
        return psutil.cpu_count() or 1


class GpuSource(Protocol):
    def processes(self) -> list[int]: ...  # PIDs of the compute processes on the device
    def reasons(self) -> int | None: ...  # clock-event reason bits
    def sm_clock(self) -> int | None: ...  # MHz


class NvmlGpu:
    """NVML readings of one device; every query guarded (an older driver lacks the newer
    clock-event call, a MIG slice answers NOT_SUPPORTED): a failed query reads as None."""

    def __init__(self, handle: Any, nvml: Any = None) -> None:
        if nvml is None:
            import pynvml as nvml
        self.handle, self.nvml = handle, nvml

    def _call(self, *names: str) -> Any:
        for name in names:
            query = getattr(self.nvml, name, None)
            if query is None:
                continue
            try:
                return query(self.handle)
            except Exception:  # NVMLError, NVMLLibraryMismatchError (no NVMLError)
                continue
        return None

    def processes(self) -> list[int]:
        listed = self._call("nvmlDeviceGetComputeRunningProcesses") or []
        return [int(process.pid) for process in listed]

    def reasons(self) -> int | None:
        found = self._call(
            "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"
        )
        return None if found is None else int(found)

    def sm_clock(self) -> int | None:
        clock = getattr(self.nvml, "NVML_CLOCK_SM", 1)
        try:
            return int(self.nvml.nvmlDeviceGetClockInfo(self.handle, clock))
        except Exception:
            return None


def reason_names(bits: int | None) -> str | None:
    """`power cap, hw thermal`: the named reasons of a bit mask (None when none but idle)."""
    if not bits:
        return None
    names = [name for bit, name in REASONS.items() if bits & bit]
    unknown = bits & ~(GPU_IDLE | sum(REASONS))
    names += [f"0x{unknown:x}"] if unknown else []
    return ", ".join(names) or None


@dataclass(frozen=True)
class Contention:
    """What else used the machine over a timed window, and whether that marks it contended."""

    other_cpu_cores: float | None = None  # average cores used by processes not ours
    load_avg: float | None = None  # 1-minute load average at the window's end (ours included)
    other_gpu_processes: int | None = None  # compute processes on the device not ours
    gpu_throttle_reasons: str | None = None  # clock-event reasons seen (not idle)
    gpu_sm_clock_mhz: int | None = None  # the lowest SM clock read in the window
    contended: bool = False
    contention: str | None = None  # in words, for the terminal and the report

    def as_record(self) -> dict[str, Any]:
        return {
            "other_cpu_cores": self.other_cpu_cores,
            "load_avg": self.load_avg,
            "other_gpu_processes": self.other_gpu_processes,
            "gpu_throttle_reasons": self.gpu_throttle_reasons,
            "gpu_sm_clock_mhz": self.gpu_sm_clock_mhz,
            "contended": self.contended,
            "contention": self.contention,
        }


def judge(
    other_cores: float | None,
    resolution: float = 0.0,
    other_gpu: int | None = None,
    reasons: int | None = None,
    load: float | None = None,
) -> tuple[bool, str | None]:
    """Whether a window was contended, and the words for it. CPU: other work beyond the
    threshold by more than the readings' resolution (so a quiet row is never marked for a
    clock tick); GPU: any other process, or a slowdown reason."""
    why = []
    if other_cores is not None and other_cores - resolution > THRESHOLD_CORES:
        text = f"other processes {other_cores:.2f} cores avg"
        why.append(text + (f", load {load:.1f}" if load is not None else ""))
    if other_gpu:
        why.append(f"{other_gpu} other GPU process{'es' * (other_gpu > 1)}")
    if reasons and reasons & SLOWDOWNS:
        why.append(f"GPU clocks limited ({reason_names(reasons & SLOWDOWNS)})")
    return bool(why), "; ".join(why) or None


def _others(listed: Sequence[int], ours: set[int], expected: int = 1) -> int:
    """Compute processes not ours. NVML gives host PIDs: inside a container's PID namespace none
    matches ours, and then `expected` of those listed are ours (each holds a CUDA context)."""
    mine = sum(pid in ours for pid in listed)
    return len(listed) - (mine or min(expected, len(listed)))


class ContentionTracker:
    """`with tracker.track(): <timed steps>` leaves `tracker.contention`, the window's reading."""

    def __init__(
        self,
        cpu: CpuSource | None = None,
        gpu: GpuSource | None = None,
        on_gpu: bool = False,
        gpu_processes: int = 1,
    ) -> None:
        """`on_gpu`: the steps run on a GPU, so the other ranks of a torchrun job are ours;
        `gpu_processes`: how many of ours hold the device (`tsfbench ab`: its two workers)."""
        self.cpu = cpu if cpu is not None else PsutilCpu(whole_job=on_gpu)
        self.gpu = gpu
        self.gpu_processes = gpu_processes
        self.contention = Contention()

    def _gpu(self, ours: set[int]) -> tuple[int, int, int | None]:
        """(other processes, reason bits, SM clock) of one NVML reading."""
        assert self.gpu is not None
        others = _others(self.gpu.processes(), ours, self.gpu_processes)
        return others, self.gpu.reasons() or 0, self.gpu.sm_clock()

    @contextmanager
    def track(self, clock: Callable[[], float] = time.perf_counter) -> Iterator[None]:
        begin_tree, begin_busy, begin = self.cpu.tree(), self.cpu.machine_busy(), clock()
        gpu_begin = self._gpu(set(begin_tree)) if self.gpu is not None else None
        yield
        busy, end_tree, wall = self.cpu.machine_busy(), self.cpu.tree(), clock() - begin
        ours = sum(seconds - begin_tree.get(pid, 0.0) for pid, seconds in end_tree.items())
        other = max(0.0, busy - begin_busy - ours) / wall if wall > 0 else None
        resolution = TICK * (self.cpu.cpus() + 2 * len(end_tree)) / wall if wall > 0 else 0.0
        load = self.cpu.load()
        others = bits = clock_mhz = None
        if gpu_begin is not None:
            gpu_end = self._gpu(set(begin_tree) | set(end_tree))
            others = max(gpu_begin[0], gpu_end[0])
            bits = (gpu_begin[1] | gpu_end[1]) & ~GPU_IDLE
            clocks = [c for c in (gpu_begin[2], gpu_end[2]) if c is not None]
            clock_mhz = min(clocks) if clocks else None
        contended, text = judge(other, resolution, others, bits, load)
        self.contention = Contention(
            other_cpu_cores=None if other is None else round(other, 3),
            load_avg=None if load is None else round(load, 2),
            other_gpu_processes=others,
            gpu_throttle_reasons=reason_names(bits),
            gpu_sm_clock_mhz=clock_mhz,
            contended=contended,
            contention=text,
        )


def idle_state(seconds: float = IDLE_SECONDS, cpu: CpuSource | None = None) -> dict[str, Any]:
    """The machine before a run: other processes' CPU over `seconds` (this process sleeps)
    and the load; recorded in the environment, so a report says how quiet the machine was."""
    tracker = ContentionTracker(cpu)
    with tracker.track():
        time.sleep(seconds)
    reading = tracker.contention
    return {"idle_cpu_cores": reading.other_cpu_cores, "idle_load": reading.load_avg}


def wait_for_quiet(limit: float, cpu: CpuSource | None = None, window: float = 1.0) -> float | None:
    """Wait, in `window`-second readings, until other work is below the threshold or `limit`
    seconds pass; returns the last reading's other cores (None if nothing was read)."""
    deadline = time.monotonic() + limit
    other = None
    while time.monotonic() < deadline:
        tracker = ContentionTracker(cpu)
        with tracker.track():
            time.sleep(min(window, max(0.0, deadline - time.monotonic())))
        other = tracker.contention.other_cpu_cores
        if not tracker.contention.contended:
            break
    return other


def nvml_gpu(uuid: str | None) -> NvmlGpu | None:
    """The NVML readings of the device with `uuid`; None on a CPU or without NVML."""
    if uuid is None:
        return None
    try:
        from tsfbench.measure.sampler import nvml_handle

        return NvmlGpu(nvml_handle(uuid))
    except Exception:  # no driver, no library, unknown device: no GPU reading, no failed run
        return None
