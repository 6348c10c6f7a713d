"""Opening databases safely and listing what belongs to a domain's schema.

Every module needs the same few things: open a source read-only (so nothing
we do can modify it), put hard limits on a connection that runs model-driven
statements, and tell the domain's own tables apart from SQLite's internals,
virtual-table shadow tables and our own bookkeeping table.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from dialogforge.sqltools.errors import SqlDomainError

DbLike = str | os.PathLike[str] | sqlite3.Connection

INTERNAL_PREFIXES = ("sqlite_", "_dialogforge_")


class SchemaObject(NamedTuple):
    type: str  # table, view, index or trigger
    name: str
    table: str
    sql: str


def is_internal(name: str) -> bool:
    return name.lower().startswith(INTERNAL_PREFIXES)


def quote_ident(name: str) -> str:
    """A double-quoted identifier; only ever applied to names from a schema."""
    return '"' + name.replace('"', '""') + '"'


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection (``mode=ro`` URI): the file cannot change through it."""
    file = Path(path)
    if not file.is_file():
        raise SqlDomainError(f"database not found: {file}")
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        conn.close()
        raise SqlDomainError(f"not a usable SQLite database: {file} ({error})") from error
    return conn


@contextmanager
def reading(db: DbLike) -> Iterator[sqlite3.Connection]:
    """Use a connection as given, or open a path read-only for the block."""
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    conn = open_readonly(db)
    try:
        yield conn
    finally:
        conn.close()


def apply_limits(conn: sqlite3.Connection, max_value_bytes: int) -> None:
    """Hard caps that hold whatever a statement or its arguments try."""
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value_bytes)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 250)
    # One LIKE/GLOB comparison is a single VM step, out of the progress
    # handler's reach; a short pattern bounds its cost instead.
    conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000)
    conn.execute("PRAGMA trusted_schema = OFF")


def _shadow_tables(conn: sqlite3.Connection) -> set[str]:
    """Tables a virtual table (FTS, R-tree) owns; recreating it recreates them."""
    try:
        rows = conn.execute("SELECT name, type FROM pragma_table_list WHERE schema = 'main'").fetchall()
    except sqlite3.OperationalError:  # SQLite before 3.37 has no table_list
        return set()
    return {name for name, kind in rows if kind == "shadow"}


def user_objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    """The domain's schema in creation order, without internal objects."""
    shadows = _shadow_tables(conn)
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    return [
        SchemaObject(*row)
        for row in rows
        if not is_internal(row[1]) and not is_internal(row[2]) and row[2] not in shadows and row[1] not in shadows
    ]


def user_tables(conn: sqlite3.Connection) -> list[str]:
    """Ordinary (non-virtual) tables, whose rows tools read and write."""
    return [
        obj.name
        for obj in user_objects(conn)
        if obj.type == "table" and not obj.sql.upper().startswith("CREATE VIRTUAL")
    ]


def policy_names(conn: sqlite3.Connection) -> tuple[frozenset[str], frozenset[str]]:
    """Lower-cased (tables and views, triggers) for a ``StatementPolicy``."""
    objects = user_objects(conn)
    tables = frozenset(o.name.lower() for o in objects if o.type in ("table", "view"))
    triggers = frozenset(o.name.lower() for o in objects if o.type == "trigger")
    return tables, triggers


def schema_script(conn: sqlite3.Connection) -> str:
    """The CREATE statements that rebuild the domain's schema, in order."""
    return "".join(obj.sql.strip() + ";\n" for obj in user_objects(conn))
