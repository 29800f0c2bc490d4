"""Reports: measured numbers beside the paper's, runs kept apart, shrunken models kept out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from tsfbench.config import ConfigError
from tsfbench.report import Report, build_report, load_results, summary, write_report
from tsfbench.store import Row

if TYPE_CHECKING:
    from conftest import Results

CPU_ENV = {"host": "laptop", "gpus": [], "cuda_available": False}


def report_of(results: Results) -> Report:
    return build_report(load_results(results.store.path))


def test_table1_lists_every_scheme_with_the_paper_value_and_delta(
    paper_like: Results, tmp_path: Path
) -> None:
    report = report_of(paper_like)
    assert list(report.schemes["attention"]) == [
        "space", "joint", "divided", "local_global", "axial",
    ]  # fmt: skip
    divided = report.schemes.set_index("attention").loc["divided"]
    assert divided["gflops_per_view_paper"] == 196.7
    assert divided["gflops_per_view_delta_pct"] == pytest.approx((196.05 / 196.7 - 1) * 100)
    assert divided["top1"] == 77.5 and divided["top1_delta_pt"] == pytest.approx(-0.5)
    text = write_report(report, tmp_path / "out", name="t")[0].read_text()
    table1 = text.split("## Table 1")[1].split("## ")[0]
    for name in ("Space (S)", "Joint Space-Time (ST)", "Divided Space-Time (T+S)", "Axial"):
        assert name in table1
    assert "196.1 (paper 196.7, -0.3%)" in table1
    assert "121.6 (paper 121.4, +0.1%)" in table1
    assert "77.5 (paper 78.0, -0.5 pt) K400" in table1
    assert "- (paper 77.4)" in table1  # joint: no accuracy measured, the paper's shown


def test_table2_sets_timesformer_against_the_3d_cnns(paper_like: Results, tmp_path: Path) -> None:
    report = report_of(paper_like)
    assert list(report.models["model"]) == ["base", "hr", "slowfast_r50"]
    slowfast = report.models.set_index("model").loc["slowfast_r50"]
    assert slowfast["views"] == 30 and slowfast["tflops_paper"] == 1.97
    text = write_report(report, tmp_path, name="t")[0].read_text()
    table2 = text.split("## Table 2")[1].split("## ")[0]
    assert "slowfast_r50 (SlowFast 8x8 R50)" in table2
    assert "65.5 (paper 65.7, -0.3%)" in table2
    assert "1.965 (paper 1.97, -0.3%) x30" in table2


def test_table2_keeps_each_model_at_its_own_input_and_names_every_cnn(
    paper_like: Results, tmp_path: Path
) -> None:
    paper_like.flops(2382.5, 121_566_352, frames=96)  # base at L's input: a Figure 3 point
    x3d = {"model": "x3d_s", "attention": "-"}
    paper_like.flops(2.7, 3_794_322, frames=13, size=182, **x3d)
    paper_like.flops(1.5, 3_794_322, frames=8, size=160, **x3d)  # not its test input
    report = report_of(paper_like)
    assert list(report.models["model"]) == ["base", "hr", "slowfast_r50", "x3d_s"]
    assert report.models.set_index("model").loc["x3d_s", "frames"] == 13
    table2 = write_report(report, tmp_path, name="t")[0].read_text().split("## Table 2")[1]
    assert "x3d_s (X3D-S) | 13 x 182" in table2.split("## ")[0]  # the registry's name


def test_a_failed_accuracy_is_a_failure_not_an_accuracy_row(results: Results) -> None:
    results.accuracy(77.5, 93.0)
    results.accuracy(0.0, 0.0, status="error", error="decode failed")  # the newer row
    report = report_of(results)
    assert list(report.accuracy["top1"]) == [77.5]
    assert list(report.failures["status"]) == ["error"]


def test_tflops_are_compared_only_at_the_papers_views(results: Results) -> None:
    results.flops(196.05, 121_566_352, views=1)
    row = report_of(results).schemes.iloc[0]
    assert row["gflops_per_view_paper"] == 196.7
    assert pd.isna(row["tflops_paper"])


def test_oom_points_are_plotted_and_the_figures_linked(paper_like: Results, tmp_path: Path) -> None:
    report = report_of(paper_like)
    curves = report.curves
    oom = curves[(curves["status"] == "oom") & (curves["source"] == "measured")]
    assert oom[["figure", "attention", "x"]].values.tolist() == [["memory_vs_size", "joint", 448]]
    paper = curves[curves["source"] == "paper"]
    assert {("joint", 448), ("joint", 560)} <= set(zip(paper["attention"], paper["x"], strict=True))
    paths = write_report(report, tmp_path, name="t")
    text = paths[0].read_text()
    for figure in ("gflops_vs_size", "memory_vs_size"):
        png = tmp_path / f"t-{figure}.png"
        assert png in paths and png.read_bytes().startswith(b"\x89PNG")
        assert f"](t-{figure}.png)" in text
    assert "joint at 448 px" in text


def test_rows_of_shrunken_models_are_kept_apart_and_not_compared(
    results: Results, tmp_path: Path
) -> None:
    results.flops(3.2, 7_000_000, overrides={"depth": 1})
    results.runtime(overrides={"depth": 1})
    report = report_of(results)
    assert report.configs.empty and report.schemes.empty
    assert list(report.shrunken["overrides"]) == ["depth=1", "depth=1"]
    text = write_report(report, tmp_path, name="t")[0].read_text()
    shrunken = text.split("## Shrunken models")[1]
    assert "depth=1" in shrunken and "3.200" in shrunken
    assert "paper" not in shrunken.split("\n", 3)[3]  # the table, below its note
    assert "## Table 1" not in text


def test_runs_with_other_settings_or_machines_are_separate_rows(results: Results) -> None:
    results.runtime(latency_ms=100.0, dtype="fp16")
    results.runtime(latency_ms=300.0, dtype="fp32")
    results.runtime(latency_ms=900.0, dtype="fp32", device="cpu", env=results.env | CPU_ENV)
    report = report_of(results)
    runs = dict(zip(report.schemes["run"], report.schemes["latency_median_ms"], strict=True))
    assert runs == {
        "infer fp16 b1 cuda E1": 100.0,
        "infer fp32 b1 cuda E1": 300.0,
        "infer fp32 b1 cpu E2": 900.0,
    }
    assert list(report.environments["host"]) == ["gpu-node", "laptop"]
    # CPU rows report the resident set size, GPU rows the device memory
    kinds = dict(zip(report.schemes["run"], report.schemes["memory_kind"], strict=True))
    assert kinds["infer fp32 b1 cpu E2"] == "RSS"
    assert kinds["infer fp16 b1 cuda E1"] == "NVML process"


def test_accuracy_is_compared_only_on_a_dataset_the_paper_reports(results: Results) -> None:
    results.accuracy(25.0, 100.0, classes=4, dataset="synthetic")
    results.accuracy(79.0, 94.0, model="hr", frames=16, size=448, rate=16)
    accuracy = report_of(results).accuracy.set_index("model")
    assert pd.isna(accuracy.loc["base", "top1_paper"])
    assert accuracy.loc["hr", "top1_paper"] == 79.7
    assert accuracy.loc["hr", "released_top1"] == 79.6
    assert accuracy.loc["hr", "top1_delta_pt"] == pytest.approx(-0.7)


def test_the_synthetic_set_is_shown_as_such_and_never_set_against_k400(
    results: Results, tmp_path: Path
) -> None:
    """The quick suite's accuracy: 4 synthetic motion classes in a Kinetics-style CSV."""
    results.flops(196.05, 121_566_352)
    results.accuracy(25.0, 100.0, classes=4, dataset="synthetic", data="synthetic/val.csv")
    report = report_of(results)
    text = write_report(report, tmp_path / "out", name="t")[0].read_text()
    for table in ("## Table 1", "## Table 2", "## Accuracy"):
        section = text.split(table)[1].split("## ")[0]
        (row,) = (line for line in section.splitlines() if "25.0" in line)
        assert "paper 78.0" not in row and "K400" not in row and "kinetics," not in row
        if table == "## Accuracy":
            assert "| synthetic: kinetics format, 4 classes (100 videos, 3 views) | 25.0 |" in row
        else:
            assert row.endswith("| 25.0 synthetic |")


