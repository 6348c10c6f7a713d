"""Deterministic CRUD tool drafts from a database schema.

The tool synthesizer needs a starting point that is already executable and
valid: for each table, get_/search_/create_/update_/delete_ tools whose
parameter and result schemas follow the column types. The LLM can then
refine names, descriptions and statements; the drafts alone already make a
usable Tool-Exec domain, and every one passes ``validate_template``.
"""

from __future__ import annotations

import re
import sqlite3
from typing import NamedTuple

from pydantic import JsonValue

from dialogforge.sqltools.connect import DbLike, quote_ident, reading, user_tables
from dialogforge.records import FunctionSpec, SqlBinding, SqlKind, ToolSpec

_CONSTANT = re.compile(
    r"^(NULL|TRUE|FALSE|[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|'(?:[^']|'')*'|[xX]'[0-9A-Fa-f]*')$", re.I
)
_MAX_FILTERS = 8


class Column(NamedTuple):
    name: str
    param: str  # a plain identifier, unique within the table
    json_type: str | None  # None: any type (BLOB or untyped columns)
    not_null: bool
    default: str | None  # a constant SQL literal, if the column has one
    pk: int  # position in the primary key, 0 if not part of it
    auto_id: bool  # INTEGER PRIMARY KEY: SQLite assigns it
    generated: bool  # GENERATED ALWAYS AS: readable, never written


def draft_tools_from_schema(db: DbLike) -> list[ToolSpec]:
    """CRUD drafts for every ordinary table, in schema order."""
    tools: list[ToolSpec] = []
    with reading(db) as conn:
        for table in user_tables(conn):
            tools.extend(_table_tools(table, _columns(conn, table)))
    return tools


def write_result_schema() -> dict[str, JsonValue]:
    """What every INSERT/UPDATE/DELETE tool returns."""
    return {
        "type": "object",
        "properties": {"rows_affected": {"type": "integer"}, "last_row_id": {"type": ["integer", "null"]}},
        "required": ["rows_affected", "last_row_id"],
    }


def rows_result_schema(columns: list[Column]) -> dict[str, JsonValue]:
    """What a SELECT tool returns: a list of row objects, one key per column."""
    properties: dict[str, JsonValue] = {}
    for column in columns:
        if column.json_type is None:
            properties[column.name] = {}
        else:
            properties[column.name] = {"type": column.json_type if column.not_null else [column.json_type, "null"]}
    return {
        "type": "array",
        "items": {"type": "object", "properties": properties, "required": [c.name for c in columns]},
    }


def _columns(conn: sqlite3.Connection, table: str) -> list[Column]:
    rows = conn.execute(
        'SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)', (table,)
    ).fetchall()
    create_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    rowid_table = "WITHOUT ROWID" not in " ".join(create_sql.upper().split())
    single_pk = sum(1 for row in rows if row[4]) == 1
    taken: set[str] = set()
    columns = []
    for name, decl, not_null, default, pk, hidden in rows:
        if hidden == 1:  # a virtual table's hidden column
            continue
        constant = default if default is not None and _CONSTANT.match(default.strip("()")) else None
        auto = bool(pk) and single_pk and rowid_table and decl.upper() == "INTEGER"
        # A non-constant default (e.g. CURRENT_TIMESTAMP) would not replay: the caller must supply it.
        required = bool(not_null) or bool(pk) or (default is not None and constant is None)
        param = _param_name(name, taken)
        columns.append(Column(name, param, _json_type(decl), required, constant, pk, auto, hidden in (2, 3)))
    return columns


