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
    tmp_path: Path, acceptance: ModuleType
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
    assert list(phases) == [
        "pytest", "vs_reference", "memory", "figure3", "quick", "fit", "profile"
    ]  # fmt: skip
    assert {name: phase["status"] for name, phase in phases.items()} == dict.fromkeys(
        phases, "pass"
    ), {name: phase["reason"] for name, phase in phases.items()}
    assert all(phase["wall_s"] > 0 for phase in phases.values())
    # the GPU run's judge, every verdict function, ran on the smoke run's records
    assert summary["verdicts"] == sorted(acceptance.VERDICTS)
    targets = {target["name"]: target for target in summary["targets"]}
    assert targets["quick run"]["result"] == targets["quick report"]["result"] == "pass"
    assert targets["tsfbench env"]["result"] == "pass"
    motion = targets.pop("motion test")  # judged from the report, shown, not judged: 2 steps
    assert motion["result"] == "not run" and motion["value"].startswith("divided ")
    gpu_only = [name for name in targets if not name.startswith(("quick", "tsfbench env"))]
    assert all(targets[name]["result"] == "not run" for name in gpu_only)
    assert all(targets[name]["note"].startswith("no GPU") for name in gpu_only)
    # the smoke run went through the measuring code, not around it
    assert targets["pytest -m gpu"]["value"].startswith("0 passed, 0 failed, ")
    assert "x hf" in targets["vs_reference speed"]["value"]
    assert targets["prediction joint 2x32 train"]["value"].startswith("predicted ")
    assert " frames ok, " in targets["fit boundary"]["value"]  # the boundary pair was run
    assert targets["profile parts"]["value"].startswith("parts sum ")  # a profile was judged
    for series in ("joint sdpa", "divided math"):  # both schemes, both kernels
        assert targets[f"figure3 {series}"]["value"].startswith("2 frames; paper ")
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


# --- The judge: each verdict with made-up records on both sides of its threshold --------------

GIB = 2**30


def test_the_speed_verdict_passes_at_its_goal_and_fails_below(acceptance: ModuleType) -> None:
    hf = {"status": "ok", "clips_per_s": 20.0}
    judge = acceptance.speed_verdict
    assert judge({"status": "ok", "clips_per_s": 30.0}, hf, True, "8x224").result == "pass"
    assert judge({"status": "ok", "clips_per_s": 29.0}, hf, True, "8x224").result == "fail"
    assert judge({"status": "oom", "clips_per_s": None}, hf, True, "8x224").result == "fail"
    assert judge({"status": "ok", "clips_per_s": 90.0}, hf, False, "smoke").result == "not run"


def test_the_memory_ratio_verdict_passes_at_its_goal_and_fails_above(
    acceptance: ModuleType,
) -> None:
    hf = {"status": "ok", "peak_mib": 1000.0}
    judge = acceptance.memory_ratio_verdict
    passed = judge({"status": "ok", "peak_mib": 600.0}, hf, True, "16x448")
    assert (passed.result, passed.value) == ("pass", "0.60x hf (600.0 vs 1000.0)")
    assert judge({"status": "ok", "peak_mib": 610.0}, hf, True, "16x448").result == "fail"


def test_the_mfu_verdict_compares_with_the_records_target(acceptance: ModuleType) -> None:
    record = {"achieved_tflops": 450.0, "gpu": "NVIDIA H200", "mfu": 0.455, "target": 0.45}
    assert acceptance.mfu_verdict(record, True).result == "pass"
    assert acceptance.mfu_verdict(record | {"mfu": 0.40}, True).result == "fail"
    assert acceptance.mfu_verdict(None, True).result == "fail"  # measured nothing
    assert acceptance.mfu_verdict(record | {"mfu": None}, True).result == "not run"  # no peak


