"""Tool-Exec: tool calls answered by real SQL over the trajectory's own database.

The paper's executable variant. Each trajectory works on a private copy of
the domain's database (``<run db>.worlds/<thread id>.sqlite``); the copy is
a cache of (source database, ``state.sql_writes``), so a resumed or forked
trajectory gets exactly the data its checkpoint implies, rebuilt when the
copy on disk disagrees. Results go back verbatim (JSON rows); a SQL error is
a tool error message the agent can react to. Only the domain's validated
statements ever run: the spec in the state is checked against them.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from dialogforge.errors import ToolBackendError
from dialogforge.sqltools import (
    ExecLimits, ExecOutcome, SqlDomain, SqlExecError, TrajectoryDatabase, execute_tool, remove_copy, sample_rows,
)
from dialogforge.sqltools.writes import settled_stamp, source_digest
from dialogforge.records import SqlWrite, ToolCall, ToolErrorKind, ToolSpec
from dialogforge.executors.contract import ExecutionOutcome, Trajectory

SAMPLE_ROWS_PER_TABLE = 3
_SAMPLE_TEXT_LIMIT = 200  # characters of one sampled value shown to the task proposer


def worlds_dir(run_db: str | os.PathLike[str]) -> Path:
    """Where a run keeps its trajectories' database copies: beside the run database."""
    return Path(f"{run_db}.worlds")


def remove_worlds(run_db: str | os.PathLike[str], thread_ids: Sequence[str]) -> None:
    """Delete these trajectories' copies (each can be rebuilt from its write log)."""
    workdir = worlds_dir(run_db)
    if not workdir.is_dir():
        return
    for thread_id in thread_ids:
        remove_copy(workdir, thread_id)
    if not any(workdir.iterdir()):
        workdir.rmdir()


class SqlToolExecutor:
    """Answers one trajectory's tool calls by running the domain's SQL statements.

    ``source_sha256`` pins the source database's content when the run began:
    replaying the write log onto a changed source would silently produce a
    different world, so that fails the trajectory instead.
    """

    def __init__(
        self,
        domain: SqlDomain,
        workdir: str | os.PathLike[str],
        key: str,
        *,
        limits: ExecLimits | None = None,
        source_sha256: str | None = None,
        rows_per_table: int = SAMPLE_ROWS_PER_TABLE,
    ):
        self.domain = domain
        self.workdir = Path(workdir)
        self.key = key
        self.limits = limits
        self.source_sha256 = source_sha256
        self.rows_per_table = rows_per_table
        self._samples: dict[int, dict[str, Any]] = {}
        # The copy, open from one call to the next (``TrajectoryDatabase.catch_up``); calls take
        # turns on it (a connection is not for two threads at once). Closed by ``aclose``.
        self._db: TrajectoryDatabase | None = None
        self._turn = threading.Lock()
        self._source_stamp: tuple[int, int, int, int] | None = None  # the source's, when it last matched

    def task_context(self, state: Trajectory) -> dict[str, Any]:
        """The schema and a few real rows per table (sampled with the trajectory's seed),
        so the proposed task names entities that exist."""
        if state.seed not in self._samples:
            try:
                rows = sample_rows(self.domain.db_path, self.rows_per_table, seed=state.seed)
            except SqlExecError as error:
                raise ToolBackendError(f"Tool-Exec database: {error}") from error
            self._samples[state.seed] = {name: [_shortened(row) for row in table] for name, table in rows.items()}
        return {"database_schema": self.domain.schema_sql, "sample_rows": self._samples[state.seed]}

    async def execute(self, state: Trajectory, spec: ToolSpec, call: ToolCall) -> ExecutionOutcome:
        # Off the event loop, in a worker thread.
        outcome = await asyncio.to_thread(self.run_call, tuple(state.sql_writes), spec, dict(call.arguments))
        kind = ToolErrorKind.FAILED if outcome.is_error else None
        return ExecutionOutcome(content=outcome.content(), is_error=outcome.is_error, error_kind=kind, sql_write=outcome.write)

    def run_call(self, write_log: Sequence[SqlWrite], spec: ToolSpec, arguments: dict[str, JsonValue]) -> ExecOutcome:
        """Bring this trajectory's copy to ``write_log``, then run one call (synchronous)."""
        with self._turn:
            try:
                self._check_source()
                db = self._copy_at(write_log)
            except (SqlExecError, OSError, sqlite3.Error) as error:
                self._close()
                raise ToolBackendError(f"Tool-Exec database for {self.key}: {error}") from error
            try:
                return execute_tool(db, spec, arguments)
            except BaseException:
                self._close()  # reopened, and checked against the log, by the next call
                raise

    def _copy_at(self, write_log: Sequence[SqlWrite]) -> TrajectoryDatabase:
        """The copy brought to ``write_log``: the open one when the log continues it, else reopened."""
        if self._db is not None and self._db.catch_up(write_log):
            return self._db
        self._close()
        self._db = self.domain.open_trajectory(self.workdir, self.key, write_log, limits=self.limits)
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    async def aclose(self) -> None:
        """Close the open copy (the engine calls this when the trajectory's job ends)."""
        def close() -> None:
            with self._turn:  # after a call still running in its thread (a cancelled job's)
                self._close()

        await asyncio.to_thread(close)

    def _check_source(self) -> None:
        if self.source_sha256 is None:
            return
        try:  # every call checks; a source unchanged since it last matched is not resolved and looked up again
            stamp = settled_stamp(self.domain.db_path)
        except OSError:
            stamp = False
        if stamp is False:
            raise ToolBackendError(f"Tool-Exec database: source {self.domain.db_path} is gone")
        if stamp is not None and stamp == self._source_stamp:
            return
        if source_digest(self.domain.db_path) != self.source_sha256:
            raise ToolBackendError(
                f"Tool-Exec database: source {self.domain.db_path} changed since the run started; "
                "its trajectories cannot be replayed on it"
            )
        self._source_stamp = stamp


def _shortened(row: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {
        column: value[:_SAMPLE_TEXT_LIMIT] + "..." if isinstance(value, str) and len(value) > _SAMPLE_TEXT_LIMIT else value
        for column, value in row.items()
    }
