"""Contention of a timed window, from fake CPU readings and a fake NVML: other work is noticed,
a quiet window is never marked, and an auto run times a contended window again."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure import canary as canary_module
from tsfbench.measure import contention as contention_module
from tsfbench.measure import sweep as sweep_module
from tsfbench.measure.contention import (
    GPU_IDLE,
    THRESHOLD_CORES,
    Contention,
    ContentionTracker,
    NvmlGpu,
    idle_state,
    judge,
)

OURS = 4242  # the fake tree's pid


class FakeCpu:
    """Machine busy time = our tree's CPU time + `others` cores of other work, on a clock."""

    def __init__(self, others: float, ours_cores: float = 1.0, load: float = 3.1) -> None:
        self.others, self.ours_cores, self.load_value = others, ours_cores, load
        self.now = time.perf_counter

    def machine_busy(self) -> float:
        return (self.others + self.ours_cores) * self.now()

    def tree(self) -> dict[int, float]:
        return {OURS: self.ours_cores * self.now()}

    def load(self) -> float:
        return self.load_value

    def cpus(self) -> int:
        return 2


class Clock:
    """A fake clock: `advance` moves it; FakeCpu reads it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def window(cpu: FakeCpu, seconds: float, gpu: Any = None) -> Contention:
    clock = Clock()
    cpu.now = clock
    tracker = ContentionTracker(cpu, gpu)
    with tracker.track(clock=clock):
        clock.t += seconds
    return tracker.contention


def test_a_quiet_window_is_not_marked() -> None:
    reading = window(FakeCpu(others=0.02), seconds=10)
    assert reading.other_cpu_cores == pytest.approx(0.02)
    assert not reading.contended and reading.contention is None


def test_other_work_beyond_a_tenth_of_a_core_marks_the_window_and_says_what() -> None:
    reading = window(FakeCpu(others=1.42, load=3.1), seconds=10)
    assert reading.contended
    assert reading.contention == "other processes 1.42 cores avg, load 3.1"
    assert reading.other_cpu_cores == pytest.approx(1.42) and reading.load_avg == 3.1


def test_our_own_cpu_time_never_counts_as_other_work() -> None:
    reading = window(FakeCpu(others=0.0, ours_cores=2.0), seconds=10)  # both cores, all ours
    assert reading.other_cpu_cores == pytest.approx(0.0) and not reading.contended


# A launcher (torchrun's agent: no run id of its own) starts two ranks, the second of which
# lists the process tree it counts as its own; prints the sibling's pid and that list.
LAUNCHER = """
import json, os, subprocess, sys
run_id, whole_job = sys.argv[1], sys.argv[2]
rank = lambda i: {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RUN_ID"} | (
    {"TORCHELASTIC_RUN_ID": i} if i else {})
sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
sibling = subprocess.Popen(sleeper, env=rank(run_id))
tree = ("from tsfbench.measure.contention import PsutilCpu; "
        f"print(list(PsutilCpu(whole_job={whole_job}).tree()))")
try:
    out = subprocess.run([sys.executable, "-c", tree], env=rank(run_id), capture_output=True,
                         text=True, check=True).stdout
finally:
    sibling.kill()
print(json.dumps({"sibling": sibling.pid, "launcher": os.getpid(), "tree": json.loads(out)}))
"""


@pytest.mark.parametrize(
    ("run_id", "whole_job", "one_job"),
    [("job", True, True), ("job", False, False), ("", True, False)],
    ids=["torchrun on gpus", "torchrun on the cpu", "no torchrun"],
)
def test_the_gpu_ranks_of_one_torchrun_job_are_one_tree(
    run_id: str, whole_job: bool, one_job: bool
) -> None:
    """GPU ranks of one torchrun job (each on its own GPU) are not each other's other work;
    ranks on the CPU share its cores and are; without torchrun a process's tree is its own."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, run_id, str(whole_job)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert (seen["sibling"] in seen["tree"]) is one_job
    assert (seen["launcher"] in seen["tree"]) is one_job  # the tree is the launcher's
    assert len(seen["tree"]) == (3 if one_job else 1)  # launcher, two ranks; else the rank alone


def test_a_short_window_is_not_marked_for_the_clock_ticks_of_its_readings() -> None:
    # 0.15 core over 0.2 s is 30 ms: within a few 10 ms ticks of each counter
    assert not window(FakeCpu(others=0.15), seconds=0.2).contended
    assert window(FakeCpu(others=0.15), seconds=20).contended


@pytest.mark.parametrize(
    ("others", "contended"), [(THRESHOLD_CORES - 0.01, False), (THRESHOLD_CORES + 0.01, True)]
)
def test_the_threshold_on_both_sides(others: float, contended: bool) -> None:
    assert judge(others, resolution=0.0)[0] is contended


