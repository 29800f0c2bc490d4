"""benchmarks/gpu_acceptance.py: its CPU smoke run end to end (so the script cannot rot), and
the rules that keep one phase from taking the others down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_acceptance.py"


@pytest.fixture(scope="module")
def acceptance(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("gpu_acceptance")


def test_the_cpu_smoke_run_passes_every_phase_and_marks_gpu_targets_not_run(
    tmp_path: Path,
) -> None:
    pytest.importorskip("transformers")  # vs_reference compares with it
    pytest.importorskip("decord")  # the suite's accuracy task decodes videos
    out = tmp_path / "acceptance"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--cpu-smoke"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    phases = {phase["name"]: phase for phase in summary["phases"]}
    assert list(phases) == ["pytest", "vs_reference", "memory", "figure3", "fit", "quick"]
    assert {name: phase["status"] for name, phase in phases.items()} == dict.fromkeys(
        phases, "pass"
    ), {name: phase["reason"] for name, phase in phases.items()}
    assert all(phase["wall_s"] > 0 for phase in phases.values())
    targets = {target["name"]: target for target in summary["targets"]}
    assert targets["quick run"]["result"] == targets["quick report"]["result"] == "pass"
    gpu_only = [name for name in targets if not name.startswith("quick")]
    assert all(targets[name]["result"] == "not run" for name in gpu_only)
    assert all(targets[name]["note"].startswith("no GPU") for name in gpu_only)
    # the smoke run went through the measuring code, not around it
    assert targets["pytest -m gpu"]["value"].startswith("0 passed, 0 failed, ")
    assert "x hf" in targets["vs_reference speed"]["value"]
    assert targets["prediction joint 2x32 train"]["value"].startswith("predicted ")
    assert " frames ok, " in targets["fit boundary"]["value"]  # the boundary pair was run
    for series in ("joint sdpa", "divided math"):  # both schemes, both kernels
        assert targets[f"figure3 {series}"]["value"] == "2 frames"
    for name in ("env.json", "pytest.xml", "vs_reference.json", "memory_sweep.json",
                 "figure3.json", "store/tsfbench.sqlite", "report/quick.md"):  # fmt: skip
        assert (out / name).is_file(), name
    table = (out / "summary.md").read_text()
    assert "| target | goal | measured | result | note |" in table
    assert "| quick run | every task ok |" in table
    for phase in phases:
        assert f"[{phase}] pass in " in done.stdout  # per-phase wall times are printed


def test_a_failing_phase_is_one_line_and_the_next_phase_runs(
    acceptance: ModuleType, tmp_path: Path
) -> None:
    def broken(ctx: object, targets: dict[str, object]) -> None:
        raise RuntimeError("CUDA error: an illegal memory access\nsecond line")

    def fine(ctx: object, targets: dict[str, object]) -> None:
        targets["after"].set(acceptance.PASS, "1")

    targets: dict[str, object] = {}
    records = []
    for phase in (
        acceptance.Phase("first", broken, (("before", "goal"),)),
        acceptance.Phase("second", fine, (("after", "goal"),)),
    ):
        record = acceptance.PhaseRecord(phase.name, budget_s=30)
        records.append(record)
        context = acceptance.Context(tmp_path, True, False, {}, record)
        acceptance.run_phase(phase, context, targets)
    assert [(r.status, r.reason) for r in records] == [
        ("fail", "RuntimeError: CUDA error: an illegal memory access"),
        ("pass", ""),
    ]
    assert targets["before"].result == "fail"
    assert "phase first failed: RuntimeError" in targets["before"].note
    assert targets["after"].result == "pass"


def test_a_command_past_the_phase_budget_is_killed_with_its_children(
    acceptance: ModuleType, tmp_path: Path
) -> None:
    record = acceptance.PhaseRecord("slow", budget_s=2)
    context = acceptance.Context(tmp_path, True, False, {}, record)
    context.deadline = time.monotonic() + 2
    marker = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {marker}; wait"
    start = time.monotonic()
    with pytest.raises(acceptance.PhaseFailed, match="timed out"):
        context.run(["bash", "-c", script], "slow")
    assert time.monotonic() - start < 20
    child = int(marker.read_text())
    time.sleep(0.2)
    status = Path(f"/proc/{child}/status")
    # the shell's own child (a phase's worker process) is gone too, not left holding a GPU
    assert not status.exists() or "State:\tZ" in status.read_text()


def test_the_fit_verdict_passes_only_when_the_largest_runs_and_the_next_does_not(
    acceptance: ModuleType,
) -> None:
    def row(frames: int, status: str) -> dict[str, object]:
        return {"frames": frames, "status": status, "error": None if status == "ok" else "x"}

    verdict = acceptance.fit_verdict
    assert verdict(True, row(96, "ok"), row(97, "oom"))[:2] == (
        "pass",
        "96 frames ok, 97 frames oom",
    )
    assert verdict(True, row(96, "oom"), row(97, "oom"))[0] == "fail"  # the margin was needed
    assert "the next one ran" in verdict(True, row(96, "ok"), row(97, "ok"))[2]
    assert verdict(True, row(96, "ok"), row(97, "error"))[2] == "error: x"
    assert verdict(False, row(96, "ok"), row(97, "ok"))[0] == "not run"
    assert verdict(True, None, row(97, "oom"))[0] == "fail"
