"""A database-backed domain: a SQLite file plus SQL tools, loaded from files.

Loading validates every tool template once, so nothing downstream runs a
statement that was not checked; a domain with one bad tool is refused
whole. The domain also gives the task proposer what the paper conditions
tasks on: the schema and a limited view of the rows.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from jsonschema import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from dialogforge.sqltools.connect import DbLike, open_readonly, quote_ident, reading, schema_script, user_tables
from dialogforge.sqltools.errors import SqlDomainError, one_line
from dialogforge.sqltools.rows import column_names, row_objects
from dialogforge.sqltools.templates import scratch_schema, validate_tool
from dialogforge.sqltools.world import ExecLimits, TrajectoryDatabase
from dialogforge.sqltools.writes import SqlWrite
from dialogforge.records import ToolSpec


class SqlDomain(BaseModel):
    """A source database and the validated tools that run over it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    db_path: Path
    schema_sql: str
    tools: list[ToolSpec]

    def tool(self, name: str) -> ToolSpec:
        for spec in self.tools:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def validate(self, spec: ToolSpec) -> None:
        """Check a new or refined tool (e.g. from the synthesizer) against this schema."""
        validate_tool(spec, schema=self.schema_sql)

    def open_trajectory(
        self,
        workdir: str | os.PathLike[str],
        key: str,
        write_log: Sequence[SqlWrite],
        *,
        tools: Sequence[ToolSpec] | None = None,
        limits: ExecLimits | None = None,
    ) -> TrajectoryDatabase:
        """``TrajectoryDatabase.open`` on this domain's database and tools."""
        return TrajectoryDatabase.open(
            self.db_path, workdir, key, write_log, tools=tools if tools is not None else self.tools, limits=limits
        )


def load_sql_domain(
    db_path: str | os.PathLike[str], tools_path: str | os.PathLike[str], *, name: str | None = None
) -> SqlDomain:
    """Load and validate a domain; ``SqlDomainError``/``SqlTemplateError`` refuse it."""
    db_file, tools_file = Path(db_path), Path(tools_path)
    conn = open_readonly(db_file)
    try:
        schema_sql = schema_script(conn)
    finally:
        conn.close()
    if not schema_sql:
        raise SqlDomainError(f"database has no tables: {db_file}")
    tools = _read_tools(tools_file)
    scratch = scratch_schema(schema_sql)
    try:
        for spec in tools:
            validate_tool(spec, schema=scratch)
    finally:
        scratch.close()
    return SqlDomain(name=name or db_file.stem, db_path=db_file.resolve(), schema_sql=schema_sql, tools=tools)


def _read_tools(path: Path) -> list[ToolSpec]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SqlDomainError(f"cannot read tools file {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise SqlDomainError(f"tools file {path} is not JSON: {error}") from error
    if not isinstance(raw, list) or not raw:
        raise SqlDomainError(f"tools file {path} must hold a non-empty JSON list of tool specs")
    tools = [_parse_tool(path, index, item) for index, item in enumerate(raw)]
    names = [spec.name for spec in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SqlDomainError(f"tools file {path} defines {duplicates[0]!r} more than once")
    return tools


def _parse_tool(path: Path, index: int, item: object) -> ToolSpec:
    try:
        spec = ToolSpec.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SqlDomainError(one_line(f"{path.name}: tool #{index}: {where}: {first['msg']}")) from error
    if spec.sql is None:
        raise SqlDomainError(f"{path.name}: tool {spec.name!r} has no 'sql' binding")
    try:
        validator_for(spec.result_schema).check_schema(spec.result_schema)
    except SchemaError as error:
        raise SqlDomainError(one_line(f"{path.name}: tool {spec.name!r}: result_schema is invalid: {error.message}")) from error
    return spec


def schema_summary(db: DbLike) -> str:
    """The domain's CREATE statements, for prompts (internal tables left out)."""
    with reading(db) as conn:
        return schema_script(conn)


def sample_rows(db: DbLike, per_table: int = 3, *, seed: int | None = None) -> dict[str, list[dict[str, JsonValue]]]:
    """A limited view of each table's rows, so proposed tasks name real entities.

    Without a seed, the first rows; with one, a reproducible random sample, so
    that trajectories with different seeds see different parts of the data.
    """
    with reading(db) as conn:
        return {table: _table_sample(conn, table, per_table, seed) for table in user_tables(conn)}


def _table_sample(conn: sqlite3.Connection, table: str, per_table: int, seed: int | None) -> list[dict[str, JsonValue]]:
    name = quote_ident(table)
    if seed is None:
        cursor = conn.execute(f"SELECT * FROM {name} LIMIT ?", (per_table,))
        return row_objects(column_names(cursor.description), cursor.fetchall())
    count = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    offsets = sorted(random.Random(f"{seed}:{table}").sample(range(count), min(per_table, count)))
    rows = []
    columns: list[str] = []
    for offset in offsets:
        cursor = conn.execute(f"SELECT * FROM {name} LIMIT 1 OFFSET ?", (offset,))
        columns = column_names(cursor.description)
        rows.extend(cursor.fetchall())
    return row_objects(columns, rows)
