"""Figure 3's memory from predictions: curves, the limit line, and words taken from the numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tsfbench.report import build_report, load_results, write_report
from tsfbench.report.plots import draw

if TYPE_CHECKING:
    from conftest import Results


def figure3_text(results: Results, tmp_path: Path) -> str:
    report = build_report(load_results(results.store.path))
    text = write_report(report, tmp_path, name="t")[0].read_text()
    return text.split("## Figure 3")[1].split("\n## ")[0]


def test_predicted_runs_are_memory_curves_of_their_own_with_their_limit(figure3: Results) -> None:
    curves = build_report(load_results(figure3.store.path)).curves
    memory = curves[(curves["figure"] == "memory_vs_frames") & (curves["source"] != "paper")]
    assert set(memory["status"]) == {"predicted"}
    assert set(memory["source"]) == {"predicted"}  # in csv / json too: nothing was measured
    assert all(series.endswith("(predicted)") for series in memory["series"])
    assert memory["series"].nunique() == 4  # joint / divided x sdpa / math
    joint_math = memory[(memory["attention"] == "joint") & (memory["backend"] == "math")]
    assert dict(zip(joint_math["x"], joint_math["y"], strict=True)) == pytest.approx(
        {8: 3.13, 16: 8.67, 32: 28.99}, rel=1e-6
    )
    assert set(memory["limit_gib"]) == {32.0}
    assert set(memory["pair"]) == {"train fp32 b1 cpu cap 32 GiB"}  # SDPA and math pair up


def test_the_memory_plot_draws_predictions_the_limit_and_the_papers_oom(figure3: Results) -> None:
    figure3.runtime(attention="divided", device="cpu", dtype="fp32")  # one measured point
    curves = build_report(load_results(figure3.store.path)).curves
    [ax] = draw(curves, "memory_vs_frames").axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    limit = lines["32 GiB limit (the paper's 32 GB V100)"]
    assert set(limit.get_ydata()) == {32.0}
    predicted = {label for label in lines if label.endswith("(predicted)")}
    assert predicted == {
        f"{attention}, {backend}, train cap 32 GiB (predicted)"
        for attention in ("joint", "divided")
        for backend in ("sdpa", "math")
    }
    assert lines["joint, math, train cap 32 GiB (predicted)"].get_linestyle() == ":"
    assert lines["joint, sdpa, train cap 32 GiB (predicted)"].get_linestyle() == "--"
    assert lines["divided, sdpa, infer"].get_linestyle() == "-"  # measured: solid
    paper = lines["joint (paper): out of memory on a 32 GB V100"]
    assert list(paper.get_xdata()) == [32, 64, 96]  # beyond the predicted points too
    assert ax.get_yscale() == "log"  # 0.5 .. 29 GiB: linear would flatten the SDPA curves
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "32 GiB limit (the paper's 32 GB V100)" in legend


def test_the_cost_plots_keep_a_linear_scale_and_no_limit_line(figure3: Results) -> None:
    curves = build_report(load_results(figure3.store.path)).curves
    [ax] = draw(curves, "gflops_vs_frames").axes
    assert ax.get_yscale() == "linear"
    assert not [line for line in ax.get_lines() if "limit" in line.get_label()]


def test_the_report_says_where_the_papers_oom_comes_from_with_the_stored_numbers(
    figure3: Results, tmp_path: Path
) -> None:
    text = figure3_text(figure3, tmp_path)
    assert "(32 frames at 224 px; a 448 px crop at 8 frames)" in text
    assert "28.99 and 30.50 GiB with materialised attention (`math`" in text
    assert "91% and 95% of the 32 GiB limit" in text
    assert "and 4.25 and 4.40 GiB with fused attention (`sdpa`: 13% and 14%)" in text
    assert "at least 6.8x less" in text
    assert "joint attention needs less memory than divided at every predicted clip length" in text
    assert "4.25 vs 6.03 GiB at 32 frames" in text
    assert "its GFLOPs still grow faster (6.1x from 8 to 32 frames, divided 4.0x" in text


def test_other_numbers_give_other_words(results: Results, tmp_path: Path) -> None:
    """Fused attention above the limit and joint above divided: the text must not repeat the
    issue's conclusion."""
    peaks = dict(results.ISSUE_PEAKS) | {
        ("joint", "sdpa"): (2.5, 9.0, 40.0),
        ("joint", "math"): (3.1, 12.0, 60.0),
    }
    sizes = dict(results.ISSUE_SIZES) | {
        ("joint", "sdpa"): (5.0, 35.0),
        ("joint", "math"): (9.0, 50.0),
    }
    results.figure3(peaks, sizes)
    text = figure3_text(results, tmp_path)
    assert "Fused attention exceeds the limit there too: joint attention itself does not fit" in (
        text
    )
    assert "joint attention needs more memory than divided at every predicted clip length" in text
    assert "40.00 vs 6.03 GiB at 32 frames" in text


def test_the_oom_sentence_states_the_numbers_against_the_limit_without_a_threshold(
    figure3: Results, tmp_path: Path
) -> None:
    """28.99 GiB is under the 32 GiB limit: the text says so and how much of the card is left,
    and does not turn 91% into "the out-of-memory is a property of materialised attention"."""
    text = figure3_text(figure3, tmp_path)
    assert "property of materialised attention" not in text
    assert "Both stay under the limit in the prediction, which counts tensors only" in text
    assert "materialised attention leaves 3.01 and 1.50 GiB of the card for them" in text


