"""`tsfbench report --compare E1,E2`: the "Between environments" section of the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from typer.testing import CliRunner

from tsfbench.cli import app
from tsfbench.environment import environment_summary
from tsfbench.store import Row, environment_id

if TYPE_CHECKING:
    from conftest import Results

runner = CliRunner()


def test_the_report_renders_the_comparison_of_two_environments(
    results: Results, tmp_path: Path
) -> None:
    newer = {**results.env, "torch": "2.5.0"}  # the same machine after an upgrade
    runtime_record = sys.modules[type(results).__module__].runtime_record  # the conftest's
    rng = np.random.default_rng(0)
    for created, env, median in ((1.0, results.env, 100.0), (2.0, newer, 80.0)):
        times = (median * (1 + 0.01 * rng.standard_normal(20))).tolist()
        record = runtime_record(latency_ms=float(np.median(times)))
        record |= {"overrides": {}, "latency_samples_ms": times} | environment_summary(env)
        # one task in two environments (the fixture's `add` keys a task by its figures too)
        results.store.put(
            Row("runtime", "task", environment_id(env), "quick", "ok", created, record)
        )
    results.flops(196.05, 121_566_352)
    store, out = str(results.store.path), tmp_path / "reports"
    done = runner.invoke(app, ["report", "--store", store, "--out", str(out), "--compare", "E1,E2"])
    assert done.exit_code == 0, done.output
    text = (out / "tsfbench.md").read_text()
    assert "## Between environments" in text and "torch 2.5.0" in text
    assert "| faster |" in text and "base divided 8x224 infer fp16 b1" in text
    as_json = runner.invoke(
        app, ["report", "--store", store, "--out", str(out), "--format", "json", "--compare",
              "E1,E2", "--json"],
    )  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    document = json.loads((out / "tsfbench.json").read_text())
    assert document["between"]["counts"] == {"faster": 1}
    assert json.loads(as_json.stdout)["between"]["pairs"][0]["verdict"] == "faster"
    plain = runner.invoke(app, ["report", "--store", store, "--out", str(out)])
    assert "Between environments" not in (out / "tsfbench.md").read_text(), plain.output


def test_a_bad_compare_option_is_one_line(results: Results, tmp_path: Path) -> None:
    results.runtime()
    store = str(results.store.path)
    for value, words in (("E1", "--compare: 'E1'"), ("E1,E7", "--new: 'E7'")):
        done = runner.invoke(
            app, ["report", "--store", store, "--out", str(tmp_path), "--compare", value]
        )
        assert done.exit_code == 2, done.output
        assert done.stderr.startswith(f"error: {words}") and done.stderr.count("\n") == 1
    assert not (tmp_path / "tsfbench.md").exists()  # nothing written before the input is checked
