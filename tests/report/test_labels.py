"""What is not a measurement says so: model-zoo figures, predicted peaks and points, and the
paper's top-1 only where it applies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from tsfbench.cli import app
from tsfbench.report import build_report, load_results, write_report

if TYPE_CHECKING:
    from conftest import Results

runner = CliRunner()


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}")[1].split("\n## ")[0]


def test_the_model_zoos_top1_is_headed_as_a_reference(results: Results, tmp_path: Path) -> None:
    results.accuracy(79.0, 94.0, model="hr", frames=16, size=448, rate=16)
    text = write_report(build_report(load_results(results.store.path)), tmp_path)[0].read_text()
    header, _, row = _section(text, "Accuracy").strip().splitlines()[-3:]
    assert header.endswith("| released checkpoint's top-1 (model zoo; reference, not measured) |")
    assert row.endswith("| 79.6 |")  # the model zoo's figure, beside the 79.0 measured


def test_the_terminal_summary_marks_predicted_peak_memory(figure3: Results) -> None:
    """Table 1's divided row at 8 x 224 was only predicted (1 step, fp32, batch 1)."""
    figure3.runtime(attention="joint", device="cuda", dtype="fp16")  # measured: 2.00 GiB
    args = ["report", "--store", str(figure3.store.path), "--out", str(figure3.store.path.parent)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "divided" in line and "math" not in line]
    assert rows and all("2.190 (predicted)" in row for row in rows)  # divided sdpa, 8 frames
    measured = next(line for line in result.stdout.splitlines() if "infer fp16" in line)
    assert "2.000" in measured and "predicted" not in measured
    printed = json.loads(runner.invoke(app, [*args, "--json"]).stdout)["summary"]
    divided = next(row for row in printed if row["attention"] == "divided")
    assert (divided["runtime_status"], divided["peak_memory_gib"]) == ("predicted", 2.19)


def test_predicted_curve_points_are_marked_predicted_in_csv(
    figure3: Results, tmp_path: Path
) -> None:
    files = write_report(build_report(load_results(figure3.store.path)), tmp_path, fmt="csv")
    (curves,) = [path for path in files if path.name.endswith("-curves.csv")]
    lines = curves.read_text().splitlines()
    memory = [line for line in lines if line.startswith("memory") and ",paper," not in line]
    assert memory and all(",predicted,predicted," in line for line in memory)  # status, source


def test_the_papers_top1_stands_only_on_rows_of_the_papers_run(
    results: Results, tmp_path: Path
) -> None:
    """The paper's K400 top-1 (78.0, divided 8 x 224) is a test of the trained model: it is the
    target of a cost row or an inference run, not of a predicted training step."""
    results.flops(196.05, 121_566_352)
    results.runtime(device="cuda", dtype="fp16")  # infer
    results.predicted(2.19)  # train, predicted
    report = build_report(load_results(results.store.path))
    configs = report.configs.set_index("run")
    assert configs.loc["infer fp16 b1 cuda", "top1_paper"] == 78.0
    assert configs["top1_paper"].isna()["train fp32 b1 cpu cap 32 GiB"]
    text = _section(write_report(report, tmp_path)[0].read_text(), "All configurations")
    (train,) = [line for line in text.splitlines() if "| train fp32" in line]
    # peak: allocator (the prediction), NVML process, energy, top-1: no measured peak, no target
    assert train.endswith("| 2.19 (predicted) | - | - | - |") and "paper 78.0" not in train
    (infer,) = [line for line in text.splitlines() if "| infer fp16" in line]
    assert infer.endswith("| - (paper 78.0) K400 |")
