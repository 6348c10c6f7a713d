"""Per-trajectory databases: isolated, limited, and rebuilt from the write log.

Each trajectory works on its own copy of the source (``workdir/<key>.sqlite``,
made with the backup API), so its writes are visible to its later reads and
to nothing else; the source is only ever opened read-only. The copy keeps,
in a bookkeeping table that tool statements cannot touch, how many writes
it has applied and the digest chain's value after them. ``open`` compares
that with the caller's write log and reuses, extends or rebuilds the copy;
that is what makes crash-resume and forks from any checkpoint correct.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from dialogforge.sqltools.arguments import SqlValue, bind_arguments
from dialogforge.sqltools.copies import connect_copy, copy_path, unlink_copy
from dialogforge.sqltools.errors import (
    ExecutionLimitError,
    SqlDomainError,
    SqlExecError,
    ToolArgumentError,
    WriteReplayError,
    one_line,
)
from dialogforge.sqltools.images import RECORD as _RECORD, copy_source, names_of
from dialogforge.sqltools.policy import StatementPolicy
from dialogforge.sqltools.rows import column_names
from dialogforge.sqltools.writes import SqlWrite, digest_chain, next_digest, source_digest
from dialogforge.records import SqlBinding, SqlKind, ToolSpec

_PROGRESS_EVERY = 1000  # VM instructions between progress-handler calls


class ExecLimits(BaseModel):
    """Caps on what one tool call may cost or return."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_vm_steps: int = Field(default=20_000_000, ge=_PROGRESS_EVERY)
    max_rows: int = Field(default=50, ge=1)
    max_value_bytes: int = Field(default=1_000_000, ge=1_000)


class SelectResult(NamedTuple):
    columns: list[str]
    rows: list[tuple]  # at most ``max_rows``
    total: int  # every row the query produced


class WriteResult(NamedTuple):
    rows_affected: int
    last_row_id: int | None
    columns: list[str]  # of a RETURNING clause, else empty
    returned: list[tuple]
    changed: bool


