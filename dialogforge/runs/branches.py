"""In-place branches as trajectories: one sample per leaf.

LangGraph's own time travel (``invoke(None, past_config)``, or
``update_state(past_config, ...)`` then ``invoke``) grows a thread into a
tree. The thread's id reads its head, its newest checkpoint, as LangGraph
has it; every other leaf is a trajectory of its own, ``THREAD@CHECKPOINT``,
that shares the thread's history up to where it branched off the head's
line: what ``dialogforge fork`` makes in a thread of its own. So ``list``,
``validate``, ``export`` and ``stats`` count each leaf once, each a whole
dialogue, and a dataset gets every ending a user branched to.

A branched thread's rows are derived from its leaves' states, not from the
manifest's counters (which describe the run that wrote the row): the head
keeps the thread's row, refreshed, and is ``pending`` if it is unfinished,
so ``resume`` continues it from the head. Another leaf that never finished
is ``failed``: nothing continues it in place (LangGraph continues a thread
from its head); fork from its last checkpoint to continue it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from dialogforge.checkpoints.manifest import Status, finished_fields
from dialogforge.checkpoints.shards import is_sharded, shard_paths
from dialogforge.checkpoints.store_kinds import store_saver
from dialogforge.records import Mode

if TYPE_CHECKING:
    from dialogforge.graphs.state import DialogueState

SEPARATOR = "@"
UNFINISHED_BRANCH = "unfinished branch: the thread's head is a newer branch (fork from its last checkpoint to go on)"


def leaf_trajectory_id(thread_id: str, checkpoint_id: str) -> str:
    return f"{thread_id}{SEPARATOR}{checkpoint_id}"


def split_trajectory_id(trajectory_id: str) -> tuple[str, str | None]:
    """``THREAD@CHECKPOINT`` -> (thread, checkpoint); a plain thread id -> (thread, None)."""
    thread_id, _, checkpoint_id = trajectory_id.partition(SEPARATOR)
    return thread_id, checkpoint_id or None


def with_branches(db: str | Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (manifest rows), each branched thread's row followed by one row per other leaf.
    One query per store finds the branched threads; only those are read."""
    rows = list(rows)
    by_id = {row["thread_id"]: row for row in rows}
    leaves: dict[str, list[dict[str, Any]]] = {}
    for store in shard_paths(db) if is_sharded(db) else [db]:
        with store_saver(store) as saver:
            for thread_id in sorted(saver.branched_threads() & set(by_id)):
                leaves[thread_id] = _leaf_rows(saver, by_id[thread_id])
    out = []
    for row in rows:
        out.extend(leaves.get(row["thread_id"]) or [row])
    return out


def _leaf_rows(saver: Any, row: dict[str, Any]) -> list[dict[str, Any]]:
    # The graph is loaded only for a branched thread: `dialogforge list` on a dataset without
    # one stays as quick to start as the manifest read it is.
    from dialogforge.graphs.builder import compile_graph
    from dialogforge.graphs.state import DialogueState

    thread_id = row["thread_id"]
    graph = compile_graph(Mode(row.get("mode") or Mode.USER.value), saver)
    stored = {c.checkpoint_id: c for c in saver.thread_checkpoints(thread_id)}
    leaf_ids = saver.leaves(thread_id)
    head_line = set(_line(stored, leaf_ids[0]))
    out = []
    for position, leaf in enumerate(leaf_ids):
        snapshot = graph.get_state({"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": leaf}})
        state = DialogueState.model_validate(snapshot.values) if snapshot.values else None
        if position == 0:
            out.append(_head_row(row, state))
            continue
        branch_point = next(c for c in _line(stored, leaf) if c in head_line)
        leaf_row = {**row, "thread_id": leaf_trajectory_id(thread_id, leaf), "parent_thread_id": thread_id,
                    "fork_checkpoint_id": branch_point, "created_at": str(stored[leaf].checkpoint.get("ts", "")),
                    "started_at": None, "finished_at": None}
        if state is not None and state.stop_reason is not None:
            leaf_row.update(finished_fields(state), finished_at=leaf_row["created_at"])
        else:
            leaf_row.update(status=Status.FAILED.value, stop_reason=None, error=UNFINISHED_BRANCH)
            if state is not None:
                leaf_row.update(_counts(state))
        out.append(leaf_row)
    return out


def _head_row(row: dict[str, Any], state: DialogueState | None) -> dict[str, Any]:
    """The thread's own row, describing its head: unfinished there means ``resume`` continues it."""
    if row["status"] in (Status.PENDING.value, Status.RUNNING.value) or state is None:
        return row
    if state.stop_reason is None:
        return {**row, **_counts(state), "status": Status.PENDING.value, "stop_reason": None, "error": None,
                "finished_at": None}
    return {**row, **finished_fields(state), "finished_at": row.get("finished_at")}


def _counts(state: DialogueState) -> dict[str, Any]:
    fields = finished_fields(state)
    return {k: fields[k] for k in ("user_turns", "messages", "tool_calls", "tool_errors", "tasks", "tokens")}


def _line(stored: dict[str, Any], leaf: str) -> list[str]:
    """``leaf`` and its ancestors, newest first (bounded: a corrupted loop ends the walk)."""
    line, at, seen = [], leaf, set()
    while at is not None and at in stored and at not in seen:
        seen.add(at)
        line.append(at)
        at = stored[at].parent_id
    return line
