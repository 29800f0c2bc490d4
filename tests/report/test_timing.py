"""Latency rows in the report: samples round-trip through the store, csv and json; the median
with its interval; the contended mark and footnote; rows stored before samples were kept."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.report.conftest import SPREAD, Results, runtime_record
from tsfbench.report import build_report, load_results, write_report
from tsfbench.report.write import markdown

SAMPLES = [100.0 * (1 + d / 100) for d in SPREAD]
STATS = [
    "latency_median_ms", "latency_p90_ms", "latency_mean_ms", "latency_std_ms", "latency_min_ms",
    "latency_ci_low_ms", "latency_ci_high_ms", "ci_half_width", "latency_ci_method",
    "iterations", "warmup_steps", "stop_reason", "contended", "other_cpu_cores",
]  # fmt: skip


def test_samples_round_trip_through_the_store_and_the_csv_and_json(
    results: Results, tmp_path: Path
) -> None:
    results.runtime(latency_ms=100.0, attention="divided")
    (row,) = results.store.rows("runtime")
    assert row.record["latency_samples_ms"] == SAMPLES  # in measurement order, as stored
    report = build_report(load_results(results.store.path))
    csv_path = next(p for p in write_report(report, tmp_path, "r", "csv") if "configs" in p.name)
    from_csv = pd.read_csv(csv_path).iloc[0]
    assert json.loads(from_csv["latency_samples_ms"]) == SAMPLES
    assert set(STATS) <= set(from_csv.index)
    assert from_csv["latency_ci_method"] == "order-statistic"
    (json_path,) = write_report(report, tmp_path, "r", "json")
    (from_json,) = json.loads(json_path.read_text())["tables"]["configs"]
    assert from_json["latency_samples_ms"] == SAMPLES
    assert from_json["latency_ci_low_ms"] == row.record["latency_ci_low_ms"]
    assert from_json["latency_p95_ms"] is None  # 10 samples do not reach p95


def test_the_report_shows_the_median_with_its_interval_and_marks_only_contended_rows(
    results: Results,
) -> None:
    results.runtime(latency_ms=100.0, attention="divided")
    busy = runtime_record(latency_ms=300.0, attention="joint")
    busy |= {"contended": True, "contention": "other processes 1.42 cores avg, load 3.1"}
    results.add("runtime", busy)
    text = markdown(build_report(load_results(results.store.path)), "r", {})
    rows = {line.split(" (")[0]: line for line in text.splitlines() if "fp16 b1" in line}
    assert "| 100.0 [98.0, 102.0] |" in rows["| Divided Space-Time"]  # quiet: no mark
    assert "| 300.0 [294.0, 306.0] (c) |" in rows["| Joint Space-Time"]
    assert "(c) contended" in text and "other processes 1.42 cores avg, load 3.1" in text


def test_a_quiet_store_has_no_contended_footnote(results: Results) -> None:
    results.runtime(latency_ms=100.0, attention="divided")
    text = markdown(build_report(load_results(results.store.path)), "r", {})
    assert "(c)" not in text and "95% confidence interval" in text


def test_rows_stored_before_samples_were_kept_still_report(results: Results) -> None:
    old = runtime_record(latency_ms=100.0, attention="divided")
    kept = ("latency_median_ms", "latency_p90_ms", "latency_mean_ms", "latency_std_ms")
    old = {k: v for k, v in old.items() if not k.startswith(("latency_", "ci_", "contend"))}
    old |= dict.fromkeys(kept, 100.0) | {"latency_p10_ms": 95.0}
    for key in ("stop_reason", "warmup_steps", "other_cpu_cores", "remeasured"):
        old.pop(key, None)
    results.add("runtime", old)
    report = build_report(load_results(results.store.path))
    assert report.schemes["latency_median_ms"].tolist() == [100.0]
    text = markdown(report, "r", {})
    assert "| 100.0 |" in text and "(c)" not in text  # the median alone, never marked


def canaried(latency_ms: float, attention: str, canary_ms: float) -> dict:
    record = runtime_record(latency_ms=latency_ms, attention=attention)
    kind = "float32 784x768x3072 matmul, 2 threads"
    return record | {"canary_ms": canary_ms, "canary_samples_ms": [canary_ms] * 4,
                     "canary_kind": kind}  # fmt: skip


def test_rows_measured_at_machine_speeds_apart_get_a_note_and_close_ones_none(
    results: Results,
) -> None:
    results.add("runtime", canaried(100.0, "divided", 38.0))
    results.add("runtime", canaried(300.0, "joint", 40.0))
    text = markdown(build_report(load_results(results.store.path)), "r", {})
    assert "speed varied" not in text
    results.add("runtime", canaried(120.0, "space", 50.0))
    text = markdown(build_report(load_results(results.store.path)), "r", {})
    assert "E1: the machine's speed varied 1.32x between these rows" in text
    assert "38.0-50.0 ms" in text


def test_the_canary_readings_and_their_positions_reach_the_json(
    results: Results, tmp_path: Path
) -> None:
    """What `compare` divides by, kept in the report's files: readings and the steps before each."""
    record = canaried(100.0, "divided", 20.0) | {"canary_steps": [0, 4, 7, 10]}
    results.add("runtime", record)
    report = build_report(load_results(results.store.path))
    (json_path,) = write_report(report, tmp_path, "r", "json")
    (row,) = json.loads(json_path.read_text())["tables"]["configs"]
    assert row["canary_samples_ms"] == [20.0] * 4 and row["canary_steps"] == [0, 4, 7, 10]