def test_the_prediction_verdict_allows_ten_percent_either_way(acceptance: ModuleType) -> None:
    row = {"status": "ok", "error": None, "max_allocated_bytes": 10 * GIB}
    judge = acceptance.prediction_verdict
    assert judge(row | {"predicted_peak_bytes": 9 * GIB}, True).result == "pass"
    assert judge(row | {"predicted_peak_bytes": int(10.9 * GIB)}, True).result == "pass"
    assert judge(row | {"predicted_peak_bytes": int(11.1 * GIB)}, True).result == "fail"
    assert judge(row | {"predicted_peak_bytes": int(8.9 * GIB)}, True).result == "fail"
    unmeasured = row | {"predicted_peak_bytes": GIB, "max_allocated_bytes": None}
    assert judge(unmeasured, True).result == "fail"  # on a GPU: no pass without a measurement
    assert judge(unmeasured, False).result == "not run"


def figure3_rows(
    statuses: dict[int, str], predicted_gib: dict[int, float], context: int | None = GIB // 2
) -> list[dict[str, object]]:
    """A Figure 3 series as the worker writes it: measured rows, then predicted-only ones."""
    return [
        {"frames": frames, "status": status, "error": None if status != "error" else "boom",
         "predicted_peak_bytes": int(predicted_gib[frames] * GIB),
         "memory_cap_context_bytes": context if status != "predicted" else None}
        for frames, status in statuses.items()
    ]  # fmt: skip


FRAMES = (8, 32, 64, 96)
PREDICTED = {8: 4.4, 32: 28.99, 64: 95.0, 96: 200.0}  # joint, math: 32 frames fits 32 GiB


def test_the_figure3_math_verdict_expects_the_predicted_boundary_not_the_papers(
    acceptance: ModuleType,
) -> None:
    judge = acceptance.figure3_verdict
    as_predicted = figure3_rows({8: "ok", 32: "ok", 64: "oom", 96: "predicted"}, PREDICTED)
    passed = judge(as_predicted, "math", "joint", FRAMES, True, 32 * GIB)
    assert passed.result == "pass", passed
    assert "predicted 32 (512.0 MiB context); paper 8" in passed.value
    assert "differs from the paper" in passed.note
    as_paper = figure3_rows({8: "ok", 32: "oom", 64: "predicted", 96: "predicted"}, PREDICTED)
    assert judge(as_paper, "math", "joint", FRAMES, True, 32 * GIB).result == "fail"
    # the context counts: 31.8 GiB predicted + 0.5 GiB context does not fit 32 GiB
    tight = PREDICTED | {32: 31.8}
    assert judge(as_paper[:1] + figure3_rows({32: "oom"}, tight)[:1] + as_paper[2:],
                 "math", "joint", FRAMES, True, 32 * GIB).result == "pass"  # fmt: skip
    no_context = figure3_rows({8: "ok", 32: "ok", 64: "oom", 96: "predicted"}, PREDICTED, None)
    assert judge(no_context, "math", "joint", FRAMES, True, 32 * GIB).result == "fail"


def test_the_figure3_sdpa_verdict_needs_a_clip_that_ran(acceptance: ModuleType) -> None:
    judge = acceptance.figure3_verdict
    every = figure3_rows({8: "ok", 32: "ok", 64: "ok", 96: "oom"}, PREDICTED)
    assert judge(every, "sdpa", "joint", FRAMES, True, 32 * GIB).result == "pass"
    all_oom = figure3_rows({8: "oom", 32: "predicted", 64: "predicted", 96: "predicted"}, PREDICTED)
    failed = judge(all_oom, "sdpa", "joint", FRAMES, True, 32 * GIB)
    assert (failed.result, failed.note) == ("fail", "no clip ran: every row out of memory")
    errors = figure3_rows({8: "ok", 32: "error"}, PREDICTED)
    assert judge(errors, "sdpa", "joint", FRAMES, True, 32 * GIB).result == "fail"
    unfinished = figure3_rows({8: "ok", 32: "ok"}, PREDICTED)
    assert judge(unfinished, "sdpa", "joint", FRAMES, True, 32 * GIB).result == "fail"
    assert judge([], "sdpa", "joint", FRAMES, True, 32 * GIB).result == "fail"