@pytest.mark.parametrize("dataset", ["other", None])  # None: a row stored before `dataset`
def test_a_kinetics_format_csv_is_not_taken_for_k400(results: Results, dataset: str | None) -> None:
    results.accuracy(77.0, 93.0, dataset=dataset)  # format kinetics, 400 classes, 3 views
    row = report_of(results).accuracy.iloc[0]
    assert pd.isna(row["top1_paper"]) and pd.isna(row["released_top1"])
    named = dataset or "undeclared dataset"
    assert row["accuracy_on"] == f"{named}: kinetics format, 400 classes (100 videos, 3 views)"
    scheme = report_of(results).schemes.iloc[0]
    assert pd.isna(scheme["top1_paper"]) and scheme["dataset"] == (dataset or "undeclared")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"classes": 4}, "classes 4, paper 400"),
        ({"views": 1}, "views 1, paper 3"),
        ({"rate": 8}, "rate 8, paper 32"),
        ({"model": "hr", "frames": 16, "size": 448}, "rate 32, paper 16"),  # base's rate
    ],
)
def test_a_paper_dataset_off_the_papers_protocol_is_not_compared_and_says_why(
    results: Results, record: dict[str, int], reason: str
) -> None:
    results.accuracy(70.0, 90.0, dataset="k400", **record)
    row = report_of(results).accuracy.iloc[0]
    assert pd.isna(row["top1_paper"])
    assert row["accuracy_on"].startswith("K400 (100 videos")
    assert row["accuracy_on"].endswith(f"; not compared: {reason})")


