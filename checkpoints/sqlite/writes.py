"""Pending writes: one row per (checkpoint, task), its entries packed together.

An entry is ``[idx, channel id, kind, base, payload]``: the value whole, a
patch on the channel's value at the checkpoint the write was made from, or
(once the next checkpoint stores that value) just a pointer at its blob, so
a node's output is stored once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Sequence

from langgraph.checkpoint.base import SerializerProtocol, writes_sort_key

from dialogforge.checkpoints.encoding import decode, encode, pack_id, unpack_id
from dialogforge.checkpoints.sqlite.names import Names
from dialogforge.checkpoints.sqlite.schema import CHANNEL
from dialogforge.checkpoints.sqlite.values import Values


@dataclass
class Write:
    task_id: str
    idx: int
    path: str
    channel: str
    value: Any
    kind: int
    base: Any
    payload: bytes | None


class Writes:
    def __init__(self, conn: sqlite3.Connection, serde: SerializerProtocol, names: Names, values: Values) -> None:
        self.conn, self.serde, self.names, self.values = conn, serde, names, values

    def of(self, tid: int, ns: str, raw_id: Any, channel: str | None = None) -> list[Write]:
        """The writes made from one checkpoint (of one channel, or all), in LangGraph's order."""
        rows = self.conn.execute(
            "SELECT task, path, entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ?", (tid, ns, raw_id)
        ).fetchall()
        return self.decode(tid, rows, channel)

    def of_task(self, tid: int, ns: str, raw_ckpt: Any, task_id: str) -> list[Write]:
        rows = self.conn.execute(
            "SELECT task, path, entries FROM cp_writes WHERE thread = ? AND ns = ? AND ckpt = ? AND task = ?",
            (tid, ns, raw_ckpt, pack_id(task_id)),
        ).fetchall()
        return self.decode(tid, rows, None)

    def decode(self, tid: int, rows: Sequence[tuple], channel: str | None) -> list[Write]:
        """``(task, path, entries)`` rows as writes, sorted as LangGraph sorts pending writes."""
        wanted = self.names.id(CHANNEL, channel, create=False) if channel is not None else None
        writes = []
        for task, path, data in rows:
            task_id, task_path = unpack_id(task), self.names.name(path)
            for idx, cid, kind, base, payload in decode(self.serde, data):
                if channel is not None and cid != wanted:
                    continue
                name = self.names.name(cid)
                value = self.values.of_write(tid, name, kind, base, payload)
                writes.append(Write(task_id, idx, task_path, name, value, kind, base, payload))
        writes.sort(key=lambda w: writes_sort_key(w.path, w.task_id, w.idx))
        return writes

    def store(self, tid: int, ns: str, raw_ckpt: Any, task_id: str, path_id: int, writes: Sequence[Write]) -> None:
        """A task's writes as one row, replacing the row it had."""
        entries = [
            [w.idx, self.names.id(CHANNEL, w.channel, create=True), w.kind, w.base, w.payload]
            for w in sorted(writes, key=lambda w: w.idx)
        ]
        self.conn.execute(
            "INSERT OR REPLACE INTO cp_writes (thread, ns, ckpt, task, path, entries) VALUES (?, ?, ?, ?, ?, ?)",
            (tid, ns, raw_ckpt, pack_id(task_id), path_id, encode(self.serde, entries)),
        )
