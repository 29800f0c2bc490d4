"""Isolation: a failure in the child is that configuration's row, and the sweep goes on."""

from __future__ import annotations

import multiprocessing
import operator
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch

from tsfbench.config import ProbeSettings, RunConfig, parse_memory
from tsfbench.measure import isolate
from tsfbench.measure import sweep as sweep_module
from tsfbench.measure.isolate import Outcome, limit_memory, run_isolated
from tsfbench.measure.sweep import FIGURES, largest_fitting, measure, miniature, sweep
from tsfbench.store import Status


def test_a_value_comes_back() -> None:
    outcome = run_isolated(operator.add, 2, 3)
    assert (outcome.status, outcome.error, outcome.value) == ("ok", None, 5)


def test_an_exception_in_the_child_is_an_error_row() -> None:
    outcome = run_isolated(operator.truediv, 1, 0)
    assert outcome.status == "error"
    assert outcome.error.startswith("ZeroDivisionError")


def test_a_child_killed_by_a_signal_is_an_error_row() -> None:
    outcome = run_isolated(os.abort)
    assert outcome.status == "error"
    assert "SIGABRT" in outcome.error


def test_running_out_of_a_cpu_memory_limit_is_oom() -> None:
    outcome = run_isolated(bytearray, 2**30, memory_limit=parse_memory("64MiB"))
    assert outcome.status == "oom"


def test_tight_memory_limit_makes_large_configs_oom_and_the_sweep_continues(
    tiny: dict[str, object],
) -> None:
    configs = [
        RunConfig(attention="joint", frames=16, size=224),  # 3137 tokens: 315 MB of attention
        RunConfig(attention="divided", frames=2, size=32),
    ]
    settings = ProbeSettings(
        mode="train",
        batch=2,
        iterations=2,
        warmup=1,
        backend="math",  # the attention matrix is materialised, as in the paper's code
        memory_limit=parse_memory("256MiB"),
        device="cpu",  # an address-space limit; the GPU's fraction is tested below
    )
    seen: list[tuple[int, int, str]] = []
    records = sweep(
        configs,
        settings,
        overrides=tiny,
        progress=lambda i, n, c, r: seen.append((i, n, c.attention)),
    )
    assert [r["status"] for r in records] == ["oom", "ok"]
    assert seen == [(1, 2, "joint"), (2, 2, "divided")]
    oom, ok = records
    assert oom["error"] and oom["latency_median_ms"] is None
    assert ok["error"] is None and ok["latency_median_ms"] > 0 and ok["max_ram_bytes"] > 0
    assert set(oom) == set(ok)  # every row has every column
    assert oom["predicted_fits"] is False and ok["predicted_fits"] is True
    fitting = largest_fitting(records)
    assert fitting["joint"] is None and fitting["divided"]["frames"] == 2


def test_an_unavailable_kernel_is_an_error_row_not_a_crash(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="divided", frames=2, size=32)
    settings = ProbeSettings(backend="efficient", device="cpu")  # CUDA has it (fp32 too)
    record = measure(config, settings, overrides=tiny, isolate=False)
    assert record["status"] == "error"
    assert record["error"]
    assert all(record[key] is None for key in FIGURES if key not in settings.as_dict())
    assert record["iterations"] == settings.iterations  # the setting survives a failed run


def test_the_miniature_run_of_a_compiled_config_compiles_in_a_warmup_step() -> None:
    config = RunConfig(attention="divided", frames=8, size=224)
    _, small, _ = miniature(config, ProbeSettings(compile=True, device="cpu"))
    assert (small.compile, small.warmup, small.iterations) == (True, 1, 1)


def test_predict_only_runs_nothing(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="joint", frames=4, size=32)
    settings = ProbeSettings(memory_limit=2**30, device="cpu")
    record = measure(config, settings, overrides=tiny, predict_only=True)
    assert record["status"] == "predicted"
    assert record["predicted_peak_bytes"] > 0 and record["predicted_fits"] is True
    assert record["latency_median_ms"] is None


