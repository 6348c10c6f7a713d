"""Executing one tool call against a trajectory's database.

This is the Tool-Exec tool: the declared statement runs with the model's
arguments bound as parameters, and the result goes back verbatim. Nothing a
call does raises into the graph: bad arguments, SQL errors (a failed
constraint, a missing row) and limit aborts become an error outcome, which
the dialogue shows the agent as a tool message it can react to.
"""

from __future__ import annotations

import json
import sqlite3

from pydantic import BaseModel, ConfigDict, JsonValue

from dialogforge.sqltools.arguments import bind_arguments
from dialogforge.sqltools.errors import ExecutionLimitError, ToolArgumentError, one_line
from dialogforge.sqltools.rows import json_value, row_objects
from dialogforge.sqltools.world import TrajectoryDatabase
from dialogforge.sqltools.writes import SqlWrite
from dialogforge.records import SqlKind, ToolSpec


class ExecOutcome(BaseModel):
    """What one tool call produced; ``write`` is set when it changed data,
    and the caller appends it to the trajectory's write log."""

    model_config = ConfigDict(extra="forbid")

    result: JsonValue = None
    is_error: bool = False
    error: str | None = None
    write: SqlWrite | None = None
    # A SELECT past the row cap: how many rows matched in all (``result`` holds the first ones).
    total_rows: int | None = None

    def content(self) -> str:
        """The tool message text: the JSON result, or the error.

        A capped SELECT is still the list of rows its result schema promises;
        a marker line after it says how many rows matched.
        """
        if self.is_error:
            return f"Error: {self.error}"
        text = json.dumps(self.result, ensure_ascii=False)
        if self.total_rows is not None and isinstance(self.result, list):
            text += f"\n[result truncated: {len(self.result)} of {self.total_rows} rows shown; narrow the query to see the rest]"
        return text


def execute_tool(db: TrajectoryDatabase, spec: ToolSpec, arguments: dict[str, JsonValue]) -> ExecOutcome:
    """Run ``spec``'s statement with ``arguments``; never raises for a bad call."""
    if spec.sql is None:
        return _error(f"tool {spec.name!r} has no SQL statement")
    known = db.tools.get(spec.name)
    if known is None or known.sql != spec.sql:
        # Replays use db.tools; running another statement would fork history.
        return _error(f"tool {spec.name!r} is not one of this database's tools")
    try:
        params = bind_arguments(spec, arguments, max_value_bytes=db.limits.max_value_bytes)
        if spec.sql.kind is SqlKind.SELECT:
            return _select(db, spec, params)
        return _write(db, spec, params, arguments)
    except (ToolArgumentError, ExecutionLimitError) as error:
        return _error(str(error))
    except sqlite3.Error as error:
        return _error(f"SQL error: {error}")


def _select(db: TrajectoryDatabase, spec: ToolSpec, params: dict) -> ExecOutcome:
    """Rows as a list of objects; past the row cap, the first rows (and the count of all)."""
    found = db.select(spec.sql, params)  # type: ignore[arg-type]  # checked by the caller
    rows = row_objects(found.columns, found.rows)
    return ExecOutcome(result=rows, total_rows=found.total if found.total > len(rows) else None)


def _write(db: TrajectoryDatabase, spec: ToolSpec, params: dict, arguments: dict[str, JsonValue]) -> ExecOutcome:
    write = SqlWrite(tool=spec.name, arguments=arguments)
    done = db.write(spec.sql, params, write)  # type: ignore[arg-type]  # checked by the caller
    result: dict[str, JsonValue] = {"rows_affected": done.rows_affected, "last_row_id": json_value(done.last_row_id)}
    if done.columns:
        result["returning"] = row_objects(done.columns, done.returned)  # type: ignore[assignment]
    return ExecOutcome(result=result, write=write if done.changed else None)


def _error(message: str) -> ExecOutcome:
    return ExecOutcome(is_error=True, error=one_line(message))
