"""A SQLite checkpointer whose storage grows linearly with dialogue length.

LangGraph's stock ``SqliteSaver`` stores every channel's value inside every
checkpoint row, so a state with a long task list, a tool list and counters
costs their full size at every step, quadratic over a long dialogue. Here:

* Channel values live apart from checkpoints (``cp_blobs``, keyed by
  thread, channel and version, as LangGraph's Postgres saver does), so a
  channel that did not change costs nothing at a step.
* A changed value is stored as a structural patch on its previous version
  (``dialogforge.checkpoints.patches``), with a full keyframe whenever the patches since
  the last one outweigh it, so reading any version stays bounded.
* A node's write of a last-value channel is the next checkpoint's value of
  that channel: once that checkpoint exists the write row just points at the
  blob, so the bytes are stored once.
* ``DeltaChannel`` (the message list) keeps LangGraph's contract: each step
  stores only its writes and a reader replays the ancestors' writes. The
  periodic snapshots LangGraph asks for are checked against that replay; a
  snapshot that the replay reproduces exactly is recorded as a marker
  (``derived``) and costs no bytes, one that differs (a branch made inside a
  thread) is stored in full, so reconstruction is always what LangGraph
  expects.
* Ids are packed (16 bytes per UUID), names interned, payloads deflated.

Everything stored goes through the strict serializer. Channel versions are
integers. One connection, guarded by a lock; the async methods run the same
code (each call is one short transaction, so nothing waits across an await).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlite3
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from dialogforge.checkpoints import patches
from dialogforge.checkpoints.encoding import decode, encode, pack_id, pack_typed, unpack_id, unpack_typed

FULL, PATCH, DERIVED, REF = 0, 1, 2, 3
THREAD, CHANNEL, PATH = 0, 1, 2

KEYFRAME_RATIO = 4  # a full copy once the patches since the last one weigh this many copies
KEYFRAME_MIN_BYTES = 512
MAX_CHAIN = 512  # patches between keyframes, whatever their size
BODY_KEYFRAME_RATIO = 8
MAX_BODY_CHAIN = 48
HEAD_CACHE_THREADS = 1024  # at least the most trajectories a process runs at once, or steps lose their base
VALUE_MEMO = 4096
MAX_WALK = 10_000_000

TABLES = ("cp_names", "cp_checkpoints", "cp_blobs", "cp_writes")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cp_names (
    id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, name TEXT NOT NULL, UNIQUE (kind, name));
CREATE TABLE IF NOT EXISTS cp_checkpoints (
    thread INTEGER NOT NULL, ns TEXT NOT NULL, id BLOB NOT NULL, parent BLOB,
    snaps TEXT, kind INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (thread, ns, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cp_blobs (
    thread INTEGER NOT NULL, version NOT NULL, channel INTEGER NOT NULL,
    kind INTEGER NOT NULL, base, data BLOB,
    PRIMARY KEY (thread, version, channel)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cp_writes (
    thread INTEGER NOT NULL, ns TEXT NOT NULL, ckpt BLOB NOT NULL, task BLOB NOT NULL,
    path INTEGER NOT NULL, entries BLOB NOT NULL,
    PRIMARY KEY (thread, ns, ckpt, task)) WITHOUT ROWID;
"""

_CHAIN_SQL = (
    "WITH RECURSIVE chain(id, parent, snaps, depth) AS ("
    " SELECT id, parent, snaps, 0 FROM cp_checkpoints WHERE thread = :t AND ns = :ns AND id = :target"
    " UNION ALL"
    " SELECT c.id, c.parent, c.snaps, chain.depth + 1 FROM chain CROSS JOIN cp_checkpoints c"
    " ON c.thread = :t AND c.ns = :ns AND c.id = chain.parent WHERE chain.depth < :limit)"
)


class BranchInThreadError(RuntimeError):
    """A checkpoint that would start a second line of checkpoints inside one thread."""


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()
MISSING = object()


@dataclass(frozen=True)
class Chain:
    """How a stored version is rebuilt: patches since its keyframe, and their weight."""

    depth: int = 0
    patch_bytes: int = 0
    full_bytes: int = 0

    def after(self, kind: int, size: int) -> Chain:
        if kind == FULL:
            return Chain(0, 0, size)
        return Chain(self.depth + 1, self.patch_bytes + size, self.full_bytes)

    def allows(self, size: int, ratio: int, max_depth: int) -> bool:
        return self.depth < max_depth and self.patch_bytes + size <= ratio * max(self.full_bytes, KEYFRAME_MIN_BYTES)