def test_the_quick_run_verdict_fails_on_a_failure_or_on_nothing_measured(
    acceptance: ModuleType,
) -> None:
    summary = {"tasks": 3, "statuses": {"ok": 2, "predicted": 1}, "failures": []}
    assert acceptance.quick_run_verdict(summary, 90.0).result == "pass"
    failure = {"task": "runtime base joint", "status": "oom", "error": "CUDA out of memory"}
    failed = summary | {"statuses": {"ok": 2, "oom": 1}, "failures": [failure]}
    assert acceptance.quick_run_verdict(failed, 90.0).result == "fail"
    nothing = {"tasks": 0, "statuses": {}, "failures": []}
    assert acceptance.quick_run_verdict(nothing, 1.0).result == "fail"


def test_the_quick_report_verdict_needs_its_plots(acceptance: ModuleType) -> None:
    files = ["report/quick.md", "report/quick-memory_vs_frames.png"]
    assert acceptance.quick_report_verdict({"files": files}).result == "pass"
    assert acceptance.quick_report_verdict({"files": files[:1]}).result == "fail"  # 0 plots


def test_the_motion_verdict_is_part_of_the_quick_run(acceptance: ModuleType) -> None:
    space = {"attention": "space", "top1_mean": 50.0, "passed": True, "expected": "<= 54.3"}
    divided = {"attention": "divided", "top1_mean": 100.0, "passed": True, "expected": ">= 90"}
    schemes = ("space", "divided")
    judge = acceptance.motion_verdict
    assert judge({"rows": [space, divided]}, schemes, True).result == "pass"
    blind = divided | {"top1_mean": 50.0, "passed": False}
    assert judge({"rows": [space, blind]}, schemes, True).result == "fail"
    assert judge({"rows": [space]}, schemes, True).result == "fail"  # divided never ran
    assert judge({"rows": [space, blind]}, schemes, False).result == "not run"


def test_the_env_verdict_fails_a_failed_env_or_a_gpu_run_without_a_gpu(
    acceptance: ModuleType,
) -> None:
    gpu = {"cuda_available": True, "gpus": ["NVIDIA H200"]}
    assert acceptance.env_verdict(gpu, None, False).result == "pass"
    assert acceptance.env_verdict({}, "exit 1: Traceback", False).result == "fail"
    assert acceptance.env_verdict({}, "exit 1: Traceback", True).result == "fail"
    assert acceptance.env_verdict({"cuda_available": False}, None, False).result == "fail"
    assert acceptance.env_verdict({"cuda_available": False}, None, True).result == "pass"


def test_the_pytest_verdict_and_a_killed_runs_log(acceptance: ModuleType) -> None:
    counts = {"tests": 40, "failures": 0, "errors": 0, "skipped": 2}
    assert acceptance.pytest_verdict(counts, [], True, 0).result == "pass"
    failed = counts | {"failures": 1}
    assert acceptance.pytest_verdict(failed, ["t::a"], True, 1).result == "fail"
    assert acceptance.pytest_verdict(counts | {"skipped": 40}, [], True, 5).result == "fail"
    log = (
        "tests/gpu/test_a.py::test_one PASSED                [  2%]\n"
        "tests/gpu/test_a.py::test_two FAILED                [  5%]\n"
        "tests/gpu/test_a.py::test_three SKIPPED (no GPU)    [  7%]\n"
        "tests/gpu/test_b.py::test_compiled "
    )  # killed in the middle of test_compiled: what finished is kept
    counts, failed = acceptance.pytest_counts_from_log(log)
    assert counts == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1, "killed": 1}
    assert failed == ["tests/gpu/test_b.py::test_compiled", "tests/gpu/test_a.py::test_two"]
    killed = acceptance.pytest_verdict(counts, failed, True, -9)
    assert killed.result == "fail" and "1 passed, 1 failed, 1 skipped, 1 killed" in killed.value


