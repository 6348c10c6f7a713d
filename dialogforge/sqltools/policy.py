"""What a statement of each declared kind may do, as a sqlite3 authorizer.

SQLite calls the authorizer for every action while it compiles a statement:
each table and column read, each row written, each function called, each
PRAGMA, ATTACH or transaction. Allowing only what a kind needs (an allowlist,
not a denylist) catches what a textual check misses: ``SELECT
load_extension(...)``, DML behind a CTE, eponymous virtual tables such as
``pragma_table_info``. The same policy guards validation (on a scratch copy
of the schema) and every real execution.
"""

from __future__ import annotations

import sqlite3

from dialogforge.records import SqlKind

_ACTION_NAMES = {
    sqlite3.SQLITE_CREATE_INDEX: "CREATE INDEX",
    sqlite3.SQLITE_CREATE_TABLE: "CREATE TABLE",
    sqlite3.SQLITE_CREATE_TEMP_INDEX: "CREATE TEMP INDEX",
    sqlite3.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER",
    sqlite3.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
    sqlite3.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER",
    sqlite3.SQLITE_CREATE_VIEW: "CREATE VIEW",
    sqlite3.SQLITE_DELETE: "DELETE",
    sqlite3.SQLITE_DROP_INDEX: "DROP INDEX",
    sqlite3.SQLITE_DROP_TABLE: "DROP TABLE",
    sqlite3.SQLITE_DROP_TEMP_INDEX: "DROP TEMP INDEX",
    sqlite3.SQLITE_DROP_TEMP_TABLE: "DROP TEMP TABLE",
    sqlite3.SQLITE_DROP_TEMP_TRIGGER: "DROP TEMP TRIGGER",
    sqlite3.SQLITE_DROP_TEMP_VIEW: "DROP TEMP VIEW",
    sqlite3.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
    sqlite3.SQLITE_DROP_VIEW: "DROP VIEW",
    sqlite3.SQLITE_INSERT: "INSERT",
    sqlite3.SQLITE_PRAGMA: "PRAGMA",
    sqlite3.SQLITE_READ: "READ",
    sqlite3.SQLITE_SELECT: "SELECT",
    sqlite3.SQLITE_TRANSACTION: "transaction control",
    sqlite3.SQLITE_UPDATE: "UPDATE",
    sqlite3.SQLITE_ATTACH: "ATTACH",
    sqlite3.SQLITE_DETACH: "DETACH",
    sqlite3.SQLITE_ALTER_TABLE: "ALTER TABLE",
    sqlite3.SQLITE_REINDEX: "REINDEX",
    sqlite3.SQLITE_ANALYZE: "ANALYZE",
    sqlite3.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    sqlite3.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
    sqlite3.SQLITE_FUNCTION: "function call",
    sqlite3.SQLITE_SAVEPOINT: "SAVEPOINT",
    sqlite3.SQLITE_RECURSIVE: "recursive CTE",
}

# Row writes each kind may perform itself. INSERT may update: an upsert
# (INSERT ... ON CONFLICT DO UPDATE) compiles to both.
KIND_WRITES: dict[SqlKind, frozenset[int]] = {
    SqlKind.SELECT: frozenset(),
    SqlKind.INSERT: frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE}),
    SqlKind.UPDATE: frozenset({sqlite3.SQLITE_UPDATE}),
    SqlKind.DELETE: frozenset({sqlite3.SQLITE_DELETE}),
}
KIND_ACTION = {
    SqlKind.INSERT: sqlite3.SQLITE_INSERT,
    SqlKind.UPDATE: sqlite3.SQLITE_UPDATE,
    SqlKind.DELETE: sqlite3.SQLITE_DELETE,
}
_ROW_WRITES = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})

# Built-in functions that only compute on their arguments. Anything else
# (load_extension, fts3_tokenizer, sqlite_* introspection, readfile/writefile
# where an extension provides them, zeroblob/randomblob memory bombs) is denied.
SAFE_FUNCTIONS = frozenset(
    """
    abs char coalesce concat concat_ws format glob hex ifnull iif instr length
    like likelihood likely lower ltrim max min nullif octet_length printf quote
    random replace round rtrim sign soundex substr substring trim typeof unhex
    unicode unlikely upper changes total_changes last_insert_rowid
    avg count group_concat string_agg sum total
    row_number rank dense_rank percent_rank cume_dist ntile lag lead
    first_value last_value nth_value
    date time datetime julianday unixepoch strftime timediff
    current_date current_time current_timestamp
    json json_array json_array_length json_error_position json_extract
    json_insert json_object json_patch json_pretty json_remove json_replace
    json_set json_type json_valid json_quote json_group_array json_group_object
    -> ->>
    acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp
    floor ln log log10 log2 mod pi pow power radians sin sinh sqrt tan tanh trunc
    """.split()
)

# Functions whose value depends on the clock, chance or connection history.
# A write must replay to the same rows (see ``world``), so writes may not
# call them.
NONDETERMINISTIC = frozenset(
    """
    random changes total_changes last_insert_rowid
    current_date current_time current_timestamp
    """.split()
)
CLOCK_FUNCTIONS = frozenset({"date", "time", "datetime", "julianday", "unixepoch", "strftime"})


class StatementPolicy:
    """An authorizer callback for one declared kind over a known schema.

    ``tables`` are the user tables and views (lower-case) a statement may
    touch; ``triggers`` are the schema's own triggers, whose bodies the
    domain author wrote and which may write wherever the schema says.
    """

    def __init__(self, kind: SqlKind, tables: frozenset[str], triggers: frozenset[str]):
        self.kind = kind
        self.tables = tables
        self.triggers = triggers
        self.denied: list[str] = []
        self.own_writes: set[int] = set()

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        problem = self._problem(action, arg1, arg2, db, source)
        if problem is None:
            return sqlite3.SQLITE_OK
        self.denied.append(problem)
        return sqlite3.SQLITE_DENY

    def _problem(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> str | None:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return None
        if action == sqlite3.SQLITE_FUNCTION:
            return self._function_problem((arg2 or "").lower())
        if db not in (None, "main"):
            return f"touches database {db!r}"
        if action == sqlite3.SQLITE_READ:
            return None if _known(arg1, self.tables) else f"reads {arg1!r}, which is not a table of the domain"
        if action in _ROW_WRITES:
            return self._write_problem(action, arg1, source)
        return f"uses {_ACTION_NAMES.get(action, f'action {action}')}"

    def _function_problem(self, name: str) -> str | None:
        if name not in SAFE_FUNCTIONS:
            return f"calls function {name}(), which is not allowed"
        if self.kind is not SqlKind.SELECT and name in NONDETERMINISTIC:
            return f"calls {name}() in a write of kind {self.kind}; writes must replay identically"
        return None

    def _write_problem(self, action: int, table: str | None, source: str | None) -> str | None:
        verb = _ACTION_NAMES[action]
        if not _known(table, self.tables):
            return f"writes ({verb}) to {table!r}, which is not a table of the domain"
        if source is not None and source.lower() in self.triggers:
            return None
        if action not in KIND_WRITES[self.kind]:
            return f"performs {verb}, which a statement of kind {self.kind} may not"
        self.own_writes.add(action)
        return None

    def kind_problem(self) -> str | None:
        """After compiling: a DML kind must really perform its own write."""
        wanted = KIND_ACTION.get(self.kind)
        if wanted is not None and wanted not in self.own_writes:
            return f"declared {self.kind} but the statement performs no {self.kind}"
        return None


def _known(table: str | None, tables: frozenset[str]) -> bool:
    return table is not None and table.lower() in tables