class TrajectoryDatabase:
    """One trajectory's private database; open it with ``TrajectoryDatabase.open``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, tools: Mapping[str, ToolSpec], limits: ExecLimits, origin: str):
        self._conn = conn
        self.path = path
        self.tools = dict(tools)
        self.limits = limits
        self._origin = origin
        self.applied = 0
        self.digest = origin
        self.rebuilt = False  # whether ``open`` had to rebuild the copy from the source
        self._steps = 0
        self._aborted = False
        self._names: tuple[frozenset[str], frozenset[str]] | None = None  # read when a statement first needs them
        self._log: list[SqlWrite] = []  # the writes the copy reflects (``applied`` of them), once ``open`` returns

    @classmethod
    def open(
        cls,
        source_db: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        key: str,
        write_log: Sequence[SqlWrite],
        *,
        tools: Sequence[ToolSpec] | Mapping[str, ToolSpec],
        limits: ExecLimits | None = None,
    ) -> TrajectoryDatabase:
        """Make or reuse the copy for ``key`` so that it reflects ``write_log``.

        ``tools`` must hold every tool named in the log: replaying a write
        runs that tool's statement again with the logged arguments.
        """
        by_name = dict(tools) if isinstance(tools, Mapping) else {spec.name: spec for spec in tools}
        limits = limits or ExecLimits()
        if not Path(source_db).is_file():
            raise SqlDomainError(f"database not found: {source_db}")
        origin = source_digest(source_db)
        chain = digest_chain(origin, write_log)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        path = copy_path(workdir, key)
        db = cls(connect_copy(path, limits.max_value_bytes), path, by_name, limits, origin)
        try:
            record = db._read_record()
            if record is None or record[0] > len(write_log) or chain[record[0]] != record[1]:
                db._rebuild(source_db)
            else:
                db.applied, db.digest = record
            db._replay(write_log[db.applied :])
        except (SqlExecError, sqlite3.Error):
            db.close()
            raise
        db._log = list(write_log)
        return db

    def catch_up(self, write_log: Sequence[SqlWrite]) -> bool:
        """Bring this open copy to ``write_log`` if the log continues what the copy reflects and the
        file still holds what this connection last wrote (the same trajectory's next call); False
        when it does not (a rewind, a fork, another connection's rebuild): the caller reopens.

        What lets one trajectory keep its copy open across its calls instead of reopening it, and
        rechecking the whole digest chain, on every call."""
        known = len(self._log)
        if len(write_log) < known or any(a is not b and a != b for a, b in zip(write_log, self._log)):
            return False
        if self._read_record() != (self.applied, self.digest):
            return False
        self._replay(write_log[known:])
        self._log = list(write_log)
        return True

    # ------------------------------------------------------------ statements

    def select(self, binding: SqlBinding, params: dict[str, SqlValue]) -> SelectResult:
        """Run a SELECT template; keeps ``max_rows`` rows but counts them all."""
        if binding.kind is not SqlKind.SELECT:
            raise ValueError(f"select() needs a SELECT binding, got {binding.kind}")
        rows: list[tuple] = []
        total = 0
        with self._guarded(binding.kind) as conn:
            cursor = conn.execute(binding.statement, params)
            columns = column_names(cursor.description)
            for row in cursor:
                total += 1
                if total <= self.limits.max_rows:
                    rows.append(row)
        return SelectResult(columns, rows, total)

    def write(self, binding: SqlBinding, params: dict[str, SqlValue], write: SqlWrite, *, record_always: bool = False) -> WriteResult:
        """Run a write template in its own transaction, logging it if it changed data.

        The statement and the bookkeeping update commit together, so the
        copy's record never disagrees with its content, whatever crashes.
        """
        if binding.kind is SqlKind.SELECT:
            raise ValueError("write() needs an INSERT, UPDATE or DELETE binding")
        with self._transaction():
            before = self._conn.total_changes
            with self._guarded(binding.kind) as conn:
                cursor = conn.execute(binding.statement, params)
                returned = cursor.fetchall()  # RETURNING rows; stepping them finishes the statement
                columns = column_names(cursor.description)
                affected = max(cursor.rowcount, 0)
                last_id = cursor.lastrowid if binding.kind is SqlKind.INSERT and affected else None
            changed = self._conn.total_changes != before
            if changed or record_always:
                digest = next_digest(self.digest, write)
                self._conn.execute(f"UPDATE {_RECORD} SET applied = ?, digest = ? WHERE id = 1", (self.applied + 1, digest))
        if changed or record_always:
            self.applied, self.digest = self.applied + 1, digest
            self._log.append(write)
        return WriteResult(affected, last_id, columns, returned[: self.limits.max_rows], changed)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TrajectoryDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _read_record(self) -> tuple[int, str] | None:
        try:
            row = self._conn.execute(f"SELECT applied, digest FROM {_RECORD} WHERE id = 1").fetchone()
        except sqlite3.DatabaseError:  # no record table yet, or not a database at all
            return None
        return (int(row[0]), str(row[1])) if row else None

    def _rebuild(self, source_db: str | os.PathLike[str]) -> None:
        """Overwrite the copy with the source and a fresh record (``images.copy_source``)."""
        if not self._usable():
            self._conn.close()
            unlink_copy(self.path)
            self._conn = connect_copy(self.path, self.limits.max_value_bytes)
        copy_source(source_db, self._origin, self._conn)
        self.applied, self.digest = 0, self._origin
        self.rebuilt = True

    def _usable(self) -> bool:
        try:
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            return False
        return True

    def _replay(self, writes: Sequence[SqlWrite]) -> None:
        for write in writes:
            index = self.applied + 1
            spec = self.tools.get(write.tool)
            if spec is None or spec.sql is None or spec.sql.kind is SqlKind.SELECT:
                raise WriteReplayError(f"write #{index} uses tool {write.tool!r}, which has no write statement here")
            try:
                params = bind_arguments(spec, write.arguments, max_value_bytes=self.limits.max_value_bytes)
                self.write(spec.sql, params, write, record_always=True)
            except (ToolArgumentError, ExecutionLimitError, sqlite3.Error) as error:
                raise WriteReplayError(one_line(f"write #{index} ({write.tool}) failed on replay: {error}")) from error

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        committed = False
        try:
            yield
            self._conn.execute("COMMIT")
            committed = True
        finally:
            # SQLite may already have rolled back (an interrupted write does).
            if not committed and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    @contextmanager
    def _guarded(self, kind: SqlKind) -> Iterator[sqlite3.Connection]:
        """The kind's authorizer and a step budget, for one tool statement only."""
        if self._names is None:
            self._names = names_of(self._origin, self._conn)
        tables, triggers = self._names
        self._steps, self._aborted = 0, False
        self._conn.set_authorizer(StatementPolicy(kind, tables, triggers))
        self._conn.set_progress_handler(self._on_progress, _PROGRESS_EVERY)
        try:
            yield self._conn
        except sqlite3.OperationalError as error:
            if self._aborted:
                raise ExecutionLimitError(
                    f"query aborted: it exceeded the limit of {self.limits.max_vm_steps} execution steps"
                ) from error
            raise
        finally:
            self._conn.set_progress_handler(None, 0)
            self._conn.set_authorizer(None)

    def _on_progress(self) -> int:
        self._steps += _PROGRESS_EVERY
        if self._steps > self.limits.max_vm_steps:
            self._aborted = True
            return 1  # non-zero interrupts the statement
        return 0
