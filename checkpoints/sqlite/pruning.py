"""Keeping part of a thread: ``prune`` (each namespace's latest checkpoint) and ``delete_for_runs``.

Stored rows lean on their ancestors (a body patched on its parent's, a value
on an earlier version, a message list rebuilt from the ancestors' writes),
so dropping rows in place would break the ones kept. Instead the kept
checkpoints are written again, oldest first, through the ordinary ``put``
path under a scratch thread id (each whole where its parent is gone, else
as a difference again), with their values and pending writes as a reader
saw them before; then the old rows go and the scratch rows take the
thread's id. One transaction: a kill leaves the thread as it was or done.
Each kept checkpoint's message list is rebuilt whole, so ``delete_for_runs``
over a long thread costs its length squared: a maintenance pass.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Iterable

from dialogforge.checkpoints.encoding import unpack_id
from dialogforge.checkpoints.sqlite import branches, steps
from dialogforge.checkpoints.sqlite.schema import THREAD
from dialogforge.compat.langgraph import DeltaSnapshot

if TYPE_CHECKING:
    from dialogforge.checkpoints.sqlite.saver import LinearSqliteSaver

_THREAD_TABLES = ("cp_checkpoints", "cp_blobs", "cp_writes")


def keep_latest(saver: LinearSqliteSaver, thread_id: str) -> None:
    """Only the newest checkpoint of each namespace stays, with its writes."""
    tid = saver.names.id(THREAD, thread_id, create=False)
    if tid is None:
        return
    rows = saver.conn.execute("SELECT ns, max(id) FROM cp_checkpoints WHERE thread = ? GROUP BY ns", (tid,)).fetchall()
    rewrite(saver, thread_id, tid, {(ns, raw_id) for ns, raw_id in rows})


def runs_checkpoints(saver: LinearSqliteSaver, run_ids: Iterable[str]) -> dict[int, set[tuple[str, Any]]]:
    """The checkpoints whose metadata names one of the runs, by thread (every body is read)."""
    wanted = set(run_ids)
    found: dict[int, set[tuple[str, Any]]] = {}
    if not wanted:
        return found
    for tid, ns, raw_id in saver.conn.execute("SELECT thread, ns, id FROM cp_checkpoints ORDER BY thread, ns, id").fetchall():
        body, _ = saver.values.body(tid, ns, raw_id)
        if body["m"].get("run_id") in wanted:
            found.setdefault(tid, set()).add((ns, raw_id))
    return found


def drop(saver: LinearSqliteSaver, tid: int, dropped: set[tuple[str, Any]]) -> None:
    """Every checkpoint of the thread but ``dropped`` stays."""
    rows = saver.conn.execute("SELECT ns, id FROM cp_checkpoints WHERE thread = ?", (tid,)).fetchall()
    rewrite(saver, saver.names.name(tid), tid, {(ns, raw_id) for ns, raw_id in rows} - dropped)


def rewrite(saver: LinearSqliteSaver, thread_id: str, tid: int, kept: set[tuple[str, Any]]) -> None:
    """The thread holding only ``kept`` checkpoints (and their writes), as they read before."""
    scratch_id = f"{thread_id}\x00rewrite-{uuid.uuid4()}"
    scratch = saver.names.id(THREAD, scratch_id, create=True)
    for ns in sorted({ns for ns, _ in kept}):
        ids = sorted(raw_id for k_ns, raw_id in kept if k_ns == ns)
        for raw_id in ids:
            _put_again(saver, thread_id, tid, scratch_id, scratch, ns, raw_id)
    for table in _THREAD_TABLES:
        saver.conn.execute(f"DELETE FROM {table} WHERE thread = ?", (tid,))
        saver.conn.execute(f"UPDATE {table} SET thread = ? WHERE thread = ?", (tid, scratch))
    branches.delete(saver, tid)
    if branches.has_table(saver):
        saver.conn.execute("UPDATE cp_branches SET thread = ? WHERE thread = ?", (tid, scratch))
    saver.conn.execute("DELETE FROM cp_names WHERE id = ?", (scratch,))
    saver.forget(tid, thread_id)
    saver.forget(scratch, scratch_id)
    saver.names.clear()


def _put_again(saver: LinearSqliteSaver, thread_id: str, tid: int, scratch_id: str, scratch: int, ns: str, raw_id: Any) -> None:
    raw_parent = saver.conn.execute(
        "SELECT parent FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?", (tid, ns, raw_id)
    ).fetchone()[0]
    tup = saver.read_tuple(thread_id, tid, ns, raw_id, raw_parent, cache=False)
    checkpoint = tup.checkpoint
    for channel in saver.deltas.specs:
        if channel in checkpoint["channel_versions"] and not isinstance(checkpoint["channel_values"].get(channel), DeltaSnapshot):
            checkpoint["channel_values"][channel] = DeltaSnapshot(saver.deltas.reader_value(tid, ns, raw_id, channel))
    parent_id = unpack_id(raw_parent)
    key = (scratch_id, ns)
    head = saver.heads.get(key, parent_id)
    config = {"configurable": {"thread_id": scratch_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
    new_head = steps.store_checkpoint(saver, scratch, ns, parent_id, head, checkpoint, dict(tup.metadata),
                                      dict(checkpoint["channel_versions"]), config)
    saver.heads.set(key, new_head)
    by_task: dict[str, list[tuple[str, Any]]] = {}
    paths: dict[str, str] = {}
    for write in saver.writes.of(tid, ns, raw_id):
        by_task.setdefault(write.task_id, []).append((write.channel, write.value))
        paths[write.task_id] = write.path
    for task_id, task_writes in by_task.items():
        steps.store_writes(saver, scratch, ns, checkpoint["id"], new_head, task_writes, task_id, paths[task_id])
