"""The monitor process against a fake NVML: per-figure failures, MIG handles, host PIDs.

The fake `pynvml` is a module file put first on `sys.path`; the spawned monitor inherits the
parent's `sys.path` and environment, so it imports the fake and reads its behaviour from
`FAKE_NVML` (comma-separated switches). Its device uses 3 GiB, of which the process that
spawned the monitor (the measured one) holds 2 GiB.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tsfbench.measure.sampler import Monitor, Sampler, nvml_handle

GIB = 2**30
Mode = Callable[..., None]  # sets the fake's switches
UUID = "4f1c2a9e-0b7d-4c3e-9a51-6d2e8f0b1c3a"  # as torch prints it: no GPU- / MIG- prefix

FAKE = f'''
import os

MODE = set(os.environ.get("FAKE_NVML", "").split(","))
NVML_CLOCK_SM = 1
calls = []


class NVMLError(Exception):
    def __init__(self, value=999):
        self.value = value

    def __str__(self):
        return f"NVML error {{self.value}}"


class NVMLLibraryMismatchError(Exception):  # as in nvidia-ml-py: no NVMLError
    pass


class _Memory:
    used = 3 * {GIB}


class _Process:
    def __init__(self, pid, used):
        self.pid, self.usedGpuMemory = pid, used


def nvmlInit():
    if "die" in MODE:
        os._exit(3)


def nvmlShutdown():
    pass


def nvmlDeviceGetHandleByUUID(uuid):
    calls.append(uuid)
    prefix = "MIG-" if "mig" in MODE else "GPU-"
    if uuid != prefix + "{UUID}":
        raise NVMLError(6)  # NVML_ERROR_NOT_FOUND
    return "handle:" + uuid


def nvmlDeviceGetMemoryInfo(handle):
    if "memory_fails" in MODE:
        raise NVMLError(999)
    return _Memory()


def nvmlDeviceGetComputeRunningProcesses(handle):
    if "mismatch" in MODE:
        raise NVMLLibraryMismatchError("Unversioned function called")
    if "foreign" in MODE:  # host PIDs, as seen from inside a container
        return [_Process(4_000_001, 2 * {GIB}), _Process(4_000_002, {GIB})]
    return [_Process(os.getppid(), 2 * {GIB})]  # the monitor's parent is the measured process
'''


@pytest.fixture
def fake_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mode:
    """Install the fake; returns a function that sets its switches (here and in the monitor)."""
    (tmp_path / "pynvml.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)

    def mode(*switches: str) -> None:
        monkeypatch.setenv("FAKE_NVML", ",".join(switches))
        sys.modules.pop("pynvml", None)  # re-read FAKE_NVML on the next import

    mode()
    return mode


def monitored(seconds: float = 0.1) -> dict[str, Any]:
    with Monitor(0.005, gpu_uuid=UUID) as monitor:
        block = bytearray(32 * 2**20)  # touched: the RSS peak has something to see
        time.sleep(seconds)
        del block
    return monitor.peaks


def test_all_figures_are_sampled_from_a_working_nvml(fake_nvml: Mode) -> None:
    peaks = monitored()
    assert peaks["global_vram"] == 3 * GIB and peaks["process_vram"] == 2 * GIB
    assert peaks["ram"] > 32 * 2**20
    assert peaks["notes"] == {}


def test_a_failing_memory_query_keeps_the_other_figures_and_says_which_failed(
    fake_nvml: Mode,
) -> None:
    fake_nvml("memory_fails")
    peaks = monitored()
    assert peaks["global_vram"] is None
    assert peaks["process_vram"] == 2 * GIB and peaks["ram"] > 32 * 2**20
    assert set(peaks["notes"]) == {"global_vram"}
    assert "NVMLError" in peaks["notes"]["global_vram"]
    assert f"in {peaks['samples']} of {peaks['samples']} samples" in peaks["notes"]["global_vram"]


def test_a_library_mismatch_is_caught_although_it_is_no_nvml_error(fake_nvml: Mode) -> None:
    fake_nvml("mismatch")
    peaks = monitored()
    assert peaks["global_vram"] == 3 * GIB and peaks["ram"] > 32 * 2**20
    assert peaks["process_vram"] is None
    assert "NVMLLibraryMismatchError" in peaks["notes"]["process_vram"]


def test_processes_listed_but_none_of_ours_are_reported_as_a_pid_namespace(
    fake_nvml: Mode,
) -> None:
    fake_nvml("foreign")
    peaks = monitored()
    assert peaks["process_vram"] is None and peaks["global_vram"] == 3 * GIB
    note = peaks["notes"]["process_vram"]
    assert "NVML listed 2 process(es), none of this process tree" in note
    assert "PID namespace" in note


def test_a_monitor_that_dies_before_its_first_sample_does_not_fail_the_measurement(
    fake_nvml: Mode,
) -> None:
    fake_nvml("die")
    peaks = monitored(0.01)
    assert peaks["notes"] == {"monitor": "the monitor process ended early (exit 3)"}


def test_a_mig_slice_is_found_by_its_mig_uuid(fake_nvml: Mode) -> None:
    fake_nvml("mig")
    assert nvml_handle(UUID) == f"handle:MIG-{UUID}"
    import pynvml

    assert pynvml.calls == [f"GPU-{UUID}", f"MIG-{UUID}"]  # a whole GPU first, then a slice
    peaks = monitored()
    assert peaks["global_vram"] == 3 * GIB and peaks["process_vram"] == 2 * GIB


def test_a_whole_gpu_is_found_by_its_gpu_uuid_and_an_unknown_one_raises_not_found(
    fake_nvml: Mode,
) -> None:
    assert nvml_handle(UUID) == f"handle:GPU-{UUID}"
    assert nvml_handle(f"GPU-{UUID}") == f"handle:GPU-{UUID}"
    import pynvml

    with pytest.raises(pynvml.NVMLError) as raised:
        nvml_handle("00000000-0000-0000-0000-000000000000")
    assert raised.value.value == 6


def test_a_figure_that_fails_now_and_then_keeps_its_peak_and_counts_the_failures(
    fake_nvml: Mode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pynvml

    answers = iter([3 * GIB, pynvml.NVMLError(15), 5 * GIB, pynvml.NVMLError(15)])

    class Used:
        def __init__(self) -> None:
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            self.used = answer

    monkeypatch.setattr(pynvml, "nvmlDeviceGetMemoryInfo", lambda handle: Used())
    sampler = Sampler(os.getppid(), exclude=-1, gpu_uuid=UUID)
    for _ in range(4):
        sampler.sample()
    result = sampler.result()
    assert result["global_vram"] == 5 * GIB
    assert result["notes"]["global_vram"] == "NVMLError: NVML error 15 (failed in 2 of 4 samples)"


def test_the_tree_is_walked_again_only_after_the_rescan_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tsfbench.measure.sampler as sampler_module

    walks = []
    monkeypatch.setattr(sampler_module, "tree", lambda pid, exclude: walks.append(pid) or [pid])
    sampler = Sampler(os.getpid(), exclude=-1, rescan=60.0)
    for _ in range(50):
        sampler.sample()
    assert walks == [os.getpid()]  # one walk for 50 samples
    assert sampler.result()["ram"] > 0
    every = Sampler(os.getpid(), exclude=-1, rescan=0.0)
    for _ in range(5):
        every.sample()
    assert len(walks) == 1 + 5


def test_a_new_child_is_counted_after_the_next_walk() -> None:
    import subprocess

    sampler = Sampler(os.getpid(), exclude=-1, rescan=0.0)
    sampler.sample()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"]) as child:
        try:
            sampler.sample()
            assert child.pid in sampler.pids
        finally:
            child.kill()


def test_the_monitor_reports_its_own_cpu_time() -> None:
    with Monitor(0.005) as monitor:
        time.sleep(0.1)
    cost = monitor.peaks["monitor"]
    assert 0 < cost["cpu_s"] <= cost["wall_s"] * 1.5
    assert cost["wall_s"] >= 0.1
    assert monitor.peaks["notes"] == {}  # no GPU asked for: nothing missing


@pytest.mark.gpu
def test_a_real_gpu_is_found_and_its_memory_sampled() -> None:
    import torch

    from tsfbench.measure.energy import gpu_uuid

    uuid = gpu_uuid("cuda")
    assert uuid is not None and nvml_handle(uuid) is not None  # GPU- or MIG- prefix
    with Monitor(0.005, gpu_uuid=uuid) as monitor:
        block = torch.ones(2**30, dtype=torch.uint8, device="cuda")  # 1 GiB
        torch.cuda.synchronize()
        time.sleep(0.2)
        del block
    peaks = monitor.peaks
    assert "global_vram" not in peaks["notes"] and peaks["global_vram"] >= 2**30
    # Our process's share, or, in a container (NVML gives host PIDs), the reason it is missing
    if peaks["process_vram"] is None:
        assert "process_vram" in peaks["notes"]
    else:
        assert peaks["process_vram"] >= 2**30


class _ResetPipe:
    """The monitor's end of a socket pair whose measured process was killed mid-sample."""

    closed = False

    def send(self, _: object) -> None:
        pass

    def poll(self, _: float) -> bool:
        raise ConnectionResetError(104, "Connection reset by peer")

    def close(self) -> None:
        self.closed = True


def test_a_monitor_whose_measured_process_is_killed_ends_quietly() -> None:
    """Ctrl-C kills the measured child; its monitor must not print a traceback on the reset."""
    from tsfbench.measure.sampler import _sample

    pipe = _ResetPipe()
    _sample(pipe, os.getpid(), 0.01, None, 0.5)  # type: ignore[arg-type]
    assert pipe.closed
