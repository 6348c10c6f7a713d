"""``LinearSqliteSaver``: LangGraph's checkpointer interface over the linear-storage tables.

The class holds the connection, its lock and the caches, and speaks
``BaseCheckpointSaver``; how things are stored lives beside it: ``values``
(patches and keyframes), ``writes``, ``delta`` (the message list),
``heads`` (the parent a step is stored against), ``copies``, ``tree``.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    SerializerProtocol,
    get_checkpoint_id,
)

from dialogforge.checkpoints.encoding import pack_id, unpack_id
from dialogforge.checkpoints.sqlite import branches, copies, pruning, steps
from dialogforge.checkpoints.sqlite.async_methods import AsyncMethods
from dialogforge.checkpoints.sqlite.delta import Deltas
from dialogforge.checkpoints.sqlite.heads import Head, Heads
from dialogforge.checkpoints.sqlite.names import Names
from dialogforge.checkpoints.sqlite.schema import DERIVED, THREAD, Chain, blob_key, create_tables
from dialogforge.checkpoints.sqlite.tree import Tree
from dialogforge.checkpoints.sqlite.values import Memo, Values
from dialogforge.checkpoints.sqlite.writes import Writes
from dialogforge.checkpoints.stored import StoredCheckpoint, StoredWrite


class LinearSqliteSaver(AsyncMethods, BaseCheckpointSaver[int]):
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        serde: SerializerProtocol | None = None,
        delta_channels: Mapping[str, DeltaChannel] | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.conn = conn
        self.lock = threading.RLock()
        self.is_setup = False
        self.names = Names(conn)
        self.memo = Memo()
        self.values = Values(conn, self.serde, self.names, self.memo)
        self.writes = Writes(conn, self.serde, self.names, self.values)
        self.tree = Tree(conn)
        self.deltas = Deltas(delta_channels or {}, self.names, self.values, self.writes, self.tree)
        self.values.reader_value = self.deltas.reader_value
        self.heads = Heads()
        self.branched: dict[int, bool] = {}  # thread id -> whether it has branches (``branches``)
        self._depth = 0  # nesting of transaction()

    @property
    def delta_channels(self) -> dict[str, DeltaChannel]:
        return self.deltas.specs

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        if self.is_setup:
            return
        with self.lock:
            create_tables(self.conn)
            self.is_setup = True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around everything inside, however deeply nested (a fork copies a
        thread, writes its first checkpoint and its manifest row all or nothing)."""
        with self.lock:
            self._depth += 1
            try:
                if self._depth > 1:
                    yield
                    return
                try:
                    with self.conn:
                        yield
                except BaseException:
                    # What the caches learnt inside was rolled back with it -- names too: an id
                    # kept for a rolled-back cp_names row would be written into later rows as a
                    # dangling reference (seen after "database or disk is full").
                    self.heads.clear()
                    self.memo.clear()
                    self.branched.clear()
                    self.names.clear()
                    raise
            finally:
                self._depth -= 1

    def get_next_version(self, current: Any, channel: None = None) -> int:
        if current is None:
            return 1
        if isinstance(current, str):  # a version written by another saver
            return int(current.split(".")[0]) + 1
        return int(current) + 1

    def forget(self, tid: int, thread_id: str) -> None:
        """Drop what the caches hold of a thread (its rows were deleted or are about to be written anew)."""
        self.heads.forget_thread(thread_id)
        self.memo.forget_thread(tid)
        self.branched.pop(tid, None)

    # ------------------------------------------------------------ reading

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self.lock:
            self.setup()
            thread_id = str(config["configurable"]["thread_id"])
            ns = config["configurable"].get("checkpoint_ns", "")
            tid = self.names.id(THREAD, thread_id, create=False)
            if tid is None:
                return None
            row = self.tree.row(tid, ns, get_checkpoint_id(config))
            if row is None:
                return None
            return self.read_tuple(thread_id, tid, ns, row[0], row[1], cache=True)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        with self.lock:
            self.setup()
            clauses, params = [], []
            if config is not None:
                thread_id = str(config["configurable"]["thread_id"])
                tid = self.names.id(THREAD, thread_id, create=False)
                if tid is None:
                    return
                clauses.append("thread = ?")
                params.append(tid)
                if "checkpoint_ns" in config["configurable"]:
                    clauses.append("ns = ?")
                    params.append(config["configurable"]["checkpoint_ns"])
                if checkpoint_id := get_checkpoint_id(config):
                    clauses.append("id = ?")
                    params.append(pack_id(checkpoint_id))
            if before is not None and (before_id := get_checkpoint_id(before)):
                clauses.append("id < ?")
                params.append(pack_id(before_id))
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = self.conn.execute(
                f"SELECT thread, ns, id, parent FROM cp_checkpoints {where} ORDER BY id DESC", params
            ).fetchall()
        produced = 0
        for tid, ns, raw_id, raw_parent in rows:
            if limit is not None and produced >= limit:
                return
            with self.lock:
                tup = self.read_tuple(self.names.name(tid), tid, ns, raw_id, raw_parent, cache=False)
            if filter and any(tup.metadata.get(k) != v for k, v in filter.items()):
                continue
            produced += 1
            yield tup

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        if not channels:
            return {}
        with self.lock:
            self.setup()
            thread_id = str(config["configurable"]["thread_id"])
            ns = config["configurable"].get("checkpoint_ns", "")
            tid = self.names.id(THREAD, thread_id, create=False)
            empty = {ch: {"writes": []} for ch in channels}
            if tid is None:
                return empty
            row = self.tree.row(tid, ns, get_checkpoint_id(config))
            if row is None:
                return empty
            return {ch: self.deltas.channel_history(tid, ns, row[0], ch) for ch in channels}

    def read_tuple(self, thread_id: str, tid: int, ns: str, raw_id: Any, raw_parent: Any, *, cache: bool) -> CheckpointTuple:
        body, body_chain = self.values.body(tid, ns, raw_id)
        checkpoint, metadata = _split_body(body, raw_id)
        values: dict[str, Any] = {}
        chains: dict[str, Chain] = {}
        versions = {channel: blob_key(body, channel) for channel in checkpoint["channel_versions"]}
        for channel, key in versions.items():
            found = self.values.read(tid, channel, key) if key is not None else None
            if found is None or found[0] == DERIVED:
                continue
            values[channel] = found[1]
            chains[channel] = found[2]
        checkpoint["channel_values"] = values
        writes = self.writes.of(tid, ns, raw_id)
        key = (thread_id, ns)
        if cache and self.heads.get(key, checkpoint["id"]) is None:
            self.heads.set(key, Head(
                checkpoint["id"], body, body_chain, versions, dict(values), dict(chains),
                writes=list(writes), delta=self.deltas.loaded(values),
            ))
        parent_id = unpack_id(raw_parent)
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}
        parent_config = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
            if parent_id else None
        )
        pending = [(w.task_id, w.channel, w.value) for w in writes]
        return CheckpointTuple(config, checkpoint, metadata, parent_config, pending)

    # ------------------------------------------------------------ writing

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with self.lock:
            self.setup()
            thread_id = str(config["configurable"]["thread_id"])
            ns = config["configurable"].get("checkpoint_ns", "")
            parent_id = config["configurable"].get("checkpoint_id")
            key = (thread_id, ns)
            with self.transaction():
                tid = self.names.id(THREAD, thread_id, create=True)
                head = self.heads.get(key, parent_id)
                new_head = steps.store_checkpoint(self, tid, ns, parent_id, head, checkpoint, metadata, new_versions, config)
            self.heads.set(key, new_head)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        with self.lock:
            self.setup()
            thread_id = str(config["configurable"]["thread_id"])
            ns = str(config["configurable"].get("checkpoint_ns", ""))
            checkpoint_id = str(config["configurable"]["checkpoint_id"])
            head = self.heads.get((thread_id, ns), checkpoint_id)
            with self.transaction():
                tid = self.names.id(THREAD, thread_id, create=True)
                steps.store_writes(self, tid, ns, checkpoint_id, head, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        with self.lock:
            self.setup()
            tid = self.names.id(THREAD, str(thread_id), create=False)
            if tid is None:
                return
            with self.transaction():
                for table in ("cp_checkpoints", "cp_blobs", "cp_writes"):
                    self.conn.execute(f"DELETE FROM {table} WHERE thread = ?", (tid,))
                branches.delete(self, tid)
            self.forget(tid, str(thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: only each namespace's newest checkpoint stays (with its writes), readable
        on its own; ``delete``: the threads go."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            with self.lock:
                self.setup()
                with self.transaction():
                    pruning.keep_latest(self, str(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Every checkpoint (and its writes) whose metadata names one of these runs goes; what
        stays is written again so that it reads as before (a maintenance pass: every body is read)."""
        with self.lock:
            self.setup()
            with self.transaction():
                for tid, dropped in pruning.runs_checkpoints(self, run_ids).items():
                    pruning.drop(self, tid, dropped)

    # ------------------------------------------------------------ copies (fork)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Every checkpoint, stored value and write of one thread, under a new thread id."""
        with self.lock:
            self.setup()
            with self.transaction():
                copies.copy_whole(self, source_thread_id, target_thread_id)

    def copy_thread_prefix(self, source_thread_id: str, target_thread_id: str, checkpoint_id: str, *, ns: str = "") -> None:
        """The chain of checkpoints ending at ``checkpoint_id`` under a new thread id, without that
        checkpoint's own writes (they belong to the step the source ran from it, which the copy
        runs afresh). Inside ``transaction()`` it commits with the rest of the caller's work."""
        with self.transaction():
            self.setup()
            copies.copy_prefix(self, source_thread_id, target_thread_id, checkpoint_id, ns)

    # ------------------------------------------------------------ reading a thread whole (history)

    def thread_exists(self, thread_id: str) -> bool:
        with self.lock:
            self.setup()
            tid = self.names.id(THREAD, thread_id, create=False)
            return tid is not None and self.tree.latest(tid, "") is not None

    def lineage(self, thread_id: str, *, ns: str = "") -> list[StoredCheckpoint]:
        """The head's line: the thread's checkpoints from its first to its latest, following parent links."""
        with self.lock:
            self.setup()
            tid = self.names.id(THREAD, thread_id, create=False)
            latest = self.tree.latest(tid, ns) if tid is not None else None
            if latest is None:
                return []
            chain = list(self.tree.ancestors(tid, ns, latest))
            chain.reverse()
            # oldest first, so each body patch finds its base
            return [self._stored(tid, ns, raw_id, raw_parent) for raw_id, raw_parent, _, _ in chain]

    def thread_checkpoints(self, thread_id: str, *, ns: str = "") -> list[StoredCheckpoint]:
        """Every checkpoint of the thread, every branch, oldest first, each with its true parent."""
        with self.lock:
            self.setup()
            tid = self.names.id(THREAD, thread_id, create=False)
            if tid is None:
                return []
            rows = self.conn.execute(
                "SELECT id, parent FROM cp_checkpoints WHERE thread = ? AND ns = ? ORDER BY id", (tid, ns)
            ).fetchall()
            return [self._stored(tid, ns, raw_id, raw_parent) for raw_id, raw_parent in rows]

    def branched_threads(self, *, ns: str = "") -> set[str]:
        """The threads that have a branch inside them (LangGraph's time travel)."""
        with self.lock:
            self.setup()
            return {self.names.name(tid) for tid in branches.branched_threads(self, ns)}

    def leaves(self, thread_id: str, *, ns: str = "") -> list[str]:
        """The ends of the thread's lines, newest (the head) first."""
        with self.lock:
            self.setup()
            tid = self.names.id(THREAD, thread_id, create=False)
            return branches.leaves(self, tid, ns) if tid is not None else []

    def _stored(self, tid: int, ns: str, raw_id: Any, raw_parent: Any) -> StoredCheckpoint:
        body, _ = self.values.body(tid, ns, raw_id)
        checkpoint, metadata = _split_body(body, raw_id)
        return StoredCheckpoint(checkpoint["id"], unpack_id(raw_parent), checkpoint, metadata)

    def stored_writes(self, thread_id: str, *, ns: str = "") -> dict[str, list[StoredWrite]]:
        """Every write of the thread, by the checkpoint it was made from."""
        with self.lock:
            self.setup()
            tid = self.names.id(THREAD, thread_id, create=False)
            if tid is None:
                return {}
            rows = self.conn.execute(
                "SELECT ckpt, task, path, entries FROM cp_writes WHERE thread = ? AND ns = ?", (tid, ns)
            ).fetchall()
            by_checkpoint: dict[Any, list[tuple]] = {}
            for raw_ckpt, task, path, data in rows:
                by_checkpoint.setdefault(raw_ckpt, []).append((task, path, data))
            return {
                unpack_id(raw_ckpt): [
                    StoredWrite(unpack_id(raw_ckpt), w.task_id, w.path, w.idx, w.channel, w.value)
                    for w in self.writes.decode(tid, task_rows, None)
                ]
                for raw_ckpt, task_rows in by_checkpoint.items()
            }

def _split_body(body: dict[str, Any], raw_id: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A private copy: LangGraph updates a loaded checkpoint's version maps in place."""
    checkpoint = copy.deepcopy(body["c"])
    checkpoint["id"] = unpack_id(raw_id)
    return checkpoint, copy.deepcopy(body["m"])
