"""Branches inside a thread: LangGraph's time travel (replay, ``update_state`` on a past checkpoint).

A thread is a tree of checkpoints. Almost always it is one line, and then
nothing here costs anything: a branch is noticed when a checkpoint is stored
on a parent that is not the thread's latest checkpoint and already has a
child (or as a second root), and only then is it recorded in
``cp_branches`` (created with the first one). Readers ask that table which
threads have branches, so listing a dataset stays one query however long
its trajectories are, and only a branched thread's checkpoints are walked
to find its leaves.

The thread's head is its newest checkpoint, as LangGraph has it; each leaf
is the end of one line (one trajectory).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dialogforge.checkpoints.encoding import pack_id, unpack_id
from dialogforge.checkpoints.sqlite.schema import BRANCHES_SCHEMA, BRANCHES_TABLE

if TYPE_CHECKING:
    from dialogforge.checkpoints.sqlite.saver import LinearSqliteSaver


def note_if_branch(saver: LinearSqliteSaver, tid: int, ns: str, raw_id: Any, parent_id: str | None) -> bool:
    """Record ``raw_id`` in ``cp_branches`` if storing it starts a second line in its thread;
    whether the thread has branches (then its new values take keys of their own: see ``steps``)."""
    latest = saver.tree.latest(tid, ns)
    raw_parent = pack_id(parent_id) if parent_id else None
    if latest is None or raw_parent == latest:
        return is_branched(saver, tid)  # the line grows: the usual step
    if raw_parent is not None and saver.conn.execute(
        "SELECT 1 FROM cp_checkpoints WHERE thread = ? AND ns = ? AND parent = ? LIMIT 1", (tid, ns, raw_parent)
    ).fetchone() is None:
        return is_branched(saver, tid)  # an older leaf continued: still one line per leaf
    saver.conn.execute(BRANCHES_SCHEMA)
    saver.conn.execute(f"INSERT OR IGNORE INTO {BRANCHES_TABLE} (thread, ns, id) VALUES (?, ?, ?)", (tid, ns, raw_id))
    saver.branched[tid] = True
    return True


def is_branched(saver: LinearSqliteSaver, tid: int) -> bool:
    found = saver.branched.get(tid)
    if found is None:
        found = saver.branched[tid] = has_table(saver) and saver.conn.execute(
            f"SELECT 1 FROM {BRANCHES_TABLE} WHERE thread = ? LIMIT 1", (tid,)
        ).fetchone() is not None
    return found


def has_table(saver: LinearSqliteSaver) -> bool:
    return saver.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (BRANCHES_TABLE,)
    ).fetchone() is not None


def branched_threads(saver: LinearSqliteSaver, ns: str = "") -> set[int]:
    """Ids of the threads that have a branch in ``ns``."""
    if not has_table(saver):
        return set()
    return {row[0] for row in saver.conn.execute(f"SELECT DISTINCT thread FROM {BRANCHES_TABLE} WHERE ns = ?", (ns,))}


def leaves(saver: LinearSqliteSaver, tid: int, ns: str = "") -> list[str]:
    """The checkpoints nothing was stored on, newest (the head) first."""
    rows = saver.conn.execute(
        "SELECT id, parent FROM cp_checkpoints WHERE thread = ? AND ns = ? ORDER BY id DESC", (tid, ns)
    ).fetchall()
    parents = {parent for _, parent in rows if parent is not None}
    return [unpack_id(raw_id) for raw_id, _ in rows if raw_id not in parents]


def delete(saver: LinearSqliteSaver, tid: int) -> None:
    if has_table(saver):
        saver.conn.execute(f"DELETE FROM {BRANCHES_TABLE} WHERE thread = ?", (tid,))


def copy(saver: LinearSqliteSaver, source: int, target: int) -> None:
    if has_table(saver):
        saver.conn.execute(
            f"INSERT INTO {BRANCHES_TABLE} (thread, ns, id) SELECT ?, ns, id FROM {BRANCHES_TABLE} WHERE thread = ?",
            (target, source),
        )
