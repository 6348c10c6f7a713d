"""Copies of a thread under a new thread id: whole (``copy_thread``) or up to a checkpoint (a fork).

Rows are copied as they are stored (patches, markers and pointers keep
working because every base they name is copied with them), so a copy costs
row inserts, not a decode of the thread. A copy up to a checkpoint leaves
out that checkpoint's own writes: they are the step the source took from
it, which the copy takes afresh. The copy of a branched thread's line holds
that line's values only, not the other branches'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dialogforge.checkpoints.encoding import decode
from dialogforge.checkpoints.sqlite import branches
from dialogforge.checkpoints.sqlite.schema import CHANNEL, PATCH, REF, THREAD, blob_key

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
    branches.copy(saver, source, target)


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
    if _is_one_line(saver, source):
        _copy_values_up_to(saver, source, target, ns, row[0])
    else:
        _copy_values_of(saver, source, target, ns, [raw_id for raw_id, _ in chain])


def _is_one_line(saver: LinearSqliteSaver, tid: int) -> bool:
    """No branch and no value stored under a key of its own: every value is keyed by its version."""
    return tid not in branches.branched_threads(saver) and saver.conn.execute(
        "SELECT 1 FROM cp_blobs WHERE thread = ? AND version < 0 LIMIT 1", (tid,)
    ).fetchone() is None


def _copy_values_up_to(saver: LinearSqliteSaver, source: int, target: int, ns: str, raw_point: Any) -> None:
    """Every version up to the fork point's: on one line, exactly its ancestors' values and their bases."""
    body, _ = saver.values.body(source, ns, raw_point)
    for channel, version in body["c"]["channel_versions"].items():
        cid = saver.names.id(CHANNEL, channel, create=False)
        if cid is not None:
            saver.conn.execute(
                "INSERT INTO cp_blobs (thread, version, channel, kind, base, data)"
                " SELECT ?, version, channel, kind, base, data FROM cp_blobs"
                " WHERE thread = ? AND channel = ? AND version <= ?",
                (target, source, cid, version),
            )


def _copy_values_of(saver: LinearSqliteSaver, source: int, target: int, ns: str, chain: list[Any]) -> None:
    """The values the chain's checkpoints and writes name, and the bases of their patches (other
    lines of a branched thread re-use the same versions for other values: those stay behind)."""
    wanted: set[tuple[int, Any]] = set()
    for raw_id in reversed(chain):  # oldest first, so each body patch finds its base in the memo
        body, _ = saver.values.body(source, ns, raw_id)
        for channel in body["c"]["channel_versions"]:
            cid = saver.names.id(CHANNEL, channel, create=False)
            if cid is not None:
                wanted.add((cid, blob_key(body, channel)))
    for raw_id in chain[1:]:
        for (data,) in saver.conn.execute(
            "SELECT entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ?", (source, ns, raw_id)
        ):
            wanted.update((cid, base) for _, cid, kind, base, _ in decode(saver.serde, data) if kind in (PATCH, REF))
    queue = list(wanted)
    while queue:
        cid, key = queue.pop()
        found = saver.conn.execute(
            "SELECT kind, base FROM cp_blobs WHERE thread = ? AND version = ? AND channel = ?", (source, key, cid)
        ).fetchone()
        if found is not None and found[0] == PATCH and (cid, found[1]) not in wanted:
            wanted.add((cid, found[1]))
            queue.append((cid, found[1]))
    saver.conn.executemany(
        "INSERT INTO cp_blobs (thread, version, channel, kind, base, data)"
        " SELECT ?, version, channel, kind, base, data FROM cp_blobs WHERE thread = ? AND version = ? AND channel = ?",
        [(target, source, key, cid) for cid, key in wanted],
    )


def fresh_thread(saver: LinearSqliteSaver, thread_id: str) -> int:
    """The id of a thread that has no checkpoints yet (refused otherwise), its caches cleared."""
    target = saver.names.id(THREAD, thread_id, create=True)
    exists = saver.conn.execute("SELECT 1 FROM cp_checkpoints WHERE thread = ? LIMIT 1", (target,)).fetchone()
    if exists:
        raise ValueError(f"thread {thread_id!r} already has checkpoints")
    saver.forget(target, thread_id)
    return target