@dataclass
class _Write:
    task_id: str
    idx: int
    path: str
    channel: str
    value: Any
    kind: int
    base: Any
    payload: bytes | None


@dataclass
class _Head:
    """What the saver remembers of a thread's latest checkpoint, to store the next one as a difference."""

    checkpoint_id: str
    body: dict[str, Any]
    body_chain: Chain
    versions: dict[str, Any]
    values: dict[str, Any]
    chains: dict[str, Chain]
    writes: list[_Write] = field(default_factory=list)
    # delta channel -> (value a reader rebuilds at some checkpoint, write batches since), or UNKNOWN
    delta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCheckpoint:
    """One checkpoint row, decoded, without channel values (for history and copies)."""

    checkpoint_id: str
    parent_id: str | None
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class StoredWrite:
    checkpoint_id: str
    task_id: str
    task_path: str
    idx: int
    channel: str
    value: Any


class LinearSqliteSaver(BaseCheckpointSaver[int]):
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
        self.delta_channels = dict(delta_channels or {})
        self.is_setup = False
        self._names: dict[tuple[int, str], int] = {}
        self._names_by_id: dict[int, str] = {}
        self._heads: OrderedDict[tuple[str, str], _Head] = OrderedDict()
        self._memo: OrderedDict[tuple, tuple] = OrderedDict()
        self._depth = 0  # nesting of transaction()

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        if self.is_setup:
            return
        with self.lock:
            present = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not set(TABLES) <= present:
                self.conn.executescript(SCHEMA)
                self.conn.commit()
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
                    self._heads.clear()
                    self._memo.clear()
                    self._names.clear()
                    self._names_by_id.clear()
                    raise
            finally:
                self._depth -= 1

    def get_next_version(self, current: Any, channel: None = None) -> int:
        if current is None:
            return 1
        if isinstance(current, str):  # a version written by another saver
            return int(current.split(".")[0]) + 1
        return int(current) + 1

    # ------------------------------------------------------------ names

    def _name_id(self, kind: int, name: str, *, create: bool) -> int | None:
        key = (kind, name)
        found = self._names.get(key)
        if found is not None:
            return found
        row = self.conn.execute("SELECT id FROM cp_names WHERE kind = ? AND name = ?", key).fetchone()
        if row is None:
            if not create:
                return None
            row = (self.conn.execute("INSERT INTO cp_names (kind, name) VALUES (?, ?)", key).lastrowid,)
        self._names[key] = row[0]
        self._names_by_id[row[0]] = name
        return row[0]

    def _name(self, name_id: int) -> str:
        found = self._names_by_id.get(name_id)
        if found is None:
            row = self.conn.execute("SELECT kind, name FROM cp_names WHERE id = ?", (name_id,)).fetchone()
            if row is None:
                raise LookupError(f"name {name_id} missing from cp_names")
            self._names[(row[0], row[1])] = name_id
            self._names_by_id[name_id] = found = row[1]
        return found

    # ------------------------------------------------------------ memo

    def _recall(self, key: tuple) -> tuple | None:
        found = self._memo.get(key)
        if found is not None:
            self._memo.move_to_end(key)
        return found

    def _remember(self, key: tuple, result: tuple) -> None:
        self._memo[key] = result
        self._memo.move_to_end(key)
        while len(self._memo) > VALUE_MEMO:
            self._memo.popitem(last=False)

    # ------------------------------------------------------------ reading values

    def _blob_value(self, tid: int, channel: str, version: Any) -> tuple[int, Any, Chain] | None:
        """(kind, value, chain) of a channel version; None if nothing is stored for it."""
        cid = self._name_id(CHANNEL, channel, create=False)
        if cid is None:
            return None
        if (found := self._recall(("b", tid, cid, version))) is not None:
            return found
        pending: list[tuple[Any, list, int]] = []  # (version, patch, bytes), newest first
        current = version
        while True:
            if pending and (found := self._recall(("b", tid, cid, current))) is not None:
                _, value, chain = found
                break
            row = self.conn.execute(
                "SELECT kind, base, data FROM cp_blobs WHERE thread = ? AND version = ? AND channel = ?",
                (tid, current, cid),
            ).fetchone()
            if row is None:
                if pending:
                    raise LookupError(f"stored value {channel}@{current} missing (base of {channel}@{version})")
                return None
            kind, base, data = row
            if kind == DERIVED:
                if pending:
                    raise LookupError(f"stored value {channel}@{current} is a marker, not a base")
                result = (DERIVED, None, Chain())
                self._remember(("b", tid, cid, version), result)
                return result
            if kind == FULL:
                value, chain = decode(self.serde, data), Chain(0, 0, len(data))
                self._remember(("b", tid, cid, current), (FULL, value, chain))
                break
            pending.append((current, decode(self.serde, data), len(data)))
            current = base
            if len(pending) > MAX_WALK:
                raise LookupError(f"stored value chain of {channel}@{version} does not end")
        for step_version, patch, size in reversed(pending):
            value = patches.apply(value, patch)
            chain = chain.after(PATCH, size)
            self._remember(("b", tid, cid, step_version), (PATCH, value, chain))
        return self._recall(("b", tid, cid, version))

    def _write_value(self, tid: int, channel: str, kind: int, base: Any, payload: bytes | None) -> Any:
        if kind == FULL:
            return decode(self.serde, payload)
        found = self._blob_value(tid, channel, base)
        if found is None or found[0] == DERIVED:
            raise LookupError(f"a write of {channel} refers to missing stored value {base}")
        if kind == REF:
            return found[1]
        if kind == PATCH:
            return patches.apply(found[1], decode(self.serde, payload))
        raise LookupError(f"unknown write kind {kind}")

    # ------------------------------------------------------------ checkpoint bodies

    def _body(self, tid: int, ns: str, raw_id: Any) -> tuple[dict[str, Any], Chain]:
        """A checkpoint's body ({"c": checkpoint without values, "m": metadata}), following its patch chain."""
        key = ("c", tid, ns, raw_id)
        if (found := self._recall(key)) is not None:
            return found
        pending: list[tuple[Any, list, int]] = []
        current = raw_id
        while True:
            if pending and (found := self._recall(("c", tid, ns, current))) is not None:
                body, chain = found
                break
            row = self.conn.execute(
                "SELECT parent, kind, body FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?",
                (tid, ns, current),
            ).fetchone()
            if row is None:
                raise LookupError(f"checkpoint {unpack_id(current)} missing (base of {unpack_id(raw_id)})")
            parent, kind, data = row
            if kind == FULL:
                body, chain = decode(self.serde, data), Chain(0, 0, len(data))
                self._remember(("c", tid, ns, current), (body, chain))
                break
            pending.append((current, decode(self.serde, data), len(data)))
            current = parent
            if len(pending) > MAX_WALK:
                raise LookupError(f"checkpoint {unpack_id(raw_id)}: body chain does not end")
        for step_id, patch, size in reversed(pending):
            body = patches.apply(body, patch)
            chain = chain.after(PATCH, size)
            self._remember(("c", tid, ns, step_id), (body, chain))
        return self._recall(key)

    def _split_body(self, body: dict[str, Any], raw_id: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A private copy: LangGraph updates a loaded checkpoint's version maps in place."""
        checkpoint = copy.deepcopy(body["c"])
        checkpoint["id"] = unpack_id(raw_id)
        return checkpoint, copy.deepcopy(body["m"])

    def _latest_id(self, tid: int, ns: str) -> Any:
        row = self.conn.execute(
            "SELECT id FROM cp_checkpoints WHERE thread = ? AND ns = ? ORDER BY id DESC LIMIT 1", (tid, ns)
        ).fetchone()
        return row[0] if row else None

    def _row(self, tid: int, ns: str, checkpoint_id: str | None) -> tuple | None:
        """(id, parent) of a checkpoint, or of the latest one."""
        if checkpoint_id:
            return self.conn.execute(
                "SELECT id, parent FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?",
                (tid, ns, pack_id(checkpoint_id)),
            ).fetchone()
        return self.conn.execute(
            "SELECT id, parent FROM cp_checkpoints WHERE thread = ? AND ns = ? ORDER BY id DESC LIMIT 1", (tid, ns)
        ).fetchone()

    def _tuple(self, thread_id: str, tid: int, ns: str, raw_id: Any, raw_parent: Any, *, cache: bool) -> CheckpointTuple:
        body, body_chain = self._body(tid, ns, raw_id)
        checkpoint, metadata = self._split_body(body, raw_id)
        values: dict[str, Any] = {}
        chains: dict[str, Chain] = {}
        for channel, version in checkpoint["channel_versions"].items():
            found = self._blob_value(tid, channel, version)
            if found is None or found[0] == DERIVED:
                continue
            values[channel] = found[1]
            chains[channel] = found[2]
        checkpoint["channel_values"] = values
        writes = self._writes_of(tid, ns, raw_id)
        if cache:
            self._cache_loaded(thread_id, ns, body, body_chain, checkpoint, values, chains, writes)
        parent_id = unpack_id(raw_parent)
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}
        parent_config = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
            if parent_id else None
        )
        pending = [(w.task_id, w.channel, w.value) for w in writes]
        return CheckpointTuple(config, checkpoint, metadata, parent_config, pending)

    # ------------------------------------------------------------ writes rows

    def _entries(self, data: bytes) -> list[list]:
        return decode(self.serde, data)

    def _writes_of(self, tid: int, ns: str, raw_id: Any, channel: str | None = None) -> list[_Write]:
        rows = self.conn.execute(
            "SELECT task, path, entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ?", (tid, ns, raw_id)
        ).fetchall()
        return self._decode_writes(tid, rows, channel)

    def _decode_writes(self, tid: int, rows: Sequence[tuple], channel: str | None) -> list[_Write]:
        wanted = self._name_id(CHANNEL, channel, create=False) if channel is not None else None
        writes = []
        for task, path, data in rows:
            task_id, task_path = unpack_id(task), self._name(path)
            for idx, cid, kind, base, payload in self._entries(data):
                if channel is not None and cid != wanted:
                    continue
                name = self._name(cid)
                value = self._write_value(tid, name, kind, base, payload)
                writes.append(_Write(task_id, idx, task_path, name, value, kind, base, payload))
        writes.sort(key=lambda w: writes_sort_key(w.path, w.task_id, w.idx))
        return writes

    def _store_task_writes(self, tid: int, ns: str, raw_ckpt: Any, task_id: str, path_id: int, writes: Sequence[_Write]) -> None:
        entries = [
            [w.idx, self._name_id(CHANNEL, w.channel, create=True), w.kind, w.base, w.payload]
            for w in sorted(writes, key=lambda w: w.idx)
        ]
        self.conn.execute(
            "INSERT OR REPLACE INTO cp_writes (thread, ns, ckpt, task, path, entries) VALUES (?, ?, ?, ?, ?, ?)",
            (tid, ns, raw_ckpt, pack_id(task_id), path_id, encode(self.serde, entries)),
        )

    # ------------------------------------------------------------ the head cache

    def _cache_loaded(self, thread_id, ns, body, body_chain, checkpoint, values, chains, writes) -> None:
        key = (thread_id, ns)
        head = self._heads.get(key)
        if head is not None and head.checkpoint_id == checkpoint["id"]:
            return
        delta = {}
        for name in self.delta_channels:
            stored = values.get(name)
            delta[name] = (stored.value, []) if isinstance(stored, _DeltaSnapshot) else UNKNOWN
        self._set_head(key, _Head(
            checkpoint["id"], body, body_chain, dict(checkpoint["channel_versions"]), dict(values), dict(chains),
            writes=list(writes), delta=delta,
        ))

    def _set_head(self, key: tuple[str, str], head: _Head) -> None:
        self._heads[key] = head
        self._heads.move_to_end(key)
        while len(self._heads) > HEAD_CACHE_THREADS:
            self._heads.popitem(last=False)

    # ------------------------------------------------------------ BaseCheckpointSaver: read

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self.lock:
            self.setup()
            thread_id = str(config["configurable"]["thread_id"])
            ns = config["configurable"].get("checkpoint_ns", "")
            tid = self._name_id(THREAD, thread_id, create=False)
            if tid is None:
                return None
            row = self._row(tid, ns, get_checkpoint_id(config))
            if row is None:
                return None
            return self._tuple(thread_id, tid, ns, row[0], row[1], cache=True)

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
                tid = self._name_id(THREAD, thread_id, create=False)
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
                tup = self._tuple(self._name(tid), tid, ns, raw_id, raw_parent, cache=False)
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
            tid = self._name_id(THREAD, thread_id, create=False)
            empty = {ch: {"writes": []} for ch in channels}
            if tid is None:
                return empty
            row = self._row(tid, ns, get_checkpoint_id(config))
            if row is None:
                return empty
            return {ch: self._channel_history(tid, ns, row[0], ch) for ch in channels}

    def _chain(self, tid: int, ns: str, raw_target: Any) -> Iterator[tuple[Any, Any, str | None, int]]:
        """(id, parent, snaps, depth) from the target up to the root; stops if a chain loops."""
        cursor = self.conn.execute(
            _CHAIN_SQL + " SELECT id, parent, snaps, depth FROM chain",
            {"t": tid, "ns": ns, "target": raw_target, "limit": MAX_WALK},
        )
        seen: set = set()
        try:
            for raw_id, raw_parent, snaps, depth in cursor:
                if raw_id in seen:
                    return
                seen.add(raw_id)
                yield raw_id, raw_parent, snaps, depth
        finally:
            cursor.close()

    def _channel_history(self, tid: int, ns: str, raw_target: Any, channel: str) -> DeltaChannelHistory:
        """Writes of ``channel`` on the target's ancestors back to the nearest stored value (the seed)."""
        stop_depth = 0
        seed_id = None
        for raw_id, _, snaps, depth in self._chain(tid, ns, raw_target):
            stop_depth = depth
            if depth >= 1 and snaps and channel in snaps.split(","):
                seed_id = raw_id
                break
        entry: DeltaChannelHistory = {"writes": []}
        if seed_id is not None:
            body, _ = self._body(tid, ns, seed_id)
            found = self._blob_value(tid, channel, body["c"]["channel_versions"][channel])
            entry["seed"] = found[1]
        if stop_depth < 1 or self._name_id(CHANNEL, channel, create=False) is None:
            return entry
        rows = self.conn.execute(
            _CHAIN_SQL + " SELECT chain.depth, w.task, w.path, w.entries"
            " FROM chain CROSS JOIN cp_writes w ON w.thread = :t AND w.ns = :ns AND w.ckpt = chain.id"
            " WHERE chain.depth BETWEEN 1 AND :stop",
            {"t": tid, "ns": ns, "target": raw_target, "limit": stop_depth, "stop": stop_depth},
        ).fetchall()
        by_depth: dict[int, list[tuple]] = {}
        for depth, task, path, data in rows:
            by_depth.setdefault(depth, []).append((task, path, data))
        collected = []
        for depth in sorted(by_depth, reverse=True):
            collected.extend(self._decode_writes(tid, by_depth[depth], channel))
        entry["writes"] = [(w.task_id, w.channel, w.value) for w in collected]
        return entry

    # ------------------------------------------------------------ BaseCheckpointSaver: write

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
                tid = self._name_id(THREAD, thread_id, create=True)
                head = self._heads.get(key)
                if head is not None and head.checkpoint_id != parent_id:
                    head = None
                new_head = self._store_checkpoint(tid, ns, parent_id, head, checkpoint, metadata, new_versions, config)
            self._set_head(key, new_head)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _store_checkpoint(self, tid, ns, parent_id, head, checkpoint, metadata, new_versions, config) -> _Head:
        values = checkpoint["channel_values"]
        # A private copy: the loop goes on updating its checkpoint's version maps in place.
        body = copy.deepcopy({
            "c": {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")},
            "m": get_checkpoint_metadata(config, metadata),
        })
        body_kind, body_data = self._encode_body(body, head)
        body_chain = head.body_chain.after(body_kind, len(body_data)) if head else Chain(0, 0, len(body_data))
        new_head = _Head(
            checkpoint["id"], body, body_chain, dict(checkpoint["channel_versions"]),
            dict(head.values) if head else {}, dict(head.chains) if head else {},
        )
        new_head.delta = self._advance_delta(parent_id, head)
        raw_id = pack_id(checkpoint["id"])
        reput = self.conn.execute(  # the same checkpoint again (LangGraph's exit durability does that)
            "SELECT 1 FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?", (tid, ns, raw_id)
        ).fetchone() is not None
        snaps: list[str] = []
        reused: list[tuple[_Write, Any]] = []
        for channel, version in new_versions.items():
            value = values.get(channel, MISSING)
            cid = self._name_id(CHANNEL, channel, create=True)
            if value is MISSING:
                new_head.values.pop(channel, None)
                new_head.chains.pop(channel, None)
                continue
            if isinstance(value, _DeltaSnapshot):
                if channel in self.delta_channels:
                    derived = self._snapshot_is_derived(tid, ns, parent_id, channel, value.value, new_head)
                    new_head.delta[channel] = (value.value, [])
                    if derived:
                        self._put_blob(tid, cid, version, DERIVED, None, None, reput=reput)
                        self._remember(("b", tid, cid, version), (DERIVED, None, Chain()))
                        new_head.values.pop(channel, None)
                        new_head.chains.pop(channel, None)
                        continue
                snaps.append(channel)
                kind, base, data, write = FULL, None, encode(self.serde, value), None
            else:
                kind, base, data, write = self._encode_channel(channel, value, head)
            self._put_blob(tid, cid, version, kind, base, data, reput=reput)
            parent_chain = head.chains.get(channel, Chain()) if head else Chain()
            new_head.values[channel] = value
            new_head.chains[channel] = parent_chain.after(kind, len(data))
            self._remember(("b", tid, cid, version), (kind, value, new_head.chains[channel]))
            if write is not None:
                reused.append((write, version))
        self.conn.execute(
            "INSERT OR REPLACE INTO cp_checkpoints (thread, ns, id, parent, snaps, kind, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tid, ns, raw_id, pack_id(parent_id) if parent_id else None, ",".join(snaps) or None, body_kind, body_data),
        )
        self._remember(("c", tid, ns, raw_id), (body, body_chain))
        if reused:
            self._point_writes_at_blobs(tid, ns, parent_id, head, reused)
        return new_head

    def _encode_body(self, body: dict[str, Any], head: _Head | None) -> tuple[int, bytes]:
        if head is not None:
            patch = patches.diff(head.body, body)
            if not patches.is_replacement(patch):
                data = encode(self.serde, patch)
                if head.body_chain.allows(len(data), BODY_KEYFRAME_RATIO, MAX_BODY_CHAIN):
                    return PATCH, data
        return FULL, encode(self.serde, body)

    def _point_writes_at_blobs(self, tid: int, ns: str, parent_id: str, head: _Head, reused: list[tuple[_Write, Any]]) -> None:
        """A write whose value became a stored channel value keeps only a reference to it."""
        for write, version in reused:
            write.kind, write.base, write.payload = REF, version, None
        tasks = {write.task_id for write, _ in reused}
        for task_id in tasks:
            task_writes = [w for w in head.writes if w.task_id == task_id]
            path_id = self._name_id(PATH, task_writes[0].path, create=True)
            self._store_task_writes(tid, ns, pack_id(parent_id), task_id, path_id, task_writes)

    def _put_blob(self, tid: int, cid: int, version: Any, kind: int, base: Any, data: bytes | None,
                  *, reput: bool) -> None:
        """Store a channel version. Versions are unique along a thread's one line of checkpoints;
        a second value for one would be a branch inside the thread, which would overwrite what
        the other branch reads, so it is refused (branch into a new thread: ``copy_thread_prefix``)."""
        row = (tid, version, cid, kind, base, data)
        try:
            self.conn.execute("INSERT INTO cp_blobs (thread, version, channel, kind, base, data) VALUES (?, ?, ?, ?, ?, ?)", row)
        except sqlite3.IntegrityError:
            if not reput:
                raise BranchInThreadError(
                    f"thread {self._name(tid)}: channel {self._name(cid)} version {version} is already stored; "
                    "this saver keeps one line of checkpoints per thread: branch into a new thread (fork) instead"
                ) from None
            self.conn.execute("INSERT OR REPLACE INTO cp_blobs (thread, version, channel, kind, base, data) VALUES (?, ?, ?, ?, ?, ?)", row)

    def _encode_channel(self, channel: str, value: Any, head: _Head | None) -> tuple[int, Any, bytes, _Write | None]:
        """How to store a channel's new value: as the parent's write of that very object when
        there is one (the write then points here), else as a patch on the parent's value."""
        if head is not None:
            base_version = head.versions.get(channel)
            for write in reversed(head.writes):
                if write.channel == channel and write.value is value and write.kind in (FULL, PATCH):
                    if write.kind == FULL or write.base == base_version:
                        return write.kind, write.base, pack_typed(*unpack_typed(write.payload)), write
                    break
            if channel in head.values and base_version is not None:
                kind, base, data = self._encode_against(head.values[channel], value, base_version, head.chains.get(channel))
                return kind, base, data, None
        return FULL, None, encode(self.serde, value), None

    def _encode_against(self, old: Any, new: Any, base_version: Any, chain: Chain | None, *, compress: bool = True) -> tuple[int, Any, bytes]:
        if not (new is None or isinstance(new, (bool, int, float, str))):
            patch = patches.diff(old, new)
            if chain is not None and not patches.is_replacement(patch):
                data = encode(self.serde, patch, compress=compress)
                if chain.allows(len(data), KEYFRAME_RATIO, MAX_CHAIN):
                    return PATCH, base_version, data
        return FULL, None, encode(self.serde, new, compress=compress)

    # ------------------------------------------------------------ delta snapshots

    def _advance_delta(self, parent_id: str | None, head: _Head | None) -> dict[str, Any]:
        """Each delta channel's reader value at the new checkpoint, as (base, batches) or UNKNOWN."""
        if parent_id is None:
            return {name: (spec.from_checkpoint(None).value, []) for name, spec in self.delta_channels.items()}
        advanced = {}
        for name in self.delta_channels:
            track = head.delta.get(name, UNKNOWN) if head else UNKNOWN
            if track is UNKNOWN:
                advanced[name] = UNKNOWN
                continue
            base, batches = track
            advanced[name] = (base, batches + [w.value for w in head.writes if w.channel == name])
        return advanced

    def _snapshot_is_derived(self, tid, ns, parent_id, channel, snapshot_value, new_head: _Head) -> bool:
        """Whether replaying the ancestors' writes rebuilds exactly this snapshot (then it need not be stored)."""
        track = new_head.delta.get(channel, UNKNOWN)
        if track is UNKNOWN:
            if parent_id is None:
                return False
            raw_parent = pack_id(parent_id)
            base = self._reader_value(tid, ns, raw_parent, channel)
            track = (base, [w.value for w in self._writes_of(tid, ns, raw_parent, channel)])
        base, batches = track
        rebuilt = self.delta_channels[channel].from_checkpoint(_DeltaSnapshot(base))
        rebuilt.replay_writes([("", channel, batch) for batch in batches])
        return patches.same(rebuilt.value, snapshot_value)

    def _reader_value(self, tid: int, ns: str, raw_id: Any, channel: str) -> Any:
        """The value a reader rebuilds for a delta channel at a stored checkpoint."""
        body, _ = self._body(tid, ns, raw_id)
        version = body["c"]["channel_versions"].get(channel)
        found = self._blob_value(tid, channel, version) if version is not None else None
        spec = self.delta_channels[channel]
        if found is not None and found[0] != DERIVED:
            return spec.from_checkpoint(found[1]).value
        history = self._channel_history(tid, ns, raw_id, channel)
        rebuilt = spec.from_checkpoint(history.get("seed"))
        rebuilt.replay_writes(history["writes"])
        return rebuilt.value

    # ------------------------------------------------------------ writes

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
            head = self._heads.get((thread_id, ns))
            if head is not None and head.checkpoint_id != checkpoint_id:
                head = None
            replace_existing = all(channel in WRITES_IDX_MAP for channel, _ in writes)
            with self.transaction():
                tid = self._name_id(THREAD, thread_id, create=True)
                path_id = self._name_id(PATH, task_path, create=True)
                raw_ckpt = pack_id(checkpoint_id)
                existing = self.conn.execute(
                    "SELECT task, path, entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ? AND task = ?",
                    (tid, ns, raw_ckpt, pack_id(task_id)),
                ).fetchall()
                kept = {w.idx: w for w in self._decode_writes(tid, existing, None)}
                for position, (channel, value) in enumerate(writes):
                    idx = WRITES_IDX_MAP.get(channel, position)
                    if idx in kept and not replace_existing:
                        continue  # INSERT OR IGNORE, like LangGraph's savers
                    kind, base, payload = FULL, None, None
                    if head is not None and channel not in self.delta_channels and channel in head.values:
                        base_version = head.versions.get(channel)
                        if base_version is not None:
                            kind, base, payload = self._encode_against(
                                head.values[channel], value, base_version, head.chains.get(channel), compress=False
                            )
                    if payload is None:
                        payload = encode(self.serde, value, compress=False)
                    kept[idx] = _Write(task_id, idx, task_path, channel, value, kind, base, payload)
                self._store_task_writes(tid, ns, raw_ckpt, task_id, path_id, list(kept.values()))
            if head is not None:
                head.writes = [w for w in head.writes if w.task_id != task_id] + list(kept.values())
                head.writes.sort(key=lambda w: writes_sort_key(w.path, w.task_id, w.idx))

    def delete_thread(self, thread_id: str) -> None:
        with self.lock:
            self.setup()
            tid = self._name_id(THREAD, str(thread_id), create=False)
            if tid is None:
                return
            with self.transaction():
                for table in ("cp_checkpoints", "cp_blobs", "cp_writes"):
                    self.conn.execute(f"DELETE FROM {table} WHERE thread = ?", (tid,))
            self._forget(tid, str(thread_id))

    def _forget(self, tid: int, thread_id: str) -> None:
        for key in [k for k in self._heads if k[0] == thread_id]:
            del self._heads[key]
        for key in [k for k in self._memo if k[1] == tid]:
            del self._memo[key]

    # ------------------------------------------------------------ copies (fork)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Every checkpoint, stored value and write of one thread, under a new thread id."""
        with self.lock:
            self.setup()
            with self.transaction():
                source = self._name_id(THREAD, source_thread_id, create=False)
                if source is None or self._latest_id(source, "") is None:
                    raise LookupError(f"no thread {source_thread_id!r}")
                target = self._fresh_thread(target_thread_id)
                for table, columns in _COPY_COLUMNS.items():
                    self.conn.execute(
                        f"INSERT INTO {table} (thread, {columns}) SELECT ?, {columns} FROM {table} WHERE thread = ?",
                        (target, source),
                    )

    def copy_thread_prefix(self, source_thread_id: str, target_thread_id: str, checkpoint_id: str, *, ns: str = "") -> None:
        """The chain of checkpoints ending at ``checkpoint_id`` under a new thread id, without that
        checkpoint's own writes (they belong to the step the source ran from it, which the copy
        runs afresh). Inside ``transaction()`` it commits with the rest of the caller's work."""
        with self.transaction():
            self.setup()
            source = self._name_id(THREAD, source_thread_id, create=False)
            row = self._row(source, ns, checkpoint_id) if source is not None else None
            if row is None:
                raise LookupError(f"no checkpoint {checkpoint_id!r} in thread {source_thread_id!r}")
            target = self._fresh_thread(target_thread_id)
            chain = [(raw_id, depth) for raw_id, _, _, depth in self._chain(source, ns, row[0])]
            self.conn.executemany(
                "INSERT INTO cp_checkpoints (thread, ns, id, parent, snaps, kind, body)"
                " SELECT ?, ns, id, parent, snaps, kind, body FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?",
                [(target, source, ns, raw_id) for raw_id, _ in chain],
            )
            self.conn.executemany(
                "INSERT INTO cp_writes (thread, ns, ckpt, task, path, entries)"
                " SELECT ?, ns, ckpt, task, path, entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ?",
                [(target, source, ns, raw_id) for raw_id, depth in chain if depth >= 1],
            )
            # Stored values: every version up to the fork point's. A thread is a line, so these
            # are exactly its ancestors' values and the bases their patches need.
            body, _ = self._body(source, ns, row[0])
            for channel, version in body["c"]["channel_versions"].items():
                cid = self._name_id(CHANNEL, channel, create=False)
                if cid is not None:
                    self.conn.execute(
                        "INSERT INTO cp_blobs (thread, version, channel, kind, base, data)"
                        " SELECT ?, version, channel, kind, base, data FROM cp_blobs"
                        " WHERE thread = ? AND channel = ? AND version <= ?",
                        (target, source, cid, version),
                    )

    def _fresh_thread(self, thread_id: str) -> int:
        target = self._name_id(THREAD, thread_id, create=True)
        exists = self.conn.execute("SELECT 1 FROM cp_checkpoints WHERE thread = ? LIMIT 1", (target,)).fetchone()
        if exists:
            raise ValueError(f"thread {thread_id!r} already has checkpoints")
        self._forget(target, thread_id)
        return target

    # ------------------------------------------------------------ reading a thread whole (history)

    def thread_exists(self, thread_id: str) -> bool:
        with self.lock:
            self.setup()
            tid = self._name_id(THREAD, thread_id, create=False)
            return tid is not None and self._latest_id(tid, "") is not None

    def lineage(self, thread_id: str, *, ns: str = "") -> list[StoredCheckpoint]:
        """The thread's checkpoints from its first to its latest, following parent links."""
        with self.lock:
            self.setup()
            tid = self._name_id(THREAD, thread_id, create=False)
            latest = self._latest_id(tid, ns) if tid is not None else None
            if latest is None:
                return []
            chain = list(self._chain(tid, ns, latest))
            chain.reverse()
            out = []
            for raw_id, raw_parent, _, _ in chain:  # oldest first, so each body patch finds its base
                body, _ = self._body(tid, ns, raw_id)
                checkpoint, metadata = self._split_body(body, raw_id)
                out.append(StoredCheckpoint(checkpoint["id"], unpack_id(raw_parent), checkpoint, metadata))
            return out

    def stored_writes(self, thread_id: str, *, ns: str = "") -> dict[str, list[StoredWrite]]:
        """Every write of the thread, by the checkpoint it was made from."""
        with self.lock:
            self.setup()
            tid = self._name_id(THREAD, thread_id, create=False)
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
                    for w in self._decode_writes(tid, task_rows, None)
                ]
                for raw_ckpt, task_rows in by_checkpoint.items()
            }

    def channel_value(self, thread_id: str, channel: str, version: Any) -> Any:
        """A channel's stored value at a version (MISSING if none, or if it is a delta marker)."""
        with self.lock:
            self.setup()
            tid = self._name_id(THREAD, thread_id, create=False)
            found = self._blob_value(tid, channel, version) if tid is not None else None
            if found is None or found[0] == DERIVED:
                return MISSING
            return found[1]

    # ------------------------------------------------------------ async API (same code)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self.get_delta_channel_history(config=config, channels=channels)


_COPY_COLUMNS = {
    "cp_checkpoints": "ns, id, parent, snaps, kind, body",
    "cp_blobs": "version, channel, kind, base, data",
    "cp_writes": "ns, ckpt, task, path, entries",
}
