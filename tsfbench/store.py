"""The results store: an SQLite file with one row per (measurement, task, environment).

A row is written in its own transaction the moment a configuration finishes, so a run killed at
any point (Ctrl-C, `kill -9`, a lost node) keeps every finished result and never half of one.
WAL journaling and a generous busy timeout let several processes (shards, `torchrun` ranks)
write to one file at once. The primary key makes a duplicate impossible: a second writer of the
same task either keeps the first row (resume) or replaces it (`--force`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsfbench.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_STORE = Path("results/tsfbench.sqlite")
MAGIC = b"SQLite format 3\x00"  # the first bytes of every SQLite database file


class Status(StrEnum):
    """What became of a task: every stored row has one, and only these."""

    OK = "ok"
    OOM = "oom"  # out of memory: a result, kept
    TIMEOUT = "timeout"  # past its time limit: kept, so a resumed run does not spend it again
    PREDICTED = "predicted"  # peak memory predicted, nothing run
    ERROR = "error"  # failed: retried on resume


FINAL = (Status.OK, Status.OOM, Status.TIMEOUT, Status.PREDICTED)  # not retried on resume
MEASURED = (Status.OK, Status.PREDICTED)  # a figure; the others are failures to report
SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    measurement TEXT NOT NULL,  -- flops | runtime | accuracy
    task TEXT NOT NULL,         -- digest of the task: configuration and settings
    environment TEXT NOT NULL,  -- digest of the environment's identity
    suite TEXT NOT NULL,        -- the suite that measured it ("" outside a suite)
    status TEXT NOT NULL,       -- ok | oom | timeout | error | predicted
    created REAL NOT NULL,      -- unix time the row was written
    record TEXT NOT NULL,       -- the flat record, JSON
    PRIMARY KEY (measurement, task, environment)
)
"""
# Facts that change between two runs on the same machine and software, so not part of identity:
# the checkout's commit, the GPU clock at the moment of asking, and how busy the machine was
# before the run (`contention.idle_state`).
VOLATILE = ("git_commit", "gpu_sm_clock_mhz", "idle_cpu_cores", "idle_load")


def missing(value: Any) -> bool:
    """None, or NaN (how pandas shows a stored value a row does not have)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temp, 0o644)  # mkstemp's 0600 would hide the report from other users
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def digest(value: Any) -> str:
    """A short stable digest of JSON-able data (key order does not matter)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def environment_id(env: Mapping[str, Any]) -> str:
    """Results measured on the same hardware and software share this id."""
    return digest({key: value for key, value in env.items() if key not in VOLATILE})


@dataclass(frozen=True)
class Row:
    """One stored result."""

    measurement: str
    task: str
    environment: str
    suite: str
    status: str
    created: float
    record: dict[str, Any]


class Store:
    """Results in one SQLite file; every call opens and closes its own connection, so a store
    can be shared by processes and survives any of them dying."""

    def __init__(self, path: str | Path = DEFAULT_STORE) -> None:
        self.path = Path(path)
        try:
            if self.path.is_file() and self.path.stat().st_size:
                with self.path.open("rb") as file:  # SQLite would overwrite a short file
                    if file.read(len(MAGIC)) != MAGIC:
                        raise sqlite3.DatabaseError("file is not a database")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create()
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(
                f"store: cannot open {self.path} as a results database ({error}); "
                f"give a new or existing .sqlite file in a writable folder"
            ) from None

    def _create(self, attempts: int = 100) -> None:
        """WAL journaling and the table. Switching a new file to WAL can fail with "database is
        locked" at once, without SQLite's busy wait, when another process (a shard started at
        the same moment) is creating it too: retried, as the other one finishes in milliseconds."""
        for attempt in range(attempts):
            try:
                with self._connect() as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute(SCHEMA)
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == attempts - 1:
                    raise
                time.sleep(0.05)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=120)
        try:
            with db:  # one transaction: commit on success, roll back on error
                yield db
        finally:
            db.close()

    def put(self, row: Row, replace: bool = False) -> bool:
        """Write `row`; an existing row of the same key is kept unless `replace` (or it failed).

        Returns whether the row was written.
        """
        values = (
            row.measurement,
            row.task,
            row.environment,
            row.suite,
            row.status,
            row.created or time.time(),
            json.dumps(row.record, default=str),
        )
        keep = "" if replace else "WHERE results.status NOT IN (" + ",".join("?" * len(FINAL)) + ")"
        sql = (
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (measurement, task, environment) DO UPDATE SET "
            "suite = excluded.suite, status = excluded.status, created = excluded.created, "
            f"record = excluded.record {keep}"
        )
        with self._connect() as db:
            cursor = db.execute(sql, values + (() if replace else FINAL))
            return cursor.rowcount > 0

    def finished(self, environment: str) -> set[tuple[str, str]]:
        """(measurement, task) pairs with a final result in `environment`: what resume skips."""
        marks = ",".join("?" * len(FINAL))
        with self._connect() as db:
            found = db.execute(
                f"SELECT measurement, task FROM results WHERE environment = ? "
                f"AND status IN ({marks})",
                (environment, *FINAL),
            )
            return set(found.fetchall())

    def rows(self, measurement: str | None = None, tasks: Iterable[str] | None = None) -> list[Row]:
        """Stored rows, oldest first; `tasks` keeps only those task digests (one suite's)."""
        with self._connect() as db:
            query = "SELECT * FROM results"
            params: tuple[str, ...] = ()
            if measurement is not None:
                query, params = query + " WHERE measurement = ?", (measurement,)
            found = db.execute(query + " ORDER BY created, rowid", params).fetchall()
        wanted = None if tasks is None else set(tasks)
        return [
            Row(*fields[:6], json.loads(fields[6]))
            for fields in found
            if wanted is None or fields[1] in wanted
        ]

    def frame(self, tasks: Iterable[str] | None = None) -> pd.DataFrame:
        """All rows as one pandas table: the key columns, then every record field as a column."""
        import pandas as pd

        records = [
            {
                "measurement": row.measurement,
                "task": row.task,
                "environment": row.environment,
                "suite": row.suite,
                "created": row.created,
                **row.record,
                "status": row.status,
            }
            for row in self.rows(tasks=tasks)
        ]
        return pd.DataFrame.from_records(records)
