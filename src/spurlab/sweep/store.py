"""The results store: ``sweep.db`` (SQLite), one row per finished or failed grid point.

Only the sweep's driver process writes; each row is one transaction, so a kill leaves the store as it was
before or after that row, never in between. Readers open it read-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spurlab.atomic import finite_json
from spurlab.errors import InternalError, SpurlabError

DB_NAME = "sweep.db"
STORE_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key       TEXT PRIMARY KEY,            -- the grid point's key (= its run folder runs/<key>)
    idx       INTEGER NOT NULL,            -- position in the grid
    overrides TEXT NOT NULL,               -- JSON: dotted key -> value, in grid order
    config    TEXT NOT NULL,               -- JSON: the resolved experiment config
    status    TEXT NOT NULL CHECK (status IN ('complete', 'failed')),
    error     TEXT,                        -- one line, failed rows only
    metrics   TEXT,                        -- JSON: the run's metrics.json, complete rows only
    run_dir   TEXT NOT NULL,               -- relative to the sweep folder
    started   TEXT NOT NULL,               -- UTC ISO timestamps
    finished  TEXT NOT NULL,
    seconds   REAL NOT NULL
);
"""

Status = Literal["complete", "failed"]


@dataclass
class ResultRow:
    key: str
    index: int
    overrides: dict[str, Any]
    config: dict[str, Any]
    status: Status
    error: str | None
    metrics: dict[str, Any] | None
    run_dir: str
    started: str
    finished: str
    seconds: float


class SweepStore:
    """``sweep.db`` in a sweep folder. ``readonly`` never creates or changes the file."""

    def __init__(self, folder: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(folder) / DB_NAME
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise SpurlabError(f"{folder}: no {DB_NAME} here (not a spurlab sweep folder, or nothing ran yet)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if self.readonly:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            else:
                conn = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise SpurlabError(f"cannot open {self.path}: {exc}") from None
        with closing(conn):
            try:
                yield conn
            except sqlite3.DatabaseError as exc:
                if "not a database" in str(exc) or "malformed" in str(exc):
                    raise SpurlabError(f"{self.path}: {exc} (not a spurlab results store?)") from None
                raise InternalError(f"{self.path}: {exc}") from None  # disk full, I/O error, locked too long

    def init(self) -> None:
        with self._connect() as conn, conn:
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('store_version', ?)", (str(STORE_VERSION),))

    def put(self, row: ResultRow) -> None:
        """Insert or replace the row of ``row.key`` (one transaction)."""
        values = (row.key, row.index, _dumps(row.overrides, sort=False), _dumps(row.config), row.status, row.error,
                  None if row.metrics is None else _dumps(row.metrics), row.run_dir, row.started, row.finished,
                  float(row.seconds))
        with self._connect() as conn, conn:
            conn.execute("INSERT OR REPLACE INTO results (key, idx, overrides, config, status, error, metrics, "
                         "run_dir, started, finished, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def rows(self) -> list[ResultRow]:
        """Every row, in grid order."""
        with self._connect() as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone() is None:
                if self.readonly:  # an empty or foreign file: there is nothing to show, and that is not "no rows"
                    raise SpurlabError(f"{self.path}: not a spurlab results store (it has no results table)")
                return []
            cur = conn.execute("SELECT key, idx, overrides, config, status, error, metrics, run_dir, started, "
                               "finished, seconds FROM results ORDER BY idx, key")
            return [ResultRow(r[0], r[1], json.loads(r[2]), json.loads(r[3]), r[4], r[5],
                              None if r[6] is None else json.loads(r[6]), r[7], r[8], r[9], r[10])
                    for r in cur.fetchall()]

    def statuses(self) -> dict[str, str]:
        return {r.key: r.status for r in self.rows()}


def _dumps(obj: Any, sort: bool = True) -> str:
    return json.dumps(finite_json(obj), sort_keys=sort, ensure_ascii=False, allow_nan=False)
