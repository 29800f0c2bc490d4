"""The benchmark scripts run end to end on a one-block model (their figures are for humans;
here only that they run and that what they compare agrees)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_vs_reference_compares_all_three_implementations(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out = tmp_path / "vs.json"
    command = [sys.executable, str(BENCHMARKS / "vs_reference.py"), "--depth", "1", "--clips",
               "2x32", "--modes", "infer,train", "--dtypes", "fp32,bf16", "--repeats", "2",
               "--profile-rows", "1", "--json", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(out.read_text())
    records = payload["records"]
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
    profile = payload["profile"]
    for name in ("ours", "hf"):
        assert 0 < profile["self_cpu_s"][name]["matmul"] < profile["self_cpu_s"][name]["total"]
    assert "ceiling:" in result.stdout
    (roofline,) = payload["roofline"]  # the fp32 inference configuration
    assert set(roofline["share_of_peak"]) == {"ours", "ours-math", "hf"}
    assert roofline["gflop"] > 0 and roofline["seconds_at_peak"] > 0
    assert all(share > 0 for share in roofline["share_of_peak"].values())
    assert "roofline, 2x32 batch 1:" in result.stdout


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