def test_over_the_limit_the_oom_sentence_says_which_attention_exceeds_it(
    results: Results, tmp_path: Path
) -> None:
    over = dict(results.ISSUE_PEAKS) | {("joint", "math"): (3.1, 12.0, 40.0)}
    sizes = dict(results.ISSUE_SIZES) | {("joint", "math"): (9.0, 41.0)}
    results.figure3(over, sizes)
    text = figure3_text(results, tmp_path)
    assert "40.00 and 41.00 GiB with materialised attention" in text
    assert "125% and 128% of the 32 GiB limit" in text
    assert "Materialised attention alone exceeds the limit there." in text


def test_a_prediction_far_below_the_limit_leaves_most_of_the_card(
    results: Results, tmp_path: Path
) -> None:
    low = {key: tuple(v / 10 for v in values) for key, values in results.ISSUE_PEAKS.items()}
    sizes = {key: tuple(v / 10 for v in values) for key, values in results.ISSUE_SIZES.items()}
    results.figure3(low, sizes)
    text = figure3_text(results, tmp_path)
    assert "(`math`, the released code's softmax(QK^T)V: 9% and 10% of the 32 GiB limit)" in text
    assert "materialised attention leaves 29.10 and 28.95 GiB of the card" in text
    assert "less memory than divided at every predicted clip length" in text


def test_without_predictions_the_report_says_nothing_about_them(
    paper_like: Results, tmp_path: Path
) -> None:
    text = figure3_text(paper_like, tmp_path)
    assert "materialised" not in text and "fused attention" not in text


def test_predicted_rows_stay_out_of_tables_1_and_2(figure3: Results, tmp_path: Path) -> None:
    figure3.runtime(attention="joint", device="cpu", dtype="fp32")
    report = build_report(load_results(figure3.store.path))
    joint = report.schemes[report.schemes["attention"] == "joint"]
    assert list(joint["runtime_status"]) == ["ok"]  # not the two predicted runs at 8 x 224
    # divided at 8 x 224 was only predicted: its rows stay, or Table 1 would lose the scheme
    divided = report.schemes[report.schemes["attention"] == "divided"]
    assert set(divided["runtime_status"]) == {"predicted"}
    assert (report.configs["runtime_status"] == "predicted").sum() == 20


def test_predicted_and_measured_cpu_allocations_stand_side_by_side(
    results: Results, tmp_path: Path
) -> None:
    results.predicted(0.50, mode="infer", cpu_alloc_gib=0.52)
    results.predicted(2.19, attention="joint", cpu_alloc_gib=2.00)
    results.predicted(6.03, frames=32)  # no measurement: not in the table
    report = build_report(load_results(results.store.path))
    table = report.prediction.set_index("attention")
    assert table.loc["divided", "error_pct"] == pytest.approx((0.50 / 0.52 - 1) * 100)
    assert table.loc["joint", "error_pct"] == pytest.approx((2.19 / 2.00 - 1) * 100)
    assert len(table) == 2 and "prediction" in report.tables()
    text = write_report(report, tmp_path, name="t")[0].read_text()
    section = text.split("## Memory prediction vs measured CPU allocations")[1].split("\n## ")[0]
    assert "| base | joint | 8 x 224 | train fp32 b1 cpu cap 32 GiB | 2.190 | 2.000 | +9.5% |" in (
        section
    )
    assert "| 0.500 | 0.520 | -3.8% |" in section


def test_the_predict_vs_measured_benchmark_prints_both_and_the_error(tmp_path: Path) -> None:
    """A one-block model (a benchmark test, not a figure): the script runs the suite keys end
    to end and prints one row per configuration."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "predict_vs_measured.py"
    args = ["--depth", "1", "--frames", "2", "--size", "32", "--attention", "divided"]
    args += ["--modes", "train", "--store", str(tmp_path / "s.sqlite")]
    command = [sys.executable, str(script), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    [row] = [line.split() for line in result.stdout.splitlines() if line.startswith("divided")]
    predicted, measured, error = float(row[-4]), float(row[-3]), float(row[-2].rstrip("%"))
    assert predicted > 0 and measured > 0
    rounding = 100 * 0.0005 * (1 / measured + predicted / measured**2) + 0.05  # GiB to 3 places
    assert error == pytest.approx((predicted / measured - 1) * 100, abs=rounding)
    assert "failures: none" in result.stdout


def test_a_prediction_and_a_measurement_of_the_same_run_are_both_plotted(
    results: Results,
) -> None:
    """A GPU machine running the quick suite (predicted) and then paper.toml (measured) with the
    same settings: the measurement checks the prediction, it does not replace it."""
    results.predicted(4.25, attention="joint", frames=32, device="cuda")
    run = {"mode": "train", "memory_limit": 32 * 2**30, "dtype": "fp32", "peak_bytes": 5 * 2**30}
    results.runtime(attention="joint", frames=32, **run)  # newer
    curves = build_report(load_results(results.store.path)).curves
    memory = curves[(curves["figure"] == "memory_vs_frames") & (curves["source"] != "paper")]
    assert sorted(zip(memory["status"], memory["source"], memory["y"], strict=True)) == [
        ("ok", "measured", pytest.approx(5.0)),
        ("predicted", "predicted", pytest.approx(4.25)),
    ]
