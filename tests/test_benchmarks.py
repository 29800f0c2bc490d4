"""The benchmark scripts run end to end on a one-block model (their figures are for humans;
here only that they run and that what they compare agrees)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_vs_reference(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    """The benchmark on a one-block model at 2x32, both modes and dtypes: (its JSON, stdout)."""
    pytest.importorskip("transformers")
    out = tmp_path / "vs.json"
    command = [sys.executable, str(BENCHMARKS / "vs_reference.py"), "--depth", "1", "--clips",
               "2x32", "--modes", "infer,train", "--dtypes", "fp32,bf16", "--repeats", "2",
               "--json", str(out), *extra]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(out.read_text()), result.stdout


def check_records(records: list[dict[str, Any]]) -> None:
    assert {(r["mode"], r["dtype"], r["impl"]) for r in records} == {
        (mode, dtype, impl)
        for mode in ("infer", "train")
        for dtype in ("fp32", "bf16")
        for impl in ("ours", "ours-math", "hf")
    }
    for record in records:
        assert record["status"] == "ok"
        assert record["seconds_min"] <= record["seconds"] <= record["seconds_max"]
        # Same weights, same inputs: the same logits, to the precision of the dtype
        assert record["max_abs_diff_vs_hf"] < (1e-4 if record["dtype"] == "fp32" else 0.1)
        assert record["peak_mib"] > 0 and record["minor_faults"] >= 0


def test_vs_reference_compares_all_three_implementations(tmp_path: Path) -> None:
    # Pinned to the CPU: on a GPU machine `auto` would take CUDA, which has no roofline or
    # profile and starts the full-size MFU run (the CUDA run has its own test below)
    payload, stdout = run_vs_reference(tmp_path, "--device", "cpu", "--profile-rows", "1")
    records = payload["records"]
    check_records(records)
    assert "mfu" not in payload
    profile = payload["profile"]
    for name in ("ours", "hf"):
        assert 0 < profile["self_cpu_s"][name]["matmul"] < profile["self_cpu_s"][name]["total"]
    assert "ceiling:" in stdout
    (roofline,) = payload["roofline"]  # the fp32 inference configuration
    assert set(roofline["share_of_peak"]) == {"ours", "ours-math", "hf"}
    assert roofline["gflop"] > 0 and roofline["seconds_at_peak"] > 0
    assert all(share > 0 for share in roofline["share_of_peak"].values())
    assert "roofline, 2x32 batch 1:" in stdout


@pytest.mark.gpu
def test_vs_reference_on_cuda_measures_with_the_allocator_and_reports_the_mfu(
    tmp_path: Path,
) -> None:
    """The CUDA run: allocator peaks, no CPU roofline or profile, and the model FLOP
    utilisation of the full-size divided 8x224 batch 32 bf16 configuration."""
    payload, stdout = run_vs_reference(tmp_path, "--device", "cuda", "--mfu")
    check_records(payload["records"])
    assert "roofline" not in payload and "profile" not in payload
    mfu = payload["mfu"]
    assert mfu["gpu"] == payload["device"] and mfu["status"] == "ok"
    assert mfu["achieved_tflops"] > 0 and "MFU, ours, divided 8x224" in stdout
    if mfu["peak_tflops"] is not None:  # a GPU listed in BF16_PEAK (H100, H200 ...)
        assert 0 < mfu["mfu"] < 1


@pytest.mark.parametrize(
    ("error", "oom"),
    [
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"),
            True,
        ),
        (MemoryError(), True),
        (ValueError("a bug"), False),
    ],
    ids=["cpu-allocator", "memory-error", "bug"],
)
def test_an_implementation_out_of_memory_is_a_row_and_the_others_are_measured(
    monkeypatch: pytest.MonkeyPatch,
    load_benchmark: Callable[[str], ModuleType],
    error: BaseException,
    oom: bool,
) -> None:
    """Out of memory as the package's `isolate.classify` sees it (a CPU allocator's message
    too) is an `oom` row; anything else is a bug and stops the benchmark."""
    pytest.importorskip("transformers")
    import torch

    vs_reference = load_benchmark("vs_reference")
    models = vs_reference.build_models("divided", 2, 32, depth=1)

    def fail(*_args: Any, **_kwargs: Any) -> torch.Tensor:
        raise error

    monkeypatch.setattr(models["hf"], "forward", fail)
    video = torch.randn(1, 3, 2, 32, 32)
    if not oom:
        with pytest.raises(type(error)):
            vs_reference.measure(models, video, "infer", "fp32", 1)
        return
    records = {r["impl"]: r for r in vs_reference.measure(models, video, "infer", "fp32", 1)}
    assert records["hf"]["status"] == "oom" and "seconds" not in records["hf"]
    for name in ("ours", "ours-math"):
        assert records[name]["status"] == "ok" and records[name]["seconds"] > 0
        assert records[name]["max_abs_diff_vs_hf"] is None  # nothing to compare with


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.5),  # SXM5
        ("NVIDIA H100 PCIe", 756.5),
        ("NVIDIA H100 NVL", 835.5),  # not the SXM peak its name contains
        ("NVIDIA H200", 989.5),
        ("NVIDIA H200 NVL", 835.5),
        ("NVIDIA H800", 989.5),
        ("NVIDIA H800 PCIe", 756.5),
        ("NVIDIA A100-SXM4-80GB", 312),
        ("NVIDIA A800 80GB PCIe", 312),
        ("NVIDIA H100 80GB HBM3 MIG 3g.40gb", None),  # a slice: a share of the peak, unknown
        ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", None),
        ("NVIDIA H100 something new", None),  # not a guess from a substring
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_the_mfu_peak_is_looked_up_by_exact_gpu_name(
    monkeypatch: pytest.MonkeyPatch,
    load_benchmark: Callable[[str], ModuleType],
    name: str,
    tflops: float | None,
) -> None:
    import torch

    vs_reference = load_benchmark("vs_reference")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: name)
    gpu, peak = vs_reference.gpu_peak_flops()
    assert gpu == name
    assert peak == (None if tflops is None else pytest.approx(tflops * 1e12))


def test_overhead_prints_every_phase_for_both_start_methods() -> None:
    command = [sys.executable, str(BENCHMARKS / "overhead.py"), "--depth", "1", "--frames", "1",
               "--size", "16", "--mode", "infer", "--repeats", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines() if line}
    for phase in ("start", "imports", "build", "monitor", "steps", "teardown", "total"):
        spawned, forked = map(float, lines[phase][-2:])
        assert spawned >= 0 and forked >= 0
    assert "overhead beyond the steps, forkserver" in result.stdout


def test_decode_throughput_ships_fewer_bytes_for_the_same_views() -> None:
    pytest.importorskip("decord")
    pytest.importorskip("av")
    command = [sys.executable, str(BENCHMARKS / "decode_throughput.py"), "--videos", "4",
               "--frames", "40", "--workers", "1", "--repeats", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = next(line for line in result.stdout.splitlines() if "MB shipped" in line)
    before, after, _ = map(float, shipped.split()[-3:])
    assert after < before / 4
    assert "max |after - before| of the last video's normalised views: 0.0e+00" in result.stdout


def test_contention_verdicts_on_both_sides(load_benchmark: Callable[[str], ModuleType]) -> None:
    """A row measured during the busy process passes only marked or close to the quiet median;
    a quiet row fails if it is marked."""
    verdict = load_benchmark("contention").verdict
    assert verdict(False, {"contended": False, "latency_median_ms": 300.0}, 100.0, None) == "ok"
    assert verdict(False, {"contended": True}, 100.0, None).startswith("FAIL: quiet row marked")
    marked = {"contended": True, "latency_median_ms": 300.0}
    assert verdict(True, marked, 100.0, None) == "ok (marked)"
    remeasured = {"contended": False, "latency_median_ms": 108.0, "remeasured": 1}
    assert verdict(True, remeasured, 100.0, None) == "ok (re-measured)"
    slow = {"contended": False, "latency_median_ms": 250.0, "remeasured": 0}
    assert verdict(True, slow, 100.0, None) == "FAIL: unmarked, 2.50x the quiet median"


def test_contention_divides_a_remeasured_rows_ratio_by_the_machines_and_no_other_rows(
    load_benchmark: Callable[[str], ModuleType],
) -> None:
    """The machine 1.3x slower in the busy run (its canary too): a re-measured row 1.35x the
    quiet median is 1.04x on the machine's scale; an unmarked row measured beside the busy
    process is not excused by a canary the busy process slowed as well."""
    verdict = load_benchmark("contention").verdict
    remeasured = {"contended": False, "latency_median_ms": 135.0, "remeasured": 1}
    assert verdict(True, remeasured, 100.0, 1.3) == "ok (re-measured)"
    assert verdict(True, remeasured, 100.0, None).startswith("FAIL: unmarked, 1.35x")
    unmarked = {"contended": False, "latency_median_ms": 135.0, "remeasured": 0}
    assert verdict(True, unmarked, 100.0, 1.3).startswith("FAIL: unmarked, 1.35x")


def test_contention_takes_the_quick_suites_latency_tasks_and_shrinks_them(
    load_benchmark: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    from tsfbench.suite import load_suite

    bench = load_benchmark("contention")
    suite = load_suite(bench.SUITES / "quick.toml", tmp_path)
    full = bench.latency_tasks(suite, {"iterations": "auto"}, quick=False)
    assert len(full) == 6  # five schemes and i3d_r50; no predicted-memory task
    assert all(task.settings["iterations"] == "auto" for task in full)
    tiny = bench.latency_tasks(suite, {"iterations": "auto"}, quick=True)
    assert {(t.config.frames, t.config.size) for t in tiny} == {(2, 32)} and len(tiny) == 5
    window = bench.Window(10.0, 20.0)
    assert window.overlaps(bench.Window(19.0, 50.0)) and not window.overlaps(bench.Window(20, 30))
    assert not window.overlaps(None)


def test_peak_parts_words_joints_faster_growth_from_its_own_figures(
    load_benchmark: Callable[[str], ModuleType], tiny: dict[str, object]
) -> None:
    from tsfbench.config import ProbeSettings, RunConfig
    from tsfbench.measure.peak_parts import peak_breakdown

    peak_parts = load_benchmark("peak_parts")
    records = []
    for attention in ("joint", "divided"):
        for frames in (4, 8):
            config = RunConfig(attention=attention, frames=frames, size=64)
            settings = ProbeSettings(mode="train", backend="math", device="cpu")
            rows = peak_breakdown(config, settings, tiny)
            records.append(peak_parts.summarise(attention, frames, "math", rows))
    joint, divided = (
        [r for r in records if r["attention"] == name] for name in ("joint", "divided")
    )
    # joint's attention weights grow with the square of the clip: faster than divided's
    assert joint[1]["attend_bytes"] / joint[0]["attend_bytes"] > (
        divided[1]["attend_bytes"] / divided[0]["attend_bytes"]
    )
    first, why = peak_parts.growth_sentences(records)
    ratio = joint[1]["peak_bytes"] / joint[0]["peak_bytes"]
    assert first.startswith("math: from 4 to 8 frames") and f"grows {ratio:.1f}x" in first
    assert "(F*N)^2" in why and "4x from 4 to 8" in why


def test_canary_drift_prints_both_series_and_their_quotient(
    load_benchmark: Callable[[str], ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_benchmark("canary_drift")
    assert bench.main(["--quick", "--seconds", "0.5"]) == 0
    out = capsys.readouterr().out
    for line in ("step ms: median", "canary ms: median", "step / canary: cv"):
        assert line in out
