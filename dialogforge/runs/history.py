"""Every checkpoint of a trajectory, oldest first: where a user can fork from.

One pass over the stored checkpoints and writes replays the dialogue
(checkpoint k's state is checkpoint k-1's plus the writes made from it), so
listing a long trajectory costs one read of it, not one state load per
checkpoint. A fork's history starts with the checkpoints it inherited from
its source (copied with it), marked ``inherited``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dialogforge.checkpoints.shards import thread_store
from dialogforge.checkpoints.store_kinds import open_manifest, store_errors, store_saver
from dialogforge.compat.langgraph import node_of_task_path
from dialogforge.errors import NotFoundError
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Counters, Message, Mode, Task

PREVIEW_CHARS = 120


@dataclass(frozen=True)
class HistoryEntry:
    checkpoint_id: str
    parent_checkpoint_id: str | None
    step: int
    source: str  # input (the run's start), loop (a node ran), fork (a fork's first own checkpoint), update
    node: str  # what wrote this checkpoint: a node name, or the source when no node did
    next: list[str]  # nodes that run from here (empty at the end)
    user_turn: int  # user turns taken so far
    messages: int  # messages so far
    preview: str  # what this step added, in one line
    created_at: str
    inherited: bool  # copied from the source trajectory (a fork's shared history)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def history(db_path: str | Path, thread_id: str) -> list[HistoryEntry]:
    """The trajectory's checkpoints, oldest first."""
    db_path = thread_store(db_path, thread_id)
    with store_errors(db_path):
        return _history(db_path, thread_id)


def _history(db_path: str | Path, thread_id: str) -> list[HistoryEntry]:
    row = _manifest_row(db_path, thread_id)
    with store_saver(db_path) as saver:
        lineage = saver.lineage(thread_id)
        if not lineage:
            raise NotFoundError(f"{db_path}: trajectory {thread_id!r} has no checkpoints yet (status {row['status']})")
        writes = saver.stored_writes(thread_id)
        graph = compile_graph(Mode(row.get("mode") or Mode.USER.value), saver)
        inherited_until = _inherited_until(row, lineage)
        entries: list[HistoryEntry] = []
        replay = _Replay()
        if lineage[0].metadata.get("source") != "input":  # a start written whole (an imported conversation)
            replay.start_from(graph.get_state(_config(thread_id, lineage[0].checkpoint_id)).values)
        parent_writes: list = []
        for position, stored in enumerate(lineage):
            metadata = stored.metadata
            source = str(metadata.get("source", ""))
            added = replay.apply(parent_writes)
            own_writes = writes.get(stored.checkpoint_id, [])
            entries.append(HistoryEntry(
                checkpoint_id=stored.checkpoint_id,
                parent_checkpoint_id=stored.parent_id,
                step=int(metadata.get("step", -1)),
                source=source,
                node=_writer(source, parent_writes),
                next=_next(graph, thread_id, stored.checkpoint_id, own_writes),
                user_turn=replay.counters.user_turns,
                messages=len(replay.messages),
                preview=_preview(source, added, replay, metadata),
                created_at=str(stored.checkpoint.get("ts", "")),
                inherited=position <= inherited_until,
            ))
            parent_writes = own_writes
    return entries


def _manifest_row(db_path: str | Path, thread_id: str) -> dict[str, Any]:
    manifest = open_manifest(db_path)
    try:
        row = manifest.get(thread_id)
    finally:
        manifest.close()
    if row is None:
        raise NotFoundError(f"{db_path}: no trajectory {thread_id!r} (see `dialogforge list`)")
    return row


def _inherited_until(row: dict[str, Any], lineage: list) -> int:
    """Index of the fork point in a fork's lineage (everything up to it was copied); -1 otherwise."""
    fork_checkpoint = row.get("fork_checkpoint_id")
    if not row.get("parent_thread_id") or not fork_checkpoint:
        return -1
    for position, stored in enumerate(lineage):
        if stored.checkpoint_id == fork_checkpoint:
            return position
    return -1


class _Replay:
    """The dialogue as it stood at a checkpoint, advanced one step of writes at a time."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.counters = Counters()
        self.tasks: list[Task] = []
        self.tools: list = []
        self.stop_reason: Any = None

    def start_from(self, values: dict[str, Any]) -> None:
        self.messages = list(values.get("messages") or [])
        self.counters = values.get("counters") or Counters()
        self.tasks = list(values.get("tasks") or [])
        self.tools = list(values.get("tools") or [])

    def apply(self, writes: list) -> dict[str, Any]:
        added: dict[str, Any] = {}
        for write in writes:
            channel, value = write.channel, write.value
            if channel == "messages" and isinstance(value, list):
                self.messages.extend(value)
                added.setdefault("messages", []).extend(value)
            elif channel == "counters" and isinstance(value, Counters):
                self.counters = value
            elif channel == "tasks" and isinstance(value, list):
                if len(value) > len(self.tasks):
                    added["task"] = value[-1]
                self.tasks = value
            elif channel == "tools" and isinstance(value, list):
                if len(value) != len(self.tools):
                    added["tools"] = len(value)
                self.tools = value
            elif channel == "stop_reason" and value is not None:
                self.stop_reason = value
                added["stop"] = value
        return added


def _writer(source: str, parent_writes: list) -> str:
    if source in ("input", "fork"):
        return source
    nodes = sorted({node_of_task_path(w.task_path) for w in parent_writes if node_of_task_path(w.task_path)})
    return ", ".join(nodes) if nodes else source


def _next(graph: Any, thread_id: str, checkpoint_id: str, own_writes: list) -> list[str]:
    """The nodes that ran from this checkpoint (its writes say which), or for a checkpoint
    nothing has run from yet (the latest, a fork point), what the graph would run."""
    nodes = sorted({node_of_task_path(w.task_path) for w in own_writes if node_of_task_path(w.task_path)})
    if nodes:
        return nodes
    return list(graph.get_state(_config(thread_id, checkpoint_id)).next)


def _config(thread_id: str, checkpoint_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}


def _preview(source: str, added: dict[str, Any], replay: _Replay, metadata: dict[str, Any]) -> str:
    if source == "fork":
        origin = metadata.get("fork") or {}
        return _clip(f"fork of {origin.get('thread_id', '?')} at {origin.get('checkpoint_id', '?')}"
                     f" (seed {origin.get('seed', '?')})")
    if source == "input":
        return "start"
    if source == "update" and metadata.get("step") == 0:
        task = replay.tasks[-1].goal if replay.tasks else None
        return _clip("start from an imported conversation" + (f"; task: {task}" if task else ""))
    if added.get("messages"):
        return _message_preview(added["messages"][-1])
    if "task" in added:
        return _clip(f"task: {added['task'].goal}")
    if "tools" in added:
        return f"tools: {added['tools']}"
    if "stop" in added:
        return f"stop: {getattr(added['stop'], 'value', added['stop'])}"
    return ""


def _message_preview(message: Message) -> str:
    content = message.content
    if not content and message.tool_calls:
        content = "calls " + ", ".join(call.name for call in message.tool_calls)
    return _clip(f"{message.role}: {content}")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text[:PREVIEW_CHARS] + ("..." if len(text) > PREVIEW_CHARS else "")
