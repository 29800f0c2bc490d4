"""`tsfbench ab` on a GPU: both workers on one device, steps timed with the device synchronised,
and a side in bf16 against fp32 judged (the plumbing; its speed is the GPU's)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tsfbench.cli import app

pytestmark = pytest.mark.gpu


def test_two_sides_share_one_gpu_and_each_keeps_its_samples() -> None:
    args = ["ab", "--attention", "divided", "--frames", "4", "--size", "32", "--depth", "2"]
    args += ["--dim", "64", "--heads", "4", "--device", "cuda", "--rounds", "6", "--warmup", "2"]
    result = CliRunner().invoke(app, [*args, "--new", "dtype=bf16", "--fail-on", "none", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["status"] == "ok" and row["device"] == "cuda", row.get("error")
    assert len(row["base_samples_ms"]) == len(row["new_samples_ms"]) == 12
    assert all(ms > 0 for ms in row["base_samples_ms"] + row["new_samples_ms"])
    assert row["verdict"] in ("same", "faster", "slower")
    # the GPU read around the rounds: both workers are ours, so no other process on the device
    assert row["other_gpu_processes"] == 0 and row["gpu_sm_clock_mhz"], row
