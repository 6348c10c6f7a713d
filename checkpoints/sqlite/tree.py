"""The parent links of a thread's checkpoints: a checkpoint's ancestors, the thread's latest one.

A checkpoint's state is rebuilt from its ancestors (body patches, delta
channel writes), so walking up the parent links is the one query every
reader shares. The walk is a recursive CTE, bounded, and stops if
corrupted rows make it loop.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator

from dialogforge.checkpoints.encoding import pack_id
from dialogforge.checkpoints.sqlite.schema import MAX_WALK

CHAIN_SQL = (
    "WITH RECURSIVE chain(id, parent, snaps, depth) AS ("
    " SELECT id, parent, snaps, 0 FROM cp_checkpoints WHERE thread = :t AND ns = :ns AND id = :target"
    " UNION ALL"
    " SELECT c.id, c.parent, c.snaps, chain.depth + 1 FROM chain CROSS JOIN cp_checkpoints c"
    " ON c.thread = :t AND c.ns = :ns AND c.id = chain.parent WHERE chain.depth < :limit)"
)


class Tree:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def ancestors(self, tid: int, ns: str, raw_target: Any) -> Iterator[tuple[Any, Any, str | None, int]]:
        """(id, parent, snaps, depth) from the target up to the root; stops if a chain loops."""
        cursor = self.conn.execute(
            CHAIN_SQL + " SELECT id, parent, snaps, depth FROM chain",
            {"t": tid, "ns": ns, "target": raw_target, "limit": MAX_WALK},
        )
        seen: set = set()
        try:
            for raw_id, raw_parent, snaps, depth in cursor:
                if raw_id in seen:
                    return
                seen.add(raw_id)
                yield raw_id, raw_parent, snaps, depth
        finally:
            cursor.close()

    def latest(self, tid: int, ns: str) -> Any:
        """The newest checkpoint's raw id (ids are time-ordered), or None."""
        row = self.conn.execute(
            "SELECT id FROM cp_checkpoints WHERE thread = ? AND ns = ? ORDER BY id DESC LIMIT 1", (tid, ns)
        ).fetchone()
        return row[0] if row else None

    def row(self, tid: int, ns: str, checkpoint_id: str | None) -> tuple | None:
        """(id, parent) of a checkpoint, or of the latest one."""
        if checkpoint_id:
            return self.conn.execute(
                "SELECT id, parent FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?",
                (tid, ns, pack_id(checkpoint_id)),
            ).fetchone()
        return self.conn.execute(
            "SELECT id, parent FROM cp_checkpoints WHERE thread = ? AND ns = ? ORDER BY id DESC LIMIT 1", (tid, ns)
        ).fetchone()
