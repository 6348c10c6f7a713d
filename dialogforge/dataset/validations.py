"""The ``validations`` table: rule, judge and dedup findings per trajectory, beside the checkpoints.

One row per thread_id, upserted. A row is rewritten only when a finding
changed, so running ``validate`` twice leaves the table byte-for-byte the
same: that is what makes it idempotent and safe to re-run after a resume.

The gate every reader applies (``skip_reason``) lives here too, so export
and statistics cannot disagree on what "valid" lets through. A table
written by an older release lacks the newer columns: ``ValidationStore``
adds them (empty) when ``validate`` runs, and readers derive what an older
row means (``judge_status``).
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
    "judge_verdict": str,  # valid | invalid | null (no verdict)
    "judge_status": str,  # judged | unjudged (asked for, failed: judge_error says why) | not_judged | null (failed the rules)
    "judge_requested": int,  # 1 once a `validate --judge` covered it: from then on validity needs a verdict
    "judge_reasoning": str,
    "judge_tasks": str,  # JSON list of per-task verdicts
    "judge_model": str,
    "judge_fingerprint": str,  # of the state the judge saw
    "judge_error": str,
    "judge_tokens": int,
    "judged_at": str,
    "cut": str,  # JSON: what was cut from a capped trajectory to end it at its last completed task
    "valid": int,  # rules_ok, and judged valid when judging was asked for
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
        missing = {name: kind for name, kind in _COLUMNS.items() if name not in self.db[TABLE].columns_dict}
        if missing:  # a table from an older release
            with self.conn:
                for name, kind in missing.items():
                    self.db[TABLE].add_column(name, kind)

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


JUDGED, UNJUDGED, NOT_JUDGED = "judged", "unjudged", "not_judged"


def judge_status(row: dict[str, Any]) -> str | None:
    """The stored status; for a row an older release wrote, what it means (a judge error: unjudged)."""
    if row.get("judge_requested") is not None:  # written by this release
        return row.get("judge_status")
    if row.get("judge_verdict") is not None:
        return JUDGED
    if not row.get("rules_ok"):
        return None
    return UNJUDGED if row.get("judge_error") else NOT_JUDGED


def skip_reason(row: dict[str, Any] | None, *, include_unjudged: bool = False, keep_duplicates: bool = False) -> str | None:
    """Why a ``--valid-only`` reader leaves a trajectory out (None: it goes in).

    ``unjudged``: judging was asked for and no verdict exists (its call failed),
    admitted only with ``include_unjudged``; ``invalid``: failed the rules or
    judged invalid; ``duplicate``: repeats an earlier admitted one.
    """
    if row is None:
        return "not_validated"
    if judge_status(row) == UNJUDGED:
        if not include_unjudged:
            return "unjudged"
    elif not row.get("valid"):
        return "invalid"
    if row.get("duplicate_of") and not keep_duplicates:
        return "duplicate"
    return None
