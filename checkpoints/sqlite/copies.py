"""Copies of a thread under a new thread id: whole (``copy_thread``) or up to a checkpoint (a fork).

Rows are copied as they are stored (patches, markers and pointers keep
working because every base they name is copied with them), so a copy costs
row inserts, not a decode of the thread. A copy up to a checkpoint leaves
out that checkpoint's own writes: they are the step the source took from
it, which the copy takes afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dialogforge.checkpoints.sqlite.schema import CHANNEL, THREAD

if TYPE_CHECKING:
    from dialogforge.checkpoints.sqlite.saver import LinearSqliteSaver

_COPY_COLUMNS = {
    "cp_checkpoints": "ns, id, parent, snaps, kind, body",
    "cp_blobs": "version, channel, kind, base, data",
    "cp_writes": "ns, ckpt, task, path, entries",
}


def copy_whole(saver: LinearSqliteSaver, source_thread_id: str, target_thread_id: str) -> None:
    """Every checkpoint, stored value and write of one thread, under a new thread id."""
    source = saver.names.id(THREAD, source_thread_id, create=False)
    if source is None or saver.tree.latest(source, "") is None:
        raise LookupError(f"no thread {source_thread_id!r}")
    target = fresh_thread(saver, target_thread_id)
    for table, columns in _COPY_COLUMNS.items():
        saver.conn.execute(
            f"INSERT INTO {table} (thread, {columns}) SELECT ?, {columns} FROM {table} WHERE thread = ?",
            (target, source),
        )


def copy_prefix(saver: LinearSqliteSaver, source_thread_id: str, target_thread_id: str, checkpoint_id: str,
                ns: str) -> None:
    """The chain of checkpoints ending at ``checkpoint_id``, without that checkpoint's own writes."""
    conn = saver.conn
    source = saver.names.id(THREAD, source_thread_id, create=False)
    row = saver.tree.row(source, ns, checkpoint_id) if source is not None else None
    if row is None:
        raise LookupError(f"no checkpoint {checkpoint_id!r} in thread {source_thread_id!r}")
    target = fresh_thread(saver, target_thread_id)
    chain = [(raw_id, depth) for raw_id, _, _, depth in saver.tree.ancestors(source, ns, row[0])]
    conn.executemany(
        "INSERT INTO cp_checkpoints (thread, ns, id, parent, snaps, kind, body)"
        " SELECT ?, ns, id, parent, snaps, kind, body FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?",
        [(target, source, ns, raw_id) for raw_id, _ in chain],
    )
    conn.executemany(
        "INSERT INTO cp_writes (thread, ns, ckpt, task, path, entries)"
        " SELECT ?, ns, ckpt, task, path, entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ?",
        [(target, source, ns, raw_id) for raw_id, depth in chain if depth >= 1],
    )
    # Stored values: every version up to the fork point's. A thread is a line, so these
    # are exactly its ancestors' values and the bases their patches need.
    body, _ = saver.values.body(source, ns, row[0])
    for channel, version in body["c"]["channel_versions"].items():
        cid = saver.names.id(CHANNEL, channel, create=False)
        if cid is not None:
            conn.execute(
                "INSERT INTO cp_blobs (thread, version, channel, kind, base, data)"
                " SELECT ?, version, channel, kind, base, data FROM cp_blobs"
                " WHERE thread = ? AND channel = ? AND version <= ?",
                (target, source, cid, version),
            )


def fresh_thread(saver: LinearSqliteSaver, thread_id: str) -> int:
    """The id of a thread that has no checkpoints yet (refused otherwise), its caches cleared."""
    target = saver.names.id(THREAD, thread_id, create=True)
    exists = saver.conn.execute("SELECT 1 FROM cp_checkpoints WHERE thread = ? LIMIT 1", (target,)).fetchone()
    if exists:
        raise ValueError(f"thread {thread_id!r} already has checkpoints")
    saver.forget(target, thread_id)
    return target
