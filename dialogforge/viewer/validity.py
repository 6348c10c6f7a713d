"""Validity verdicts, when ``dialogforge validate`` has stored any.

The ``validations`` table belongs to the validation work; the viewer only
reads it, and only if it is there. Its exact columns are not ours to fix,
so we read what we recognise: a ``thread_id`` column, and a verdict in a
``valid`` (truthy) column or a ``verdict``/``judgment``/``status`` text
column; a thread with several rows (rule checks, judge) is invalid if any
row says so. An unrecognised table shows as "no validity", never an error.
"""

from __future__ import annotations

import sqlite3
from typing import Any

TABLE = "validations"
_VERDICT_TEXT_COLUMNS = ("verdict", "judgment", "status")
_REASON_COLUMNS = ("reason", "reasons", "failure", "failures", "detail", "details")
_VALID_WORDS = {"valid", "pass", "passed", "ok", "true", "1"}


def _columns(conn: sqlite3.Connection) -> list[str]:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if TABLE not in tables:
        return []
    return [row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")]


def _is_valid(row: dict[str, Any]) -> bool:
    if "valid" in row:
        value = row["valid"]
        return str(value).strip().lower() in _VALID_WORDS if isinstance(value, str) else bool(value)
    for column in _VERDICT_TEXT_COLUMNS:
        if column in row:
            return str(row[column]).strip().lower() in _VALID_WORDS
    return False


def validity_by_thread(conn: sqlite3.Connection) -> dict[str, dict[str, Any]] | None:
    """``{thread_id: {"valid": bool, "reasons": [...]}}``, or None when there is no usable table."""
    columns = _columns(conn)
    verdict_columns = [c for c in ("valid", *_VERDICT_TEXT_COLUMNS) if c in columns]
    if "thread_id" not in columns or not verdict_columns:
        return None
    wanted = ["thread_id", verdict_columns[0], *[c for c in _REASON_COLUMNS if c in columns]]
    result: dict[str, dict[str, Any]] = {}
    cursor = conn.execute(f"SELECT {', '.join(wanted)} FROM {TABLE}")
    for values in cursor:
        row = dict(zip(wanted, values))
        entry = result.setdefault(str(row["thread_id"]), {"valid": True, "reasons": []})
        if not _is_valid(row):
            entry["valid"] = False
            entry["reasons"].extend(str(row[c]) for c in _REASON_COLUMNS if row.get(c))
    return result
