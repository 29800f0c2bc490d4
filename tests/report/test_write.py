"""Report files appear whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tsfbench.report import build_report, load_results, write_report
from tsfbench.store import atomic_write

if TYPE_CHECKING:
    from conftest import Results


def test_writing_leaves_no_temporary_files(paper_like: Results, tmp_path: Path) -> None:
    report = build_report(load_results(paper_like.store.path))
    out = tmp_path / "reports"
    written = [p for fmt in ("md", "csv", "json") for p in write_report(report, out, "r", fmt)]
    assert sorted(out.iterdir()) == sorted(set(written))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = atomic_write(tmp_path / "r.md", "old\n")

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "new\n")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_a_figure_drawn_from_the_same_points_is_not_drawn_again(
    paper_like: Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeated `tsfbench report` skips matplotlib; new points or another figure redraw."""
    from tsfbench.report import write

    report = build_report(load_results(paper_like.store.path))
    drawn: list[str] = []
    real = write.render

    def counting(curves: object, figure: str) -> bytes:
        drawn.append(figure)
        return real(curves, figure)  # type: ignore[arg-type]

    monkeypatch.setattr(write, "render", counting)
    first = write_report(report, tmp_path, "r")
    figures = sorted(drawn)
    assert figures and len(first) == len(figures) + 1
    before = {p: p.read_bytes() for p in first[1:]}
    drawn.clear()
    write_report(report, tmp_path, "r")
    assert drawn == []
    assert {p: p.read_bytes() for p in first[1:]} == before

    paper_like.flops(300.0, 121_566_352, attention="joint", size=560)  # a new point on one curve
    write_report(build_report(load_results(paper_like.store.path)), tmp_path, "r")
    assert drawn and set(drawn) < set(figures)
