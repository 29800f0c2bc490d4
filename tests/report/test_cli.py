"""`tsfbench report`: files written, a summary table or JSON, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from tsfbench.cli import app

if TYPE_CHECKING:
    from conftest import Results

runner = CliRunner()


def test_report_writes_the_markdown_and_prints_a_summary(
    paper_like: Results, tmp_path: Path
) -> None:
    store, out = str(paper_like.store.path), tmp_path / "reports"
    result = runner.invoke(app, ["report", "--store", store, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "tsfbench.md").is_file() and list(out.glob("tsfbench-*.png"))
    assert "slowfast_r50" in result.stdout and "196.7" in result.stdout  # measured and paper
    as_json = runner.invoke(
        app, ["report", "quick", "--store", store, "--out", str(out), "--format", "csv", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    printed = json.loads(as_json.stdout)
    assert all(Path(p).suffix == ".csv" and Path(p).is_file() for p in printed["files"])
    assert Path(printed["files"][0]).name.startswith("quick-")  # named after the suite
    assert {row["model"] for row in printed["summary"]} == {"base", "hr", "slowfast_r50"}


def test_report_errors_are_one_line_and_exit_2(paper_like: Results, tmp_path: Path) -> None:
    empty = runner.invoke(app, ["report", "--store", str(tmp_path / "none.sqlite")])
    assert empty.exit_code == 2
    assert "run `tsfbench run suites/quick.toml` first" in empty.stderr
    assert not (tmp_path / "none.sqlite").exists()
    bad = runner.invoke(app, ["report", "--store", str(paper_like.store.path), "--format", "pdf"])
    assert bad.exit_code == 2 and bad.stderr.strip().count("\n") == 0
    assert "--format" in bad.stderr and "md, csv, json" in bad.stderr


def test_report_into_a_file_or_from_a_non_store_is_one_line(
    paper_like: Results, tmp_path: Path
) -> None:
    store, blocker = str(paper_like.store.path), tmp_path / "a_file"
    blocker.write_text("x")
    cases = [
        (["--store", store, "--out", str(blocker)], "out: cannot create"),
        (["--store", str(blocker), "--out", str(tmp_path / "r")], "store: cannot open"),
        (["--store", store, "--out", str(tmp_path / "r"), "--name", ""], "name: ''"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["report", *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {message}")
        assert result.stderr.strip().count("\n") == 0
