"""The checkpoint list of a thread, so a user can copy an id to fork from.

The list is ``dialogforge.runs.history.history(db, thread_id)``; the two
graph-only readers below (``fast_history`` and the exact
``history_from_graph``) give the same list for a graph without a manifest.
Each entry: ``checkpoint_id``, ``step``, ``node`` (that wrote it), ``next``,
``user_turn``, ``messages`` (count at that checkpoint), ``preview`` and
``created_at``.

LangGraph's ``get_state_history`` rebuilds the whole state at every
checkpoint, which for the append-only message channel costs O(n^2): 21 s
for a 445-message dialogue. Messages are append-only, so the messages at
any checkpoint are a prefix of the final list, and the count grows by what
each step wrote. ``fast_history`` therefore reads the raw checkpoints once
and adds up each step's pending writes, then checks itself against two
exact snapshots (first and last); on any disagreement it falls back to the
exact, slow walk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from dialogforge.runs.history import history

PREVIEW_CHARS = 120


def _as_dict(entry: Any) -> dict[str, Any]:
    if hasattr(entry, "model_dump"):
        return entry.model_dump(mode="json")
    if dataclasses.is_dataclass(entry):
        return dataclasses.asdict(entry)
    return dict(entry)


def _preview(messages: list[Any]) -> str:
    if not messages:
        return ""
    last = messages[-1]
    role, content = getattr(last, "role", "?"), getattr(last, "content", "") or ""
    if not content and getattr(last, "tool_calls", None):
        content = "calls " + ", ".join(call.name for call in last.tool_calls)
    text = " ".join(content.split())
    return f"{role}: {text[:PREVIEW_CHARS]}" + ("..." if len(text) > PREVIEW_CHARS else "")


def history_from_graph(graph: CompiledStateGraph, thread_id: str) -> list[dict[str, Any]]:
    """Every checkpoint of the thread, oldest first, from LangGraph's state history."""
    snapshots = list(graph.get_state_history({"configurable": {"thread_id": thread_id}}))
    snapshots.reverse()
    entries = []
    previous_next: tuple[str, ...] = ()
    for snap in snapshots:
        values = snap.values or {}
        messages = values.get("messages") or []
        counters = values.get("counters")
        source = (snap.metadata or {}).get("source")
        entries.append({
            "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
            "step": (snap.metadata or {}).get("step"),
            "node": ", ".join(previous_next) if previous_next else (source or ""),
            "next": list(snap.next),
            "user_turn": getattr(counters, "user_turns", 0) if counters is not None else 0,
            "messages": len(messages),
            "preview": _preview(messages),
            "created_at": snap.created_at,
        })
        previous_next = snap.next
    return entries


_BRANCH = "branch:to:"


def _exact(graph: CompiledStateGraph, thread_id: str, checkpoint_id: str | None = None):
    configurable = {"thread_id": thread_id}
    if checkpoint_id is not None:
        configurable.update(checkpoint_ns="", checkpoint_id=checkpoint_id)
    return graph.get_state({"configurable": configurable})


def fast_history(graph: CompiledStateGraph, thread_id: str) -> list[dict[str, Any]] | None:
    """The checkpoint list from raw checkpoints and their writes; None if it does not check out."""
    tuples = list(graph.checkpointer.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}))
    if not tuples:
        return []
    tuples.reverse()
    first = _exact(graph, thread_id, tuples[0].config["configurable"]["checkpoint_id"])
    last = _exact(graph, thread_id)
    final_messages = (last.values or {}).get("messages") or []
    count = len((first.values or {}).get("messages") or [])
    next_nodes = list(first.next)
    node = (tuples[0].metadata or {}).get("source") or ""
    entries = []
    for item in tuples:
        counters = item.checkpoint["channel_values"].get("counters")
        entries.append({
            "checkpoint_id": item.config["configurable"]["checkpoint_id"],
            "step": (item.metadata or {}).get("step"),
            "node": node,
            "next": next_nodes,
            "user_turn": getattr(counters, "user_turns", 0) if counters is not None else 0,
            "messages": count,
            "preview": _preview(final_messages[:count]),
            "created_at": item.checkpoint.get("ts"),
        })
        writes = item.pending_writes or []
        count += sum(len(value) if isinstance(value, list) else 1 for _, channel, value in writes if channel == "messages")
        node = ", ".join(next_nodes)
        next_nodes = sorted(channel[len(_BRANCH):] for _, channel, _ in writes if channel.startswith(_BRANCH))
    tail = entries[-1]
    if tail["messages"] != len(final_messages) or tail["next"] != list(last.next) \
            or tail["checkpoint_id"] != last.config["configurable"]["checkpoint_id"]:
        return None
    return entries


def checkpoint_list(db_path: str | Path, graph: CompiledStateGraph, thread_id: str) -> list[dict[str, Any]]:
    return [_as_dict(entry) for entry in history(db_path, thread_id)]


def messages_at(graph: CompiledStateGraph, thread_id: str, checkpoint_id: str) -> int | None:
    """How many messages the thread had at that checkpoint (None if it is not there)."""
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    snapshot = graph.get_state(config)
    if not snapshot.values or snapshot.config["configurable"].get("checkpoint_id") != checkpoint_id:
        return None
    return len(snapshot.values.get("messages") or [])
