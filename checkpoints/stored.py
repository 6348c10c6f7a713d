"""A thread's checkpoints and writes as both stores hand them to ``history``.

The SQLite saver (``dialogforge.checkpoints.sqlite``) and the Postgres
thread saver (``dialogforge.checkpoints.postgres_threads``) read their own
rows; these two records are what they share, so history reads either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredCheckpoint:
    """One checkpoint row, decoded, without channel values (for history and copies)."""

    checkpoint_id: str
    parent_id: str | None
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class StoredWrite:
    checkpoint_id: str
    task_id: str
    task_path: str
    idx: int
    channel: str
    value: Any