def test_sdpa_and_math_runs_of_one_configuration_pair_up(results: Results, tmp_path: Path) -> None:
    results.runtime(latency_ms=100.0, peak_bytes=2 * 2**30)
    results.runtime(latency_ms=150.0, peak_bytes=5 * 2**30, backend="math")
    results.runtime(latency_ms=400.0, dtype="fp32")  # no math twin: no pair
    results.runtime(latency_ms=90.0, attention="joint", backend="math")  # no SDPA twin
    report = report_of(results)
    (pair,) = report.backends.to_dict("records")
    assert (pair["attention"], pair["run_any_backend"]) == ("divided", "infer fp16 b1 cuda")
    assert pair["speedup"] == 1.5 and pair["memory_ratio"] == 0.4
    text = write_report(report, tmp_path)[0].read_text()
    section = text.split("## Implementation: SDPA vs eager attention")[1].split("## ")[0]
    assert "| 100.0 | 150.0 | 1.50x | 2.000 | 5.000 | 0.40x |" in section
    assert "backends" in report.tables()


def test_csv_and_json_hold_the_tables(paper_like: Results, tmp_path: Path) -> None:
    report = report_of(paper_like)
    csvs = write_report(report, tmp_path, name="t", fmt="csv")
    assert tmp_path / "t-schemes.csv" in csvs and tmp_path / "t-curves.csv" in csvs
    schemes = pd.read_csv(tmp_path / "t-schemes.csv")
    assert {"params_m", "params_m_paper", "gflops_per_view_delta_pct", "run"} <= set(schemes)
    [path] = write_report(report, tmp_path, name="t", fmt="json")
    document = json.loads(path.read_text())
    assert document["statuses"] == {"ok": 21, "oom": 1}
    divided = next(r for r in document["tables"]["schemes"] if r["attention"] == "divided")
    assert divided["gflops_per_view_paper"] == 196.7
    joint = next(r for r in document["tables"]["schemes"] if r["attention"] == "joint")
    assert joint["top1"] is None  # NaN becomes null


def test_summary_is_plain_json_able_rows(paper_like: Results) -> None:
    rows = summary(report_of(paper_like))
    assert [row["table"] for row in rows] == ["1"] * 5 + ["2"] * 3
    json.dumps(rows)  # no NaN objects or numpy types that json rejects
    divided = next(row for row in rows if row["attention"] == "divided")
    assert divided["gflops_per_view_paper"] == 196.7 and divided["top1"] == 77.5


def test_an_empty_store_or_suite_is_a_one_line_config_error(
    results: Results, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"^no results in .*results.sqlite; run `tsfbench run"):
        load_results(results.store.path)
    missing = tmp_path / "nowhere.sqlite"
    with pytest.raises(ConfigError, match="no results in"):
        load_results(missing)
    assert not missing.exists()  # asking does not create a store
    results.flops(196.05, 121_566_352, suite="quick")
    assert len(load_results(results.store, suite="quick")) == 1
    with pytest.raises(ConfigError, match="for suite 'paper'"):
        load_results(results.store, suite="paper")
    with pytest.raises(ConfigError, match="no results"):
        build_report(pd.DataFrame())


def test_unknown_format_or_name_is_a_config_error(paper_like: Results, tmp_path: Path) -> None:
    report = report_of(paper_like)
    with pytest.raises(ConfigError, match="format: unknown 'html'; accepted: md, csv, json"):
        write_report(report, tmp_path, fmt="html")
    with pytest.raises(ConfigError, match="name"):
        write_report(report, tmp_path, name="../elsewhere")


def test_a_suite_file_selects_the_tasks_it_lists(results: Results, tmp_path: Path) -> None:
    from tsfbench.suite import load_suite

    suite = tmp_path / "mine.toml"
    suite.write_text('name = "mine"\n[[grid]]\nmeasure = ["flops"]\nmodel = "base"\n')
    [task] = load_suite(suite, results.store.path.parent).tasks
    results.flops(196.05, 121_566_352, suite="other")  # not one of its tasks
    row = {**task.config.as_dict(), "params": 1, "gflops_per_view": 1.0, "tflops": 0.003}
    results.store.put(Row("flops", task.key, "env", "quick", "ok", 1.0, row))
    frame = load_results(results.store, suite=str(suite))
    assert list(frame["task"]) == [task.key]  # whichever suite measured it


def test_a_runs_notes_reach_its_report_row(results: Results, tmp_path: Path) -> None:
    """fp16 training: the row says its steps include the gradient scaler's sync."""
    from tsfbench.config import ProbeSettings, RunConfig
    from tsfbench.measure.latency import Latency
    from tsfbench.measure.workload import SCALER_NOTE

    record = RunConfig().as_dict() | ProbeSettings(mode="train", dtype="fp16").as_dict()
    record |= Latency((90.0, 100.0, 110.0), notes=SCALER_NOTE).as_record()
    results.add("runtime", record | {"status": "ok", "error": None})
    report = report_of(results)
    assert list(report.schemes["notes"]) == [SCALER_NOTE]
    text = write_report(report, tmp_path, name="t")[0].read_text()
    assert f"({SCALER_NOTE})" in text
