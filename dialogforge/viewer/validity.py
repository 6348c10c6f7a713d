"""Validity verdicts, when ``dialogforge validate`` has stored any.

The ``validations`` table (one row per thread, see
``dialogforge.dataset.validations``) belongs to the validation work; the
viewer reads it with plain SQL, only if it is there, and only the columns
it finds, so the viewer works on databases that were never validated and
does not break when that table gains columns.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

TABLE = "validations"
_WANTED = ("thread_id", "valid", "rules_ok", "failure_rules", "rule_failures", "judge_verdict",
           "judge_reasoning", "judge_tasks", "judge_error", "duplicate_of", "duplicate_kind", "duplicate_similarity")
_JSON_COLUMNS = ("failure_rules", "rule_failures", "judge_tasks")


def _columns(conn: sqlite3.Connection) -> list[str]:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if TABLE not in tables:
        return []
    return [row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")]


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _reasons(row: dict[str, Any]) -> list[str]:
    """One line per reason a trajectory is not training data: rules, judge, duplicate."""
    reasons = [f"rule: {name}" for name in row.get("failure_rules") or []]
    if row.get("judge_verdict") == "invalid":
        reasons.append(f"judge: invalid ({row.get('judge_reasoning') or 'no reasoning'})")
    if row.get("judge_error"):
        reasons.append(f"judge error: {row['judge_error']}")
    if row.get("duplicate_of"):
        reasons.append(f"{row.get('duplicate_kind') or 'near'} duplicate of {row['duplicate_of']}")
    return reasons


def validity_by_thread(conn: sqlite3.Connection) -> dict[str, dict[str, Any]] | None:
    """``{thread_id: {"valid": bool|None, "reasons": [...], "details": {...}}}``, None with no usable table."""
    columns = _columns(conn)
    if "thread_id" not in columns or "valid" not in columns:
        return None
    selected = [c for c in _WANTED if c in columns]
    result: dict[str, dict[str, Any]] = {}
    for values in conn.execute(f"SELECT {', '.join(selected)} FROM {TABLE}"):
        row = {c: (_decoded(v) if c in _JSON_COLUMNS else v) for c, v in zip(selected, values)}
        valid = None if row["valid"] is None else bool(row["valid"])
        result[str(row["thread_id"])] = {"valid": valid, "reasons": _reasons(row), "details": row}
    return result