def test_every_verdict_is_tested_here(acceptance: ModuleType) -> None:
    tested = {
        "env_verdict", "pytest_verdict", "speed_verdict", "memory_ratio_verdict", "mfu_verdict",
        "prediction_verdict", "figure3_verdict", "quick_run_verdict", "quick_report_verdict",
        "motion_verdict", "fit_verdict", "profile_verdict",
    }  # fmt: skip
    assert set(acceptance.VERDICTS) == tested


def test_the_gpu_plan_fits_ten_minutes_install_included(acceptance: ModuleType) -> None:
    """A phase added to `PHASES` must fit the plan: the sum of budgets is what the run can take."""
    phases = sum(phase.budget_s for phase in acceptance.PHASES)
    assert phases + acceptance.ENV_TIMEOUT + acceptance.INSTALL_S <= acceptance.GPU_PLAN_S == 600


def test_a_failed_env_fails_the_run(
    acceptance: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tsfbench env` failing on a GPU machine: exit 1, not every target "not run" and 0."""

    def fine(ctx: object, targets: dict[str, object]) -> None:
        targets["after"].set(acceptance.PASS, "1")

    monkeypatch.setattr(acceptance, "environment_facts", lambda out, smoke: ({}, "exit 1: boom"))
    monkeypatch.setattr(acceptance, "PHASES", [acceptance.Phase("only", fine, (("after", "g"),))])
    monkeypatch.setattr(acceptance, "PHASE_NAMES", ("only",))
    monkeypatch.setattr(sys, "argv", ["gpu_acceptance.py", str(tmp_path)])
    assert acceptance.main() == 1
    targets = json.loads((tmp_path / "summary.json").read_text())["targets"]
    assert targets[0]["name"] == "tsfbench env" and targets[0]["result"] == "fail"
    assert "boom" in targets[0]["note"]


def test_the_fit_verdict_passes_only_when_the_largest_runs_and_the_next_does_not(
    acceptance: ModuleType,
) -> None:
    def row(frames: int, status: str) -> dict[str, object]:
        return {"frames": frames, "status": status, "error": None if status == "ok" else "x"}

    judge = acceptance.fit_verdict
    passed = judge(True, row(96, "ok"), row(97, "oom"))
    assert (passed.result, passed.value) == ("pass", "96 frames ok, 97 frames oom")
    assert judge(True, row(96, "oom"), row(97, "oom")).result == "fail"  # the margin was needed
    assert "the next one ran" in judge(True, row(96, "ok"), row(97, "ok")).note
    assert judge(True, row(96, "ok"), row(97, "error")).note == "error: x"
    assert judge(False, row(96, "ok"), row(97, "ok")).result == "not run"
    assert judge(True, None, row(97, "oom")).result == "fail"


def test_the_profile_verdict_passes_only_when_the_parts_account_for_the_step(
    acceptance: ModuleType,
) -> None:
    def result(parts_sum_vs_latency: float) -> dict[str, object]:
        parts = [
            {"part": "space.attend", "time_ms": 6.0, "time_share": 0.6},
            {"part": "mlp", "time_ms": 4.0, "time_share": 0.4},
        ]
        return {
            "parts": parts, "parts_sum_vs_latency": parts_sum_vs_latency, "notes": [],
            "latency": {"median_ms": 10.0}, "profiler_overhead": 0.02,
        }  # fmt: skip

    judge = acceptance.profile_verdict
    passed = judge(True, result(-0.049))
    assert passed.result == "pass"
    assert passed.value.startswith("parts sum -4.9% of the step's 10.0 ms (profiler +2.0%)")
    assert "space.attend 60%" in passed.value
    assert judge(True, result(0.051)).result == "fail"
    assert judge(True, result(-0.051)).result == "fail"
    assert judge(False, result(0.0)).result == "not run"
