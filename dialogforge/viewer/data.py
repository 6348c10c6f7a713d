"""What the viewer shows, as plain JSON-ready dicts: the data API.

The served page (``server``) and the single HTML file (``standalone``) both
call these functions, so both show the same thing. Every value is data to
display; the page escapes all of it (model output is untrusted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.errors import NotFoundError
from dialogforge.viewer import lineage
from dialogforge.viewer.history import checkpoint_list, messages_at
from dialogforge.viewer.validity import validity_by_thread
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode
from dialogforge.runs.branches import split_trajectory_id, with_branches

LIST_FIELDS = (
    "thread_id", "run_id", "mode", "status", "stop_reason", "error", "domain", "seed",
    "user_turns", "messages", "tool_calls", "tool_errors", "tasks", "tokens",
    "parent_thread_id", "fork_checkpoint_id", "created_at", "started_at", "finished_at",
)


def _manifest_rows(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """Every row without the bulky ``initial_state``, keyed by trajectory id, in creation order;
    each other leaf of a thread branched in place is a row of its own (``runs.branches``)."""
    rows = manifest.db["runs"].rows_where(select=", ".join(LIST_FIELDS), order_by="created_at, thread_id")
    return {row["thread_id"]: row for row in with_branches(manifest.path, rows)}


def _with_validity(row: dict[str, Any], validity: dict[str, dict[str, Any]] | None, *, details: bool = False) -> dict[str, Any]:
    verdict = validity.get(row["thread_id"]) if validity is not None else None
    extra = {"valid": verdict["valid"] if verdict else None, "validity_reasons": verdict["reasons"] if verdict else []}
    if details:
        extra["validation"] = verdict["details"] if verdict else None
    return {**row, **extra}


def list_trajectories(db_path: str | Path) -> dict[str, Any]:
    """Every trajectory's manifest row (with validity, when validated) and the filter choices."""
    manifest = Manifest(db_path)
    try:
        rows = _manifest_rows(manifest)
        validity = validity_by_thread(manifest.conn)
    finally:
        manifest.close()
    listed = [_with_validity(row, validity) for row in rows.values()]
    return {"db": str(db_path), "trajectories": listed, "validity_available": validity is not None,
            "choices": filter_choices(listed)}


def filter_choices(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The values each list filter can take, from the rows shown."""
    return {key: sorted({r[key] for r in rows if r.get(key)}) for key in ("mode", "status", "domain")}


def _fork_points(graph_for, rows, thread_id: str, row: dict[str, Any]) -> tuple[dict | None, list[dict]]:
    """Where this trajectory branched off its parent, and where its forks branched off it."""
    fork_point = None
    parent, checkpoint = row.get("parent_thread_id"), row.get("fork_checkpoint_id")
    if parent and checkpoint and parent in rows:
        at = messages_at(graph_for(rows[parent]), parent, checkpoint)
        if at is None:  # a fork that keeps the inherited checkpoint under its own thread
            at = messages_at(graph_for(row), thread_id, checkpoint)
        fork_point = {"parent_thread_id": parent, "checkpoint_id": checkpoint, "message_index": at}
    forks_here = []
    for child_id in lineage.children_index(rows).get(thread_id, []):
        child_checkpoint = rows[child_id].get("fork_checkpoint_id")
        forks_here.append({
            "thread_id": child_id, "checkpoint_id": child_checkpoint, "status": rows[child_id].get("status"),
            "message_index": messages_at(graph_for(row), thread_id, child_checkpoint) if child_checkpoint else None,
        })
    return fork_point, forks_here


def trajectory_view(db_path: str | Path, thread_id: str) -> dict[str, Any]:
    """One trajectory: its row, full state, fork tree, fork points and checkpoints."""
    manifest = Manifest(db_path)
    try:
        rows = _manifest_rows(manifest)
        validity = validity_by_thread(manifest.conn)
    finally:
        manifest.close()
    if thread_id not in rows:
        raise NotFoundError(f"{db_path}: no trajectory {thread_id!r} (see `dialogforge list`)")
    row = _with_validity(rows[thread_id], validity, details=True)
    with open_saver(db_path) as saver:
        graphs = {mode: compile_graph(mode, saver) for mode in Mode}

        def graph_for(r: dict[str, Any]):
            return graphs[Mode(r.get("mode") or Mode.USER.value)]

        graph = graph_for(row)
        thread, leaf = split_trajectory_id(thread_id)
        at = {"checkpoint_ns": "", "checkpoint_id": leaf} if leaf else {}
        snapshot = graph.get_state({"configurable": {"thread_id": thread, **at}})
        state = DialogueState.model_validate(snapshot.values).model_dump(mode="json") if snapshot.values else None
        fork_point, forks_here = _fork_points(graph_for, rows, thread_id, row)
        checkpoints = checkpoint_list(db_path, graph, thread) if state is not None else []
    return {
        "db": str(db_path),
        "thread_id": thread_id,
        "row": row,
        "state": state,
        "lineage": {
            "ancestors": lineage.ancestors(rows, thread_id),
            "descendants": lineage.descendants(rows, thread_id),
            "tree": lineage.fork_tree(rows, thread_id),
        },
        "fork_point": fork_point,
        "forks_here": forks_here,
        "checkpoints": checkpoints,
    }


def family(db_path: str | Path, thread_id: str) -> list[str]:
    """The trajectory, its ancestors and its descendants (what one HTML file carries)."""
    manifest = Manifest(db_path)
    try:
        rows = _manifest_rows(manifest)
    finally:
        manifest.close()
    if thread_id not in rows:
        raise NotFoundError(f"{db_path}: no trajectory {thread_id!r} (see `dialogforge list`)")
    return [a["thread_id"] for a in lineage.ancestors(rows, thread_id)] + [thread_id] + lineage.descendants(rows, thread_id)
