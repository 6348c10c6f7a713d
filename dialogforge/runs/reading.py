"""Reading trajectories back: the state of a thread at its head, or of one of its leaves.

A trajectory id is a thread id (its head, the newest checkpoint, as
LangGraph reads a thread) or ``THREAD@CHECKPOINT``, another leaf of a
thread that was branched in place (``dialogforge.runs.branches``).
"""

from __future__ import annotations

from pathlib import Path

from dialogforge.checkpoints.shards import thread_store
from dialogforge.checkpoints.store_kinds import open_manifest, store_saver
from dialogforge.errors import NotFoundError
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.state import DialogueState
from dialogforge.pricing import Pricing, recorded_pricing
from dialogforge.records import Mode
from dialogforge.runs.branches import split_trajectory_id


def load_state(db_path: str | Path, thread_id: str) -> DialogueState:
    thread_id, checkpoint_id = split_trajectory_id(thread_id)
    db_path = thread_store(db_path, thread_id)
    manifest = open_manifest(db_path)
    try:
        row = manifest.get(thread_id)
    finally:
        manifest.close()
    if row is None:
        raise NotFoundError(f"{db_path}: no trajectory {thread_id!r} (see `dialogforge list`)")
    configurable = {"thread_id": thread_id}
    if checkpoint_id is not None:
        configurable.update(checkpoint_ns="", checkpoint_id=checkpoint_id)
    with store_saver(db_path) as saver:
        graph = compile_graph(Mode(row["mode"]), saver)
        snapshot = graph.get_state({"configurable": configurable})
    if checkpoint_id is not None and snapshot.config["configurable"].get("checkpoint_id") != checkpoint_id:
        raise NotFoundError(f"{db_path}: trajectory {thread_id!r} has no checkpoint {checkpoint_id!r}")
    if not snapshot.values:
        raise NotFoundError(f"{db_path}: trajectory {thread_id!r} has not started yet")
    return DialogueState.model_validate(snapshot.values)


def trajectory_cost(db_path: str | Path, thread_id: str, state: DialogueState) -> dict[str, float] | None:
    """What the trajectory has cost so far, per role, at its run's recorded prices (None without prices)."""
    db_path = thread_store(db_path, thread_id)
    manifest = open_manifest(db_path)
    try:
        row = manifest.get(thread_id) or {}
        try:
            config = manifest.run_config(row.get("run_id") or "")
        except Exception:  # noqa: BLE001 -- no recorded run (an old or hand-made row): no prices to apply
            config = {}
    finally:
        manifest.close()
    pricing: Pricing | None = recorded_pricing(config)
    return pricing.costs(state.counters.usage) if pricing else None