GIB = 2**30


@dataclass
class FakeCard:
    """An 80 GiB card whose current device is 1: this process holds a 0.5 GiB context outside
    torch and 0.25 GiB reserved by torch's allocator; `others` bytes belong to other processes.
    NVML (a fake `pynvml`) lists both processes, or is missing where `nvml` is False."""

    calls: list[tuple[object, ...]] = field(default_factory=list)
    total: int = 80 * GIB
    context: int = GIB // 2
    reserved: int = GIB // 4
    others: int = 0

    def free(self) -> int:
        """Before the cap's `empty_cache` (the child's start), the warm-up has not run yet."""
        if ("empty_cache",) not in self.calls:
            return self.start()
        return self.total - self.others - self.context - self.reserved

    def start(self) -> int:
        """Free memory right after the context is created: the warm-up's memory not yet there
        (the fake's bare context is 0 bytes)."""
        return self.total - self.others


def fake_nvml(card: FakeCard) -> ModuleType:
    module = ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def processes(handle: object) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(pid=4242, usedGpuMemory=card.others),  # another process
            SimpleNamespace(pid=os.getpid(), usedGpuMemory=card.context + card.reserved),
        ]

    module.__dict__.update(
        NVMLError=NVMLError,
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: uuid,
        nvmlDeviceGetComputeRunningProcesses=processes,
    )
    return module


@pytest.fixture(params=["nvml", "no nvml"])
def fake_cuda(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeCard:
    """torch.cuda's memory calls on a `FakeCard`, recorded in order; with and without NVML."""
    card = FakeCard()

    def set_fraction(fraction: float, device: object = None) -> None:
        # the real function's own check: a torch.device must carry an index
        card.calls.append(("fraction", fraction, torch.cuda._utils._get_device_index(device)))

    def mem_get_info(device: object = None) -> tuple[int, int]:
        card.calls.append(("mem_get_info", device))
        return card.free(), card.total

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: card.calls.append(("empty_cache",)))
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: card.reserved)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda device=None: SimpleNamespace(total_memory=card.total, uuid="GPU-aaaa"),
    )
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", set_fraction)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(card) if request.param == "nvml" else None)
    return card


def test_a_gpu_limit_without_a_device_index_caps_the_current_device(fake_cuda: FakeCard) -> None:
    limit_memory(32 * GIB, torch.device("cuda"), fake_cuda.start())
    assert fake_cuda.calls[-1][0] == "fraction" and fake_cuda.calls[-1][2] == 1
    limit_memory(32 * GIB, torch.device("cuda:3"), fake_cuda.start())
    assert fake_cuda.calls[-1][0] == "fraction" and fake_cuda.calls[-1][2] == 3


def test_a_gpu_limit_leaves_out_the_cuda_context_like_a_real_card(fake_cuda: FakeCard) -> None:
    """An emulated 32 GiB card: the allocator may reserve 32 GiB less the 0.5 GiB context, which
    is measured after the warm-up's cached blocks are released."""
    limit_memory(32 * GIB, torch.device("cuda"), fake_cuda.start())
    assert fake_cuda.calls == [
        ("empty_cache",),
        ("mem_get_info", 1),
        ("fraction", (32 - 0.5) / 80, 1),
    ]


def test_another_processs_memory_does_not_shrink_the_emulated_card(fake_cuda: FakeCard) -> None:
    """60 GiB held by another process on the card: the cap still counts only this process's
    0.5 GiB context (NVML's memory of our PID, or free memory since our context was created)."""
    fake_cuda.others = 60 * GIB
    with_nvml = sys.modules["pynvml"] is not None
    start = () if with_nvml else (fake_cuda.start(),)  # NVML alone needs no baseline
    capped = limit_memory(32 * GIB, torch.device("cuda"), *start)
    assert fake_cuda.calls[-1] == ("fraction", (32 - 0.5) / 80, 1)
    assert capped.context == GIB // 2
    note = capped.note
    # the card cannot give the emulated 31.5 GiB while the other process holds 60: said so
    assert note is not None and "held by other processes" in note
    assert ("bare context itself is not counted" in note) is not with_nvml


