"""The report's "What fits" table: stored fit answers beside the paper's out-of-memory points."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsfbench.config import ProbeSettings, RunConfig
from tsfbench.fit import BOUNDARY, Boundary, Budget, Span
from tsfbench.measure.fit import Request, _record
from tsfbench.report import build_report, load_results, write_report
from tsfbench.report.fits import paper_outcome

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Results

GIB = 2**30


def store_fit(results: Results, attention: str, backend: str, axis: str, card: str,
              memory_gib: int, largest: int) -> None:  # fmt: skip
    """A fit task's record as `measure.fit.answer` makes it, stored as the runner does."""
    step = 16 if axis == "size" else 1
    budget = Budget(memory_gib * GIB, 512 * 2**20, "an estimate", 0.05, card)
    values = Span(axis, step, 2048 if axis == "size" else 1024, step)
    settings = ProbeSettings(mode="train", backend=backend, device="cpu")
    request = Request(RunConfig(attention=attention), settings, {}, axis, values, budget)
    found = Boundary(BOUNDARY, largest, 29 * GIB, largest + step, 31 * GIB)
    results.add("fit", _record(request, found, 6) | {"status": "predicted"}, suite="fit")


def test_the_what_fits_table_puts_each_answer_beside_the_paper(
    results: Results, tmp_path: Path
) -> None:
    store_fit(results, "joint", "math", "frames", "v100-32gb", 32, 32)
    store_fit(results, "divided", "sdpa", "size", "h100-80gb", 80, 1696)
    report = build_report(load_results(results.store.path))
    rows = report.fits.to_dict("records")
    assert [(r["attention"], r["axis"], r["largest"], r["next"]) for r in rows] == [
        ("joint", "frames", 32, 33),
        ("divided", "size", 1696, 1712),
    ]
    assert rows[0]["paper"] == "ran 8; out of memory from 32"
    assert rows[1]["paper"] == "ran all tested, up to 560"
    assert rows[0]["held"] == "size 224, batch 1" and rows[0]["card"] == "v100-32gb"
    (markdown, *_) = write_report(report, tmp_path, "r", "md")
    text = markdown.read_text()
    assert "## What fits" in text
    assert (
        "| joint | math | train fp32 b1 predicted on cpu | v100-32gb (29.9 GiB) | frames " in text
    )
    assert "| 32 (29.0 GiB) | 33 (31.0 GiB) | boundary | ran 8; out of memory from 32 |" in text
    assert "fits" in report.tables()


def test_the_paper_column_is_only_where_the_paper_tested() -> None:
    held = {"size": 224, "batch": 1}
    assert paper_outcome("base", "joint", "frames", held) == "ran 8; out of memory from 32"
    assert paper_outcome("base", "joint", "size", {"frames": 8, "batch": 1}) == (
        "ran 336; out of memory from 448"
    )
    assert paper_outcome("base", "joint", "frames", {"size": 448, "batch": 1}) is None
    assert paper_outcome("base", "joint", "batch", {"frames": 8, "size": 224}) is None
    assert paper_outcome("i3d_r50", "-", "frames", held) is None
