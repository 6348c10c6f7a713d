"""The ``validations`` table: rule, judge and dedup findings per trajectory, beside the checkpoints.

One row per thread_id, upserted. A row is rewritten only when a finding
changed, so running ``validate`` twice leaves the table byte-for-byte the
same: that is what makes it idempotent and safe to re-run after a resume.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from dialogforge.checkpoints.manifest import now
from dialogforge.checkpoints.urls import is_postgres_url
from dialogforge.checkpoints.shards import is_sharded, shard_paths
from dialogforge.checkpoints.sqlite_file import check_db_path, connect

TABLE = "validations"

_COLUMNS = {
    "thread_id": str,
    "fingerprint": str,  # of the state the rules saw
    "rules_ok": int,
    "failure_rules": str,  # JSON list of distinct rule names
    "rule_failures": str,  # JSON list of {rule, detail, message_index}
    "judge_verdict": str,  # valid | invalid | null (not judged)
    "judge_reasoning": str,
    "judge_tasks": str,  # JSON list of per-task verdicts
    "judge_model": str,
    "judge_fingerprint": str,  # of the state the judge saw
    "judge_error": str,
    "judge_tokens": int,
    "judged_at": str,
    "valid": int,  # rules_ok and not judged invalid
    "duplicate_of": str,
    "duplicate_kind": str,  # exact | near
    "duplicate_similarity": float,
    "updated_at": str,
}

JUDGE_FIELDS = ("judge_verdict", "judge_reasoning", "judge_tasks", "judge_model",
                "judge_fingerprint", "judge_error", "judge_tokens", "judged_at")


class ValidationStore:
    def __init__(self, db_path: str | Path):
        self.path = check_db_path(db_path, must_exist=True)
        self.conn = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self.db[TABLE].create(_COLUMNS, pk="thread_id", if_not_exists=True)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ValidationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def all(self) -> dict[str, dict[str, Any]]:
        return {row["thread_id"]: row for row in self.db[TABLE].rows}

    def update(self, thread_id: str, fields: dict[str, Any], current: dict[str, Any] | None) -> bool:
        """Write ``fields`` only if they differ from ``current``; True when something was written."""
        if current is not None and all(current.get(k) == v for k, v in fields.items()):
            return False
        with self.conn:
            self.db[TABLE].upsert({"thread_id": thread_id, **fields, "updated_at": now()}, pk="thread_id")
        if current is not None:
            current.update(fields)
        return True


def read_validations(db_path: str | Path) -> dict[str, dict[str, Any]]:
    """Every stored validation row, without creating anything: readers must not write.
    A Postgres store has none (``validate`` runs on SQLite databases only)."""
    if is_postgres_url(db_path):
        return {}
    if is_sharded(db_path):
        return {k: v for path in shard_paths(db_path) for k, v in read_validations(path).items()}
    conn = connect(check_db_path(db_path, must_exist=True))
    try:
        db = sqlite_utils.Database(conn)
        if TABLE not in db.table_names():
            return {}
        return {row["thread_id"]: row for row in db[TABLE].rows}
    finally:
        conn.close()


def decoded(row: dict[str, Any] | None, column: str) -> Any:
    """A JSON column of a validations row, decoded (None stays None)."""
    if row is None or row.get(column) is None:
        return None
    return json.loads(row[column])