def _child_outcome(memory_limit: int) -> Outcome:
    """`isolate._child` run in this process (so the fakes apply), as a child would answer."""
    ours, theirs = multiprocessing.Pipe(duplex=False)
    handler = signal.getsignal(signal.SIGINT)
    try:
        isolate._child(theirs, operator.add, (2, 3), memory_limit, "cuda", None)
    finally:
        signal.signal(signal.SIGINT, handler)
    outcome, _ = ours.recv()
    return outcome


def test_a_cap_at_or_below_this_processs_context_is_an_error_row_not_oom(
    fake_cuda: FakeCard,
) -> None:
    outcome = _child_outcome(GIB // 4)  # below the 0.5 GiB context: nothing could run
    assert outcome.status == "error"
    assert "at or below this process's own GPU memory" in (outcome.error or "")
    assert not any(call[0] == "fraction" for call in fake_cuda.calls)


def test_a_cap_above_the_card_is_noted_in_the_row(
    fake_cuda: FakeCard, monkeypatch: pytest.MonkeyPatch, tiny: dict[str, object]
) -> None:
    outcome = _child_outcome(200 * GIB)
    assert (outcome.status, outcome.value) == ("ok", 5)
    assert fake_cuda.calls[-1] == ("fraction", 1.0, 1)
    assert outcome.context == GIB // 2
    assert "200.00 GiB is above this GPU's 80.00 GiB" in (outcome.note or "")
    # the sweep's record carries the note beside the latency's own notes
    answer = Outcome(Status.OK, None, {"notes": "fp16 GradScaler"}, outcome.note, GIB // 2)
    monkeypatch.setattr(sweep_module, "run_isolated", lambda *a, **k: answer)
    settings = ProbeSettings(memory_limit=200 * GIB, device="cpu", iterations=1)
    record = measure(RunConfig(frames=2, size=32), settings, overrides=tiny, env={})
    assert record["notes"] == f"fp16 GradScaler; {outcome.note}"
    assert record["memory_cap_context_bytes"] == GIB // 2


@pytest.mark.gpu
def test_gpu_memory_fraction_turns_a_large_config_into_oom() -> None:
    config = RunConfig(attention="joint", frames=32, size=448)
    settings = ProbeSettings(mode="train", memory_limit=parse_memory("2GiB"), iterations=1)
    assert measure(config, settings)["status"] == "oom"


def test_an_answer_says_where_the_time_went() -> None:
    outcome = run_isolated(operator.add, 2, 3)
    assert set(outcome.seconds) == {"start", "run", "teardown"}
    assert all(seconds >= 0 for seconds in outcome.seconds.values())


def test_a_child_has_the_parents_current_environment_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_isolated(operator.add, 1, 1)  # the fork server (if any) is running before the change
    monkeypatch.setenv("TSFBENCH_TEST_VALUE", "42")
    monkeypatch.chdir(tmp_path)
    assert run_isolated(os.getenv, "TSFBENCH_TEST_VALUE").value == "42"
    assert run_isolated(os.getcwd).value == str(tmp_path)


SCRIPT = """
import sys
import time
from pathlib import Path

with Path(sys.argv[1]).open("a") as runs:  # one line each time this script is executed
    print(__name__, file=runs)

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.measure.isolate import run_isolated
from tsfbench.measure.sweep import probe

if __name__ == "__main__":
    tiny = {"dim": 32, "depth": 1, "heads": 2}
    config, settings = RunConfig(frames=1, size=16), ProbeSettings(warmup=0, iterations=1)
    outcome = run_isolated(probe, config, settings, tiny)
    assert outcome.status == "ok", outcome.error
"""


def test_a_child_and_its_memory_monitor_do_not_run_the_parents_script_again(
    tmp_path: Path,
) -> None:
    """A program like the `tsfbench` command is a script: the child and the monitor it starts
    used to execute it again (importing typer, rich and torch) before doing anything."""
    script, runs = tmp_path / "program.py", tmp_path / "runs.txt"
    script.write_text(SCRIPT)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script), str(runs)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert runs.read_text().split() == ["__main__"]


def test_the_fork_servers_imports_touch_no_cuda() -> None:
    """A fork server that initialised CUDA would hand its children a context they cannot use."""
    check = """
import importlib, torch
def touched(*args, **kwargs):
    raise AssertionError("CUDA touched while importing")
for name in ("_cuda_getDeviceCount", "_cuda_init"):
    setattr(torch._C, name, touched)
torch.cuda.is_available = torch.cuda.device_count = torch.cuda._lazy_init = touched
from tsfbench.measure.sweep import PRELOAD
for module in PRELOAD:
    importlib.import_module(module)
assert not torch.cuda.is_initialized()
"""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_only_a_memory_cap_needs_the_miniature_step_first(
    tiny: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(
        sweep_module, "run_isolated", lambda *a, **kw: calls.append(kw) or Outcome("ok")
    )
    config = RunConfig(attention="divided", frames=2, size=32)
    measure(config, ProbeSettings(), overrides=tiny)
    measure(config, ProbeSettings(memory_limit=2**30), overrides=tiny)
    assert calls[0]["prepare"] is None
    assert calls[1]["prepare"] is not None


@pytest.mark.gpu
def test_a_gpu_memory_limit_makes_large_configs_oom_and_small_ones_run(
    tiny: dict[str, object],
) -> None:
    """2 GiB less the CUDA context: joint 32 x 224 materialises 1.2 GiB attention matrices."""
    configs = [
        RunConfig(attention="joint", frames=32, size=224),
        RunConfig(attention="divided", frames=2, size=32),
    ]
    settings = ProbeSettings(
        mode="train", batch=2, iterations=2, warmup=1, backend="math",
        memory_limit=parse_memory("2GiB"), device="cuda",
    )  # fmt: skip
    oom, ok = sweep(configs, settings, overrides=tiny)
    assert (oom["status"], ok["status"]) == ("oom", "ok"), (oom["error"], ok["error"])
    assert 0 < ok["max_allocated_bytes"] < 2 * GIB
    assert oom["predicted_fits"] is False and ok["predicted_fits"] is True


@pytest.mark.gpu
def test_fp32_efficient_attention_runs_on_cuda(tiny: dict[str, object]) -> None:
    config = RunConfig(attention="divided", frames=2, size=32)
    record = measure(config, ProbeSettings(backend="efficient", device="cuda"), overrides=tiny)
    assert record["status"] == "ok", record["error"]
    assert record["latency_median_ms"] > 0


def test_a_child_past_its_timeout_is_a_timeout_row() -> None:
    outcome = run_isolated(time.sleep, 60.0, timeout=1.0)
    assert outcome.status == "timeout", outcome.error
    assert "timed out after 1 s" in (outcome.error or "")


def test_a_ctrl_c_while_a_child_starts_is_raised_and_the_child_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fork server's child can run its target before `start()` returns here; a Ctrl-C in that
    window used to be ignored and lost, and a child waiting for input hung the run."""
    import multiprocessing.process

    import psutil

    real_start = multiprocessing.process.BaseProcess.start

    def start_then_ctrl_c(self: multiprocessing.process.BaseProcess) -> None:
        real_start(self)
        os.kill(os.getpid(), signal.SIGINT)  # lands while run_isolated is still starting it
        time.sleep(0.2)

    def descendants() -> set[int]:
        return {
            p.pid
            for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE
        }

    isolate.start_server()  # the server itself is a lasting child; the test's must not be
    before = descendants()
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", start_then_ctrl_c)
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_isolated(time.sleep, 5.0, method="forkserver")
    assert time.monotonic() - began < 4.0  # raised at once, not after the child's 5 s
    deadline = time.monotonic() + 5
    while descendants() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not descendants() - before  # the child was stopped, not left running
