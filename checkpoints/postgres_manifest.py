"""The run manifest in PostgreSQL, behind the same interface as ``dialogforge.checkpoints.manifest.Manifest``.

Same rows, same statuses, same meaning (one row per trajectory, written
``pending`` before anything starts), so the engine, ``resume`` and the
readers do not care which store they have. Tables are prefixed
``dialogforge_`` because a shared server database holds other things too.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Iterable

import sqlite_utils

from dialogforge.checkpoints.manifest import _RUNS_COLUMNS, LIBRARY_COLUMNS, Finished, PlannedTrajectory, Status, finished_fields, now
from dialogforge.pricing import Pricing
from dialogforge.checkpoints.postgres_conn import connect_pg
from dialogforge.checkpoints.urls import display_url
from dialogforge.errors import StoreError

RUNS = "dialogforge_runs"
RUN_CONFIGS = "dialogforge_run_configs"
LIBRARIES = "dialogforge_tool_libraries"
_SQL_TYPES = {str: "TEXT", int: "BIGINT", float: "DOUBLE PRECISION"}


def _schema() -> list[str]:
    columns = ", ".join(
        f"{name} {_SQL_TYPES[kind]}{' PRIMARY KEY' if name == 'thread_id' else ''}"
        for name, kind in _RUNS_COLUMNS.items()
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {RUNS} ({columns})",
        # a table made by an earlier version gains the columns added since
        *(f"ALTER TABLE {RUNS} ADD COLUMN IF NOT EXISTS {name} {_SQL_TYPES[kind]}"
          for name, kind in _RUNS_COLUMNS.items() if name != "thread_id"),
        f"CREATE INDEX IF NOT EXISTS {RUNS}_status ON {RUNS} (status)",
        f"CREATE TABLE IF NOT EXISTS {RUN_CONFIGS} (run_id TEXT PRIMARY KEY, created_at TEXT, config TEXT)",
        f"CREATE TABLE IF NOT EXISTS {LIBRARIES} ("
        + ", ".join(f"{name} TEXT{' PRIMARY KEY' if name == 'library_id' else ''}" for name in LIBRARY_COLUMNS) + ")",
    ]


class PostgresManifest:
    def __init__(self, url: str, *, create: bool = False):
        self.path = display_url(url)  # what messages name; never the password
        self.conn = connect_pg(url, autocommit=True)
        self.lock = threading.Lock()  # writes arrive from worker threads
        if not create and not self._exists():
            self.conn.close()
            raise StoreError(f"{self.path}: no dialogforge runs in this database")
        if create:
            self.upgrade()

    def upgrade(self) -> None:
        """Create the tables, or give tables made by an earlier version the columns added since."""
        with self.lock, self.conn.transaction():
            # Two drivers creating at once: the advisory lock serializes the DDL.
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('dialogforge_manifest'))")
            for statement in _schema():
                self.conn.execute(statement)

    def _exists(self) -> bool:
        return self.conn.execute("SELECT to_regclass(%s)", (RUNS,)).fetchone()[0] is not None

    def close(self) -> None:
        self.conn.close()

    def record_run(self, run_id: str, config: dict[str, Any]) -> None:
        with self.lock:
            self.conn.execute(
                f"INSERT INTO {RUN_CONFIGS} (run_id, created_at, config) VALUES (%s, %s, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET created_at = EXCLUDED.created_at, config = EXCLUDED.config",
                (run_id, now(), json.dumps(config)),
            )

    def run_config(self, run_id: str) -> dict[str, Any]:
        row = self.conn.execute(f"SELECT config FROM {RUN_CONFIGS} WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            raise sqlite_utils.db.NotFoundError(run_id)  # the interface's "no such run" (resume catches it)
        return json.loads(row[0])

    def record_run_and_planned(self, run_id: str, config: dict[str, Any], planned: Iterable[PlannedTrajectory]) -> None:
        """The run's config and every planned row in one transaction: a kill leaves all of it or none."""
        with self.conn.transaction():
            self.record_run(run_id, config)
            self.record_planned(planned)

    def record_planned(self, planned: Iterable[PlannedTrajectory]) -> None:
        created = now()
        rows = [{**p.model_dump(), "status": Status.PENDING.value, "created_at": created} for p in planned]
        if not rows:
            return
        names = list(rows[0])
        sql = f"INSERT INTO {RUNS} ({', '.join(names)}) VALUES ({', '.join('%s' for _ in names)})"
        with self.lock, self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(sql, [[row[n] for n in names] for row in rows])

    def record_library(self, library_id: str, name: str, domain: str, build_key: str | None, text: str) -> None:
        with self.lock:
            self.conn.execute(
                f"INSERT INTO {LIBRARIES} ({', '.join(LIBRARY_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (library_id) DO NOTHING",
                (library_id, name, domain, build_key, now(), text),
            )

    def libraries(self) -> list[dict[str, Any]]:
        with self.lock, self.conn.cursor() as cur:
            if cur.execute("SELECT to_regclass(%s)", (LIBRARIES,)).fetchone()[0] is None:
                return []  # a database from before tool libraries
            cur.execute(f"SELECT * FROM {LIBRARIES} ORDER BY created_at, library_id")
            names = [d.name for d in cur.description]
            return [dict(zip(names, values)) for values in cur.fetchall()]

    def library(self, library_id: str) -> dict[str, Any] | None:
        with self.lock, self.conn.cursor() as cur:
            if cur.execute("SELECT to_regclass(%s)", (LIBRARIES,)).fetchone()[0] is None:
                return None
            cur.execute(f"SELECT * FROM {LIBRARIES} WHERE library_id = %s", (library_id,))
            values = cur.fetchone()
            return None if values is None else dict(zip([d.name for d in cur.description], values))

    def _update(self, thread_id: str, fields: dict[str, Any]) -> None:
        assignments = ", ".join(f"{name} = %s" for name in fields)
        with self.lock:
            self.conn.execute(f"UPDATE {RUNS} SET {assignments} WHERE thread_id = %s", [*fields.values(), thread_id])

    def mark_running(self, thread_id: str) -> None:
        self._update(thread_id, {"status": Status.RUNNING.value, "started_at": now()})

    def mark_finished(self, thread_id: str, state: Finished, pricing: Pricing | None = None) -> None:
        self._update(thread_id, finished_fields(state, pricing))

    def mark_crashed(self, thread_id: str, reason: str, cost: dict[str, Any] | None = None) -> None:
        self._update(thread_id, {"status": Status.FAILED.value, "error": reason, "finished_at": now(), **(cost or {})})

    def rows(self, *, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        where, params = "", []
        if statuses is not None:
            params = [list(statuses)]
            where = "WHERE status = ANY(%s)"
        with self.lock, self.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {RUNS} {where} ORDER BY created_at, thread_id", params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, values)) for values in cur.fetchall()]

    def get(self, thread_id: str) -> dict[str, Any] | None:
        with self.lock, self.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {RUNS} WHERE thread_id = %s", (thread_id,))
            values = cur.fetchone()
            return None if values is None else dict(zip([d.name for d in cur.description], values))
