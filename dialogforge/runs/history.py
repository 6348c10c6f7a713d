"""Every checkpoint of a trajectory, oldest first: where a user can fork from.

One pass over the stored checkpoints and writes replays the dialogue
(checkpoint k's state is its parent's plus the writes made from it), so
listing a long trajectory costs one read of it, not one state load per
checkpoint. A fork's history starts with the checkpoints it inherited from
its source (copied with it), marked ``inherited``.

A thread branched in place (LangGraph's replay or ``update_state`` on a past
checkpoint) is a tree: every branch is listed, each checkpoint with its true
parent, ``branch`` off the head's line, and each leaf says which trajectory
``ends`` there (``dialogforge.runs.branches``). A branch's first checkpoint
is read whole (its parent's writes belong to another line); the replay goes
on from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dialogforge.checkpoints.shards import thread_store
from dialogforge.checkpoints.stored import StoredCheckpoint
from dialogforge.checkpoints.store_kinds import open_manifest, store_errors, store_saver
from dialogforge.compat.langgraph import node_of_task_path
from dialogforge.errors import NotFoundError
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Counters, Message, Mode, Task
from dialogforge.runs.branches import leaf_trajectory_id, split_trajectory_id

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
    branch: bool  # off the line of the thread's head: a branch made in place (LangGraph's time travel)
    ends: str | None  # the trajectory that ends here: the thread id at its head, THREAD@ID at another leaf

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def history(db_path: str | Path, thread_id: str) -> list[HistoryEntry]:
    """The trajectory's checkpoints, every branch of its thread, oldest first."""
    thread_id, _ = split_trajectory_id(thread_id)
    db_path = thread_store(db_path, thread_id)
    with store_errors(db_path):
        return _history(db_path, thread_id)


def _history(db_path: str | Path, thread_id: str) -> list[HistoryEntry]:
    row = _manifest_row(db_path, thread_id)
    with store_saver(db_path) as saver:
        tree = _Tree(saver.thread_checkpoints(thread_id))
        if not tree.order:
            raise NotFoundError(f"{db_path}: trajectory {thread_id!r} has no checkpoints yet (status {row['status']})")
        writes = saver.stored_writes(thread_id)
        graph = compile_graph(Mode(row.get("mode") or Mode.USER.value), saver)
        inherited = _inherited(row, tree)
        head_line = set(tree.line(tree.leaves[0]))
        ends = {leaf: thread_id if k == 0 else leaf_trajectory_id(thread_id, leaf) for k, leaf in enumerate(tree.leaves)}
        replays = _Replays(tree)
        entries: list[HistoryEntry] = []
        for stored in tree.order:
            metadata = stored.metadata
            source = str(metadata.get("source", ""))
            parent = stored.parent_id if stored.parent_id in tree.by_id else None
            parent_writes = writes.get(parent, []) if parent is not None and tree.consumes(stored) else []
            if parent is not None and tree.consumes(stored):
                replay = replays.take(parent)
                added = replay.apply(parent_writes)
            else:  # a start, or a branch's first checkpoint: its own state, read whole
                before = replays.peek(parent) if parent is not None else None
                replay = _Replay()
                if source != "input":
                    replay.start_from(graph.get_state(_config(thread_id, stored.checkpoint_id)).values)
                added = replay.added_since(before)
            replays.keep(stored.checkpoint_id, replay)
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
                preview=_preview(source, added, replay, metadata, stored.parent_id),
                created_at=str(stored.checkpoint.get("ts", "")),
                inherited=stored.checkpoint_id in inherited,
                branch=stored.checkpoint_id not in head_line,
                ends=ends.get(stored.checkpoint_id),
            ))
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


def _inherited(row: dict[str, Any], tree: _Tree) -> set[str]:
    """A fork's copied history: its fork point and the fork point's ancestors (empty otherwise)."""
    fork_checkpoint = row.get("fork_checkpoint_id")
    if not row.get("parent_thread_id") or fork_checkpoint not in tree.by_id:
        return set()
    return set(tree.line(fork_checkpoint))