def _param_name(column: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", column).lower() or "value"
    if base[0].isdigit():
        base = "c_" + base
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _json_type(decl: str) -> str | None:
    """JSON type for SQLite's type-affinity rules, with dates kept as text."""
    d = decl.upper()
    if "INT" in d:
        return "integer"
    if any(k in d for k in ("CHAR", "CLOB", "TEXT", "DATE", "TIME")):
        return "string"
    if not d or "BLOB" in d:
        return None
    return "number"


def _table_tools(table: str, columns: list[Column]) -> list[ToolSpec]:
    entity = _singular(re.sub(r"[^a-z0-9_]", "_", table.lower()).strip("_") or "row")[:50]
    plural = re.sub(r"[^a-z0-9_]", "_", table.lower()).strip("_")[:50] or "rows"
    if plural == entity:
        plural += "_list"
    key = [c for c in sorted(columns, key=lambda c: c.pk) if c.pk]
    words = entity.replace("_", " ")
    tools = [_search(table, plural, words, columns, key)]
    if key:
        tools.append(_get(table, entity, words, columns, key))
    if any(not c.auto_id and not c.generated for c in columns):
        tools.append(_create(table, entity, words, columns))
    if key and any(not c.pk and not c.generated for c in columns):
        tools.append(_update(table, entity, words, columns, key))
    if key:
        tools.append(_delete(table, entity, words, key))
    return tools


def _spec(name: str, description: str, kind: SqlKind, statement: str, properties: dict, required: list[str], result: dict) -> ToolSpec:
    parameters: dict[str, JsonValue] = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return ToolSpec(
        function=FunctionSpec(name=name, description=description, parameters=parameters),
        result_schema=result,
        sql=SqlBinding(kind=kind, statement=statement),
    )


def _prop(column: Column, note: str) -> dict[str, JsonValue]:
    prop: dict[str, JsonValue] = {"description": f"{column.name}{note}"}
    if column.json_type is not None:
        prop["type"] = column.json_type
    return prop


def _where_key(key: list[Column]) -> str:
    return " AND ".join(f"{quote_ident(c.name)} = :{c.param}" for c in key)


def _get(table: str, entity: str, words: str, columns: list[Column], key: list[Column]) -> ToolSpec:
    statement = f"SELECT * FROM {quote_ident(table)} WHERE {_where_key(key)}"
    props = {c.param: _prop(c, "") for c in key}
    description = f"Get the {words} with the given {', '.join(c.name for c in key)}."
    return _spec(f"get_{entity}", description, SqlKind.SELECT, statement, props, [c.param for c in key], rows_result_schema(columns))


def _search(table: str, plural: str, words: str, columns: list[Column], key: list[Column]) -> ToolSpec:
    filters = [c for c in columns if c.json_type is not None][:_MAX_FILTERS]
    clauses = []
    for c in filters:
        op = f"LIKE '%' || :{c.param} || '%'" if c.json_type == "string" else f"= :{c.param}"
        clauses.append(f"(:{c.param} IS NULL OR {quote_ident(c.name)} {op})")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    order = " ORDER BY " + ", ".join(quote_ident(c.name) for c in key) if key else ""
    props = {c.param: _prop(c, " (substring match)" if c.json_type == "string" else "") for c in filters}
    description = f"Search {words} records; every filter is optional and text filters match substrings."
    return _spec(f"search_{plural}", description, SqlKind.SELECT, f"SELECT * FROM {quote_ident(table)}{where}{order}", props, [], rows_result_schema(columns))


def _create(table: str, entity: str, words: str, columns: list[Column]) -> ToolSpec:
    cols = [c for c in columns if not c.auto_id and not c.generated]
    values = [f"coalesce(:{c.param}, {c.default})" if c.default is not None else f":{c.param}" for c in cols]
    statement = f"INSERT INTO {quote_ident(table)} ({', '.join(quote_ident(c.name) for c in cols)}) VALUES ({', '.join(values)})"
    props = {c.param: _prop(c, f" (default {c.default})" if c.default is not None else "") for c in cols}
    required = [c.param for c in cols if c.not_null and c.default is None]
    return _spec(f"create_{entity}", f"Create a new {words}.", SqlKind.INSERT, statement, props, required, write_result_schema())


def _update(table: str, entity: str, words: str, columns: list[Column], key: list[Column]) -> ToolSpec:
    fields = [c for c in columns if not c.pk and not c.generated]
    sets = ", ".join(f"{quote_ident(c.name)} = coalesce(:{c.param}, {quote_ident(c.name)})" for c in fields)
    statement = f"UPDATE {quote_ident(table)} SET {sets} WHERE {_where_key(key)}"
    props = {c.param: _prop(c, "") for c in key} | {c.param: _prop(c, " (omit to keep)") for c in fields}
    description = f"Update fields of the {words} with the given {', '.join(c.name for c in key)}; omitted fields keep their values."
    return _spec(f"update_{entity}", description, SqlKind.UPDATE, statement, props, [c.param for c in key], write_result_schema())


def _delete(table: str, entity: str, words: str, key: list[Column]) -> ToolSpec:
    statement = f"DELETE FROM {quote_ident(table)} WHERE {_where_key(key)}"
    props = {c.param: _prop(c, "") for c in key}
    return _spec(f"delete_{entity}", f"Delete the {words} with the given {', '.join(c.name for c in key)}.", SqlKind.DELETE, statement, props, [c.param for c in key], write_result_schema())


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
