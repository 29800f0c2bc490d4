"""The results store: one row per (measurement, task, environment), safe to share."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from tsfbench.store import Row, Store, environment_id


def row(status: str = "ok", value: float = 1.0, task: str = "t1") -> Row:
    return Row("runtime", task, "env", "suite", status, 0.0, {"model": "base", "value": value})


def test_a_finished_row_is_kept_unless_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.sqlite")
    assert store.put(row(value=1.0))
    assert not store.put(row(value=2.0))
    assert [r.record["value"] for r in store.rows()] == [1.0]
    assert store.put(row(value=3.0), replace=True)
    assert [r.record["value"] for r in store.rows()] == [3.0]


def test_an_error_row_is_retried_and_not_counted_as_finished(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.sqlite")
    store.put(row("error", task="t1"))
    store.put(row("oom", task="t2"))
    assert store.finished("env") == {("runtime", "t2")}
    assert store.finished("another machine") == set()
    assert store.put(row("ok", value=5.0, task="t1"))
    assert {r.task: r.status for r in store.rows()} == {"t1": "ok", "t2": "oom"}


def test_frame_has_key_columns_and_record_fields(tmp_path: Path) -> None:
    store = Store(tmp_path / "deep" / "r.sqlite")  # parent folders are created
    store.put(row(task="t1"))
    store.put(row(task="t2"))
    frame = store.frame(tasks=["t2"])
    assert list(frame["task"]) == ["t2"]
    assert {"measurement", "environment", "suite", "status", "model", "value"} <= set(frame)


def test_environment_id_ignores_the_commit_and_current_clock_only() -> None:
    env = {"host": "a", "torch": "2.4", "git_commit": "abc", "gpu_sm_clock_mhz": [1980]}
    same = env | {"git_commit": "def", "gpu_sm_clock_mhz": [345]}
    assert environment_id(env) == environment_id(same)
    assert environment_id(env) != environment_id(env | {"torch": "2.5"})
    assert environment_id(env) != environment_id(env | {"host": "b"})


def test_a_file_that_is_not_a_store_is_a_config_error_and_stays_as_it_was(tmp_path: Path) -> None:
    import pytest

    from tsfbench.config import ConfigError

    suite, short = tmp_path / "quick.toml", tmp_path / "short"
    suite.write_text('name = "quick"\n')
    short.write_text("x")  # SQLite itself would turn this one into a database
    for path in (suite, short, tmp_path):  # text files, a folder
        with pytest.raises(ConfigError, match=r"store: cannot open .* as a results database"):
            Store(path)
    assert suite.read_text() == 'name = "quick"\n' and short.read_text() == "x"


def open_store(path: Path, start: Any) -> str:
    start.wait()  # all at once, as shards started by one SLURM array
    try:
        Store(path)
    except Exception as error:  # the message is the assertion's detail
        return f"{type(error).__name__}: {error}"
    return "ok"


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_processes_creating_one_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Switching a new file to WAL can answer "database is locked" without waiting; before the
    retry, 11 of 40 such races failed."""
    context = multiprocessing.get_context("fork")  # the child only touches SQLite
    with context.Manager() as manager, context.Pool(6) as pool:
        for trial in range(15):
            path = tmp_path / f"r{trial}.sqlite"
            start = manager.Barrier(6)
            outcomes = pool.starmap(open_store, [(path, start)] * 6)
            assert outcomes == ["ok"] * 6, outcomes