class _Tree:
    """A thread's checkpoints as a tree: one line, unless LangGraph's time travel branched it."""

    def __init__(self, stored: list[StoredCheckpoint]) -> None:
        self.order = stored  # oldest first: a parent before its children
        self.by_id = {c.checkpoint_id: c for c in stored}
        self.children: dict[str, list[StoredCheckpoint]] = {}
        for c in stored:
            if c.parent_id in self.by_id:
                self.children.setdefault(c.parent_id, []).append(c)
        self.leaves = [c.checkpoint_id for c in reversed(stored) if c.checkpoint_id not in self.children]

    def consumes(self, stored: StoredCheckpoint) -> bool:
        """Whether this checkpoint is what its parent's writes made (the step ran on from there).
        A branch's first checkpoint (a replay's fork, an update) is not: the writes are another line's."""
        if stored.metadata.get("source") != "loop":
            return False
        return sum(c.metadata.get("source") == "loop" for c in self.children[stored.parent_id]) == 1

    def line(self, checkpoint_id: str) -> list[str]:
        """The checkpoint and its ancestors, newest first (a corrupted loop ends the walk)."""
        line, at, seen = [], checkpoint_id, set()
        while at in self.by_id and at not in seen:
            seen.add(at)
            line.append(at)
            at = self.by_id[at].parent_id
        return line


class _Replays:
    """The replay at each checkpoint whose children are still to come: one object along a line,
    a copy for each further child at a branch point."""

    def __init__(self, tree: _Tree) -> None:
        self.tree = tree
        self._at: dict[str, _Replay] = {}
        self._left: dict[str, int] = {}

    def keep(self, checkpoint_id: str, replay: _Replay) -> None:
        children = len(self.tree.children.get(checkpoint_id, []))
        if children:
            self._at[checkpoint_id], self._left[checkpoint_id] = replay, children

    def peek(self, checkpoint_id: str) -> _Replay | None:
        found = self._at.get(checkpoint_id)
        self._release(checkpoint_id)
        return found

    def take(self, checkpoint_id: str) -> _Replay:
        found = self._at[checkpoint_id]
        return found if self._release(checkpoint_id) else found.copy()

    def _release(self, checkpoint_id: str) -> bool:
        """Count one child off; True once it was the last (then the replay is the child's to advance)."""
        if checkpoint_id not in self._left:
            return False
        self._left[checkpoint_id] -= 1
        if self._left[checkpoint_id] > 0:
            return False
        del self._left[checkpoint_id]
        self._at.pop(checkpoint_id, None)
        return True


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

    def copy(self) -> _Replay:
        twin = _Replay()
        twin.messages, twin.counters, twin.tasks, twin.tools = list(self.messages), self.counters, list(self.tasks), list(self.tools)
        twin.stop_reason = self.stop_reason
        return twin

    def added_since(self, before: _Replay | None) -> dict[str, Any]:
        """What this state has beyond ``before`` (a branch's first checkpoint against its parent)."""
        if before is None:
            return {}
        added: dict[str, Any] = {}
        if self.messages[: len(before.messages)] == before.messages and len(self.messages) > len(before.messages):
            added["messages"] = self.messages[len(before.messages):]
        if len(self.tasks) > len(before.tasks):
            added["task"] = self.tasks[-1]
        return added

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


def _preview(source: str, added: dict[str, Any], replay: _Replay, metadata: dict[str, Any], parent: str | None) -> str:
    if source == "fork" and "fork" in metadata:
        origin = metadata["fork"]
        return _clip(f"fork of {origin.get('thread_id', '?')} at {origin.get('checkpoint_id', '?')}"
                     f" (seed {origin.get('seed', '?')})")
    if source == "fork":  # LangGraph's replay from a past checkpoint: a branch in the thread
        return f"branch: replay from {parent}"
    if source == "input":
        return "start"
    if source == "update" and metadata.get("step") == 0 and parent is None:
        task = replay.tasks[-1].goal if replay.tasks else None
        return _clip("start from an imported conversation" + (f"; task: {task}" if task else ""))
    if source == "update":
        return _clip(f"branch: state updated at {parent}" + (
            f"; {_message_preview(added['messages'][-1])}" if added.get("messages") else ""))
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
