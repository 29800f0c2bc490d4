"""The report says why a memory figure is missing instead of silently falling back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tsfbench.report import build_report, load_results, write_report

if TYPE_CHECKING:
    from conftest import Results

CONTAINER = (
    "NVML listed 2 process(es), none of this process tree: NVML gives host PIDs, which never "
    "match inside a container's PID namespace"
)


def test_rows_without_nvml_process_memory_get_a_footnote_with_the_reason(
    results: Results, tmp_path: Path
) -> None:
    runtime_record = sys.modules[type(results).__module__].runtime_record  # the conftest's
    for frames in (8, 16):
        record = runtime_record(frames=frames) | {
            "max_process_vram_bytes": None,
            "max_reserved_bytes": 3 * 2**30,
            "memory_note": f"process_vram: {CONTAINER}",
        }
        results.add("runtime", record)
    results.runtime(frames=32)  # NVML process memory measured: no note
    report = build_report(load_results(results.store.path))
    kinds = dict(zip(report.configs["frames"], report.configs["memory_kind"], strict=True))
    assert kinds == {8: "torch reserved", 16: "torch reserved", 32: "NVML process"}
    text = write_report(report, tmp_path, name="t")[0].read_text()
    assert f"- `process_vram` missing or partial in 2 row(s): {CONTAINER}." in text


def test_a_report_without_notes_has_no_footnote(results: Results, tmp_path: Path) -> None:
    results.runtime()
    text = write_report(build_report(load_results(results.store.path)), tmp_path, name="t")[0]
    assert "missing or partial" not in text.read_text()


def test_the_allocators_peak_and_nvmls_process_peak_are_two_labelled_columns(
    results: Results, tmp_path: Path
) -> None:
    """The same run's allocator peak and NVML process memory differ by the CUDA context: each
    has its own column, and a figure NVML could not give is `-`, never the other figure."""
    runtime_record = sys.modules[type(results).__module__].runtime_record
    gib = 2**30
    bare_metal = {"max_reserved_bytes": 3 * gib, "max_process_vram_bytes": 3 * gib + gib // 2}
    container = {"max_reserved_bytes": 2 * gib, "max_process_vram_bytes": None}
    results.add("runtime", runtime_record(frames=8) | bare_metal)
    results.add("runtime", runtime_record(frames=16) | container)
    report = build_report(load_results(results.store.path))
    text = write_report(report, tmp_path, name="t")[0].read_text()
    table = text.split("## All configurations")[1]
    assert "| peak GiB: allocator (CPU: RSS) | peak GiB: NVML process |" in table
    rows = {line.split(" | ")[3]: line for line in table.splitlines() if " x 224 " in line}
    assert "| 3.00 | 3.50 |" in rows["8 x 224"]
    assert "| 2.00 | - |" in rows["16 x 224"]


def test_an_environment_without_nvml_says_so_in_the_report(
    results: Results, tmp_path: Path
) -> None:
    why = "NVMLError_LibraryNotFound: peak memory from the torch allocator only, no energy"
    results.runtime(env=results.env | {"nvml_unavailable": why})
    text = write_report(build_report(load_results(results.store.path)), tmp_path, name="t")[0]
    assert f"- E1: NVML unavailable ({why})." in text.read_text()