def fake_nvml(processes: list[int], reasons: int | None = 0, new_call: bool = True) -> Any:
    """A pynvml stand-in: the compute process list, the clock reasons (the newer call or only
    the older one; None: the query fails) and the SM clock."""

    def listed(handle: Any) -> list[Any]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=2**30) for pid in processes]

    def current(handle: Any) -> int:
        if reasons is None:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return reasons

    calls = {"nvmlDeviceGetComputeRunningProcesses": listed, "NVML_CLOCK_SM": 1}
    calls["nvmlDeviceGetClockInfo"] = lambda handle, clock: 1410
    name = "ClocksEventReasons" if new_call else "ClocksThrottleReasons"
    calls[f"nvmlDeviceGetCurrent{name}"] = current
    return SimpleNamespace(**calls)


def gpu_window(nvml: Any) -> Contention:
    return window(FakeCpu(others=0.0), seconds=5, gpu=NvmlGpu("handle", nvml))


def test_another_process_on_the_gpu_marks_the_window() -> None:
    reading = gpu_window(fake_nvml([OURS, 777]))
    assert reading.other_gpu_processes == 1 and reading.contended
    assert reading.contention == "1 other GPU process"
    assert reading.gpu_sm_clock_mhz == 1410


def test_our_own_gpu_process_alone_is_quiet() -> None:
    reading = gpu_window(fake_nvml([OURS], reasons=GPU_IDLE))
    assert reading.other_gpu_processes == 0 and not reading.contended
    assert reading.gpu_throttle_reasons is None  # idle is no throttling


def test_in_a_container_one_unmatched_process_is_taken_as_ours() -> None:
    # NVML lists host PIDs: inside a PID namespace our process has another number
    assert not gpu_window(fake_nvml([98765])).contended
    assert gpu_window(fake_nvml([98765, 98766])).other_gpu_processes == 1
    # `tsfbench ab` holds the device from two workers: two unmatched are both ours
    two = ContentionTracker(FakeCpu(others=0.0), NvmlGpu("h", fake_nvml([1, 2])), gpu_processes=2)
    with two.track():
        pass
    assert two.contention.other_gpu_processes == 0 and not two.contention.contended


def test_thermal_slowdown_marks_the_window_and_a_power_cap_is_only_recorded() -> None:
    thermal = gpu_window(fake_nvml([OURS], reasons=0x40))
    assert thermal.contended and "hw thermal" in thermal.contention
    capped = gpu_window(fake_nvml([OURS], reasons=0x4))
    assert not capped.contended and capped.gpu_throttle_reasons == "power cap"


def test_an_older_nvml_is_asked_with_the_throttle_call_and_a_failing_one_reads_none() -> None:
    older = gpu_window(fake_nvml([OURS], reasons=0x20, new_call=False))
    assert older.contended and older.gpu_throttle_reasons == "sw thermal"
    failing = gpu_window(fake_nvml([OURS], reasons=None))
    assert failing.gpu_throttle_reasons is None and not failing.contended


def test_the_idle_state_before_a_run_is_other_work_and_load() -> None:
    state = idle_state(0.05, FakeCpu(others=0.5, load=1.5))
    assert state["idle_cpu_cores"] == pytest.approx(0.5, abs=0.01)
    assert state["idle_load"] == 1.5


# --- a probe under contention: re-measured when auto, else marked ------------------------------


@pytest.fixture
def busy_then_quiet(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The machine's other work in each timed window, in order; waits for quiet are skipped."""
    others: list[float] = []
    script = itertools.chain([1.0], itertools.repeat(0.0))

    def cpu(whole_job: bool = False) -> FakeCpu:
        others.append(next(script))
        return FakeCpu(others=others[-1])

    monkeypatch.setattr(contention_module, "PsutilCpu", cpu)
    monkeypatch.setattr(contention_module, "TICK", 0.0)  # fake readings are exact: no ticks
    monkeypatch.setattr(sweep_module, "wait_for_quiet", lambda limit: None)
    return others


def test_auto_times_a_contended_window_again_and_stores_the_quiet_one(
    busy_then_quiet: list[float], tiny: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(canary_module, "EVERY", 1e9)  # the canary at each end of a window only
    config = RunConfig(attention="divided", frames=2, size=32)
    settings = ProbeSettings(iterations="auto", warmup=1, max_time=0.5, device="cpu")
    record = sweep_module.probe(config, settings, tiny)
    assert busy_then_quiet == [1.0, 0.0]
    assert record["remeasured"] == 1 and record["contended"] is False
    assert record["contention"] is None and record["iterations"] >= 6
    # the stored window's own canary readings, not the thrown-away window's too
    assert len(record["canary_samples_ms"]) == 2 and record["canary_kind"]


def test_a_fixed_count_keeps_a_contended_window_and_marks_it(
    busy_then_quiet: list[float], tiny: dict[str, object]
) -> None:
    config = RunConfig(attention="divided", frames=2, size=32)
    settings = ProbeSettings(iterations=3, warmup=1, device="cpu")
    record = sweep_module.probe(config, settings, tiny)
    assert busy_then_quiet == [1.0] and record["remeasured"] == 0
    assert record["contended"] is True
    assert record["contention"].startswith("other processes 1.00 cores avg")
