"""A suite's `measure = ["profile"]`: tasks, stored rows, and the report's "Where the time goes"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsfbench.config import ConfigError
from tsfbench.report import build_report, load_results, write_report
from tsfbench.report.profile import sentences
from tsfbench.runner import run_suite
from tsfbench.store import Store
from tsfbench.suite import load_suite

TINY_PROFILE = """
name = "tiny-profile"
[[grid]]
measure = ["profile"]
model = "base"
attention = ["space", "divided"]
frames = 2
size = 32
overrides = { depth = 1, dim = 32, heads = 2 }
warmup = 0
iterations = 2
device = "cpu"
"""


def test_a_profile_grid_gives_one_task_per_configuration(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TINY_PROFILE)
    tasks = load_suite(path, tmp_path).tasks
    assert [task.measurement for task in tasks] == ["profile", "profile"]
    assert tasks[0].settings["iterations"] == 2 and tasks[0].overrides == {
        "depth": 1,
        "dim": 32,
        "heads": 2,
    }
    assert (
        tasks[1].describe() == "profile base divided 2x32 infer fp32 b1 (depth=1, dim=32, heads=2)"
    )


def test_a_profile_grid_refuses_the_memory_monitors_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TINY_PROFILE + 'memory_limit = "1GiB"\n')
    with pytest.raises(ConfigError, match="memory_limit: not used by profile"):
        load_suite(path, tmp_path)


def test_profile_rows_are_stored_and_reported_where_the_time_goes(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TINY_PROFILE)
    store = Store(tmp_path / "r.sqlite")
    summary = run_suite(load_suite(path, tmp_path), store)
    assert summary.statuses == {"ok": 2}, summary.failures
    rows = store.rows()
    assert all(
        sum(p["time_share"] for p in row.record["parts"]) == pytest.approx(1) for row in rows
    )

    report = build_report(load_results(store.path))
    assert set(report.profile["attention"]) == {"space", "divided"}
    written = write_report(report, tmp_path / "out", name="t")
    text = written[0].read_text()
    assert "## Where the time goes" in text
    figure = tmp_path / "out" / "t-time-1.png"
    assert figure in written and figure.read_bytes().startswith(b"\x89PNG")
    # one sentence per scheme, naming its largest part with its share of time and of FLOPs
    said = sentences(report.profile)
    assert len(said) == 2 and all(line in text for line in said)
    top = report.profile.loc[report.profile["attention"] == "divided"]
    top = top.loc[top["time_share"].idxmax()]
    assert (
        f"`{top['part']}` takes the largest share of the time, {100 * top['time_share']:.0f}%"
        in text
    )
