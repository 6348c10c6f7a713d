"""Thread copies on PostgreSQL: what ``fork`` needs beyond LangGraph's stock Postgres saver.

The same operations our SQLite saver offers (``dialogforge.checkpoints.sqlite``):
a transaction, whether a thread exists, a copy of a thread's history up to
a checkpoint, and a thread read whole for ``history`` (every branch, and its
leaves: LangGraph's own time travel grows a thread into a tree, which the
stock saver stores as it is, its versions carrying a random suffix). The copy carries the whole ancestor chain with its
writes (the message list, a ``DeltaChannel``, is rebuilt by replaying
them) but not the fork point's own writes (the step the source took from
it; the fork takes its own), and every stored channel value up to the fork
point's versions.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from langgraph.checkpoint.postgres import PostgresSaver

from dialogforge.checkpoints.stored import StoredCheckpoint, StoredWrite
from dialogforge.checkpoints.postgres_manifest import RUNS


class PostgresThreadSaver(PostgresSaver):
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together (the saver's own writes nest as savepoints)."""
        with self.conn.transaction():
            yield

    def thread_exists(self, thread_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM checkpoints WHERE thread_id = %s LIMIT 1", (thread_id,)).fetchone() is not None

    def copy_thread_prefix(self, source: str, target: str, checkpoint_id: str, *, ns: str = "") -> None:
        if self.thread_exists(target):
            raise ValueError(f"thread {target!r} already has checkpoints")
        chain = self._chain(source, ns, checkpoint_id)
        with self.transaction():
            self.conn.execute(
                "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)"
                " SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints"
                " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = ANY(%s)",
                (target, source, ns, chain),
            )
            self.conn.execute(
                "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path)"
                " SELECT %s, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path FROM checkpoint_writes"
                " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = ANY(%s)",
                (target, source, ns, chain[1:]),  # ancestors only: the fork point's writes are the source's next step
            )
            versions = self.conn.execute(
                "SELECT checkpoint->'channel_versions' AS versions FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s"
                " AND checkpoint_id = %s", (source, ns, checkpoint_id),
            ).fetchone()["versions"] or {}
            for channel, version in versions.items():  # versions are zero-padded: text order is version order
                self.conn.execute(
                    "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)"
                    " SELECT %s, checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs"
                    " WHERE thread_id = %s AND checkpoint_ns = %s AND channel = %s AND version <= %s",
                    (target, source, ns, channel, str(version)),
                )

    def _chain(self, thread_id: str, ns: str, checkpoint_id: str) -> list[str]:
        """``checkpoint_id`` and its ancestors, newest first."""
        rows = self.conn.execute(
            "WITH RECURSIVE chain(id, parent) AS ("
            " SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints"
            "  WHERE thread_id = %(t)s AND checkpoint_ns = %(ns)s AND checkpoint_id = %(id)s"
            " UNION ALL SELECT c.checkpoint_id, c.parent_checkpoint_id FROM checkpoints c JOIN chain ON c.checkpoint_id = chain.parent"
            "  WHERE c.thread_id = %(t)s AND c.checkpoint_ns = %(ns)s)"
            " SELECT id FROM chain", {"t": thread_id, "ns": ns, "id": checkpoint_id},
        ).fetchall()
        if not rows:
            raise LookupError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
        return [row["id"] for row in rows]

    def inline_values(self, thread_id: str, checkpoint_id: str, *, ns: str = "") -> dict[str, Any]:
        """The values the stock saver keeps inside a checkpoint row (primitives, delta-snapshot markers),
        not in blobs: a checkpoint written on top of it (a fork point) must carry them too."""
        row = self.conn.execute(
            "SELECT checkpoint->'channel_values' AS inline FROM checkpoints"
            " WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s", (thread_id, ns, checkpoint_id),
        ).fetchone()
        return dict(row["inline"] or {}) if row else {}

    def thread_checkpoints(self, thread_id: str, *, ns: str = "") -> list[StoredCheckpoint]:
        """Every checkpoint of the thread, every branch, oldest first, each with its true parent (``history``)."""
        tuples = list(self.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}))
        return [
            StoredCheckpoint(t.checkpoint["id"], (t.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
                             t.checkpoint, dict(t.metadata))
            for t in reversed(tuples)
        ]

    def branched_threads(self, *, ns: str = "") -> set[str]:
        """The threads with a branch inside them: more leaves than one (a line has one parent less
        than it has checkpoints). One pass over the checkpoint table's keys."""
        rows = self.conn.execute(
            "SELECT thread_id FROM checkpoints WHERE checkpoint_ns = %s GROUP BY thread_id"
            " HAVING count(*) - count(DISTINCT parent_checkpoint_id) > 1", (ns,),
        ).fetchall()
        return {row["thread_id"] for row in rows}

    def leaves(self, thread_id: str, *, ns: str = "") -> list[str]:
        """The ends of the thread's lines, newest (the head) first."""
        rows = self.conn.execute(
            "SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s",
            (thread_id, ns),
        ).fetchall()
        parents = {row["parent_checkpoint_id"] for row in rows}
        return sorted((row["checkpoint_id"] for row in rows if row["checkpoint_id"] not in parents), reverse=True)

    def stored_writes(self, thread_id: str, *, ns: str = "") -> dict[str, list[StoredWrite]]:
        """Every write of the thread, by the checkpoint it was made from (``history``)."""
        rows = self.conn.execute(
            "SELECT checkpoint_id, task_id, task_path, idx, channel, type, blob FROM checkpoint_writes"
            " WHERE thread_id = %s AND checkpoint_ns = %s ORDER BY checkpoint_id, task_id, idx", (thread_id, ns),
        ).fetchall()
        out: dict[str, list[StoredWrite]] = {}
        for r in rows:
            value = self.serde.loads_typed((r["type"], r["blob"]))
            out.setdefault(r["checkpoint_id"], []).append(
                StoredWrite(r["checkpoint_id"], r["task_id"], r["task_path"], r["idx"], r["channel"], value))
        return out

    def insert_manifest_row(self, row: dict[str, Any]) -> None:
        """A fork's manifest row, in the caller's transaction."""
        keys = list(row)
        self.conn.execute(f"INSERT INTO {RUNS} ({', '.join(keys)}) VALUES ({', '.join('%s' for _ in keys)})",
                          [row[k] for k in keys])
