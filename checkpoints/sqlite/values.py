"""Channel values and checkpoint bodies stored as patches on their previous version, with keyframes.

A changed value is stored as a structural patch (``dialogforge.checkpoints.patches``)
on the value it replaces, and whole (a keyframe) whenever the patches since
the last keyframe outweigh it, so reading any version walks a bounded chain.
Checkpoint bodies (the checkpoint without its values, and its metadata) are
stored the same way, each on its parent's body. Decoded values are kept in a
small LRU memo, so walking a thread oldest first decodes each patch once.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from typing import Any, Callable

from langgraph.checkpoint.base import SerializerProtocol

from dialogforge.checkpoints import patches
from dialogforge.checkpoints.encoding import decode, encode, unpack_id
from dialogforge.checkpoints.sqlite.names import Names
from dialogforge.checkpoints.sqlite.schema import (
    BODY_KEYFRAME_RATIO, CHANNEL, DERIVED, FULL, KEYFRAME_RATIO, MAX_BODY_CHAIN, MAX_CHAIN, MAX_WALK, PATCH, REF,
    SNAP, VALUE_MEMO, Chain,
)
from dialogforge.compat.langgraph import DeltaSnapshot


class Memo:
    """Decoded values and bodies, least recently used first out."""

    def __init__(self, size: int = VALUE_MEMO) -> None:
        self.size = size
        self._items: OrderedDict[tuple, tuple] = OrderedDict()

    def recall(self, key: tuple) -> tuple | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def remember(self, key: tuple, result: tuple) -> None:
        self._items[key] = result
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def forget_thread(self, tid: int) -> None:
        for key in [k for k in self._items if k[1] == tid]:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()


class Values:
    def __init__(self, conn: sqlite3.Connection, serde: SerializerProtocol, names: Names, memo: Memo) -> None:
        self.conn, self.serde, self.names, self.memo = conn, serde, names, memo
        # (tid, ns, raw checkpoint id, channel) -> what a reader rebuilds there: the base of a SNAP
        self.reader_value: Callable[[int, str, Any, str], Any] | None = None

    # ------------------------------------------------------------ channel values

    def read(self, tid: int, channel: str, version: Any) -> tuple[int, Any, Chain] | None:
        """(kind, value, chain) of a channel version; None if nothing is stored for it."""
        cid = self.names.id(CHANNEL, channel, create=False)
        if cid is None:
            return None
        if (found := self.memo.recall(("b", tid, cid, version))) is not None:
            return found
        pending: list[tuple[Any, list, int]] = []  # (version, patch, bytes), newest first
        current = version
        while True:
            if pending and (found := self.memo.recall(("b", tid, cid, current))) is not None:
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
            if kind == SNAP:
                if pending:
                    raise LookupError(f"stored value {channel}@{current} is a snapshot, not a base")
                ns, raw_parent, patch = decode(self.serde, data)
                value = DeltaSnapshot(patches.apply(self.reader_value(tid, ns, raw_parent, channel), patch))
                result = (SNAP, value, Chain(0, 0, len(data)))
                self.memo.remember(("b", tid, cid, version), result)
                return result
            if kind == DERIVED:
                if pending:
                    raise LookupError(f"stored value {channel}@{current} is a marker, not a base")
                result = (DERIVED, None, Chain())
                self.memo.remember(("b", tid, cid, version), result)
                return result
            if kind == FULL:
                value, chain = decode(self.serde, data), Chain(0, 0, len(data))
                self.memo.remember(("b", tid, cid, current), (FULL, value, chain))
                break
            pending.append((current, decode(self.serde, data), len(data)))
            current = base
            if len(pending) > MAX_WALK:
                raise LookupError(f"stored value chain of {channel}@{version} does not end")
        self._apply_patches(pending, value, chain, lambda key, v, c: (("b", tid, cid, key), (PATCH, v, c)))
        return self.memo.recall(("b", tid, cid, version))

    def of_write(self, tid: int, channel: str, kind: int, base: Any, payload: bytes | None) -> Any:
        """A stored write's value: whole, a pointer at a stored value, or a patch on one."""
        if kind == FULL:
            return decode(self.serde, payload)
        found = self.read(tid, channel, base)
        if found is None or found[0] == DERIVED:
            raise LookupError(f"a write of {channel} refers to missing stored value {base}")
        if kind == REF:
            return found[1]
        if kind == PATCH:
            return patches.apply(found[1], decode(self.serde, payload))
        raise LookupError(f"unknown write kind {kind}")

    def encode_against(self, old: Any, new: Any, base_version: Any, chain: Chain | None, *,
                       compress: bool = True) -> tuple[int, Any, bytes]:
        """(kind, base, data): a patch on ``old`` while the chain allows one, else the whole value."""
        if not (new is None or isinstance(new, (bool, int, float, str))):
            patch = patches.diff(old, new)
            if chain is not None and not patches.is_replacement(patch):
                data = encode(self.serde, patch, compress=compress)
                if chain.allows(len(data), KEYFRAME_RATIO, MAX_CHAIN):
                    return PATCH, base_version, data
        return FULL, None, encode(self.serde, new, compress=compress)

    def put(self, tid: int, cid: int, key: Any, kind: int, base: Any, data: bytes | None, *,
            replace: bool, own_key: bool) -> Any:
        """Store a channel value under ``key`` (its version); the key it was stored under.

        ``replace`` stores the same checkpoint again (LangGraph re-puts one at exit). A value of a
        branched thread (``own_key``: branches re-use version numbers), or one whose key another
        checkpoint already used, gets a key of its own: a negative integer, which no version is."""
        sql = "INSERT INTO cp_blobs (thread, version, channel, kind, base, data) VALUES (?, ?, ?, ?, ?, ?)"
        if replace:
            self.conn.execute(sql.replace("INSERT", "INSERT OR REPLACE"), (tid, key, cid, kind, base, data))
            return key
        if not own_key:
            try:
                self.conn.execute(sql, (tid, key, cid, kind, base, data))
                return key
            except sqlite3.IntegrityError:
                pass
        lowest = self.conn.execute(  # the index's first entry: no scan of the thread's keys
            "SELECT version FROM cp_blobs WHERE thread = ? AND version < 0 ORDER BY version LIMIT 1", (tid,)
        ).fetchone()
        key = (lowest[0] if lowest else 0) - 1
        self.conn.execute(sql, (tid, key, cid, kind, base, data))
        return key

    # ------------------------------------------------------------ checkpoint bodies

    def body(self, tid: int, ns: str, raw_id: Any) -> tuple[dict[str, Any], Chain]:
        """A checkpoint's body ({"c": checkpoint without values, "m": metadata}), following its patch chain."""
        key = ("c", tid, ns, raw_id)
        if (found := self.memo.recall(key)) is not None:
            return found
        pending: list[tuple[Any, list, int]] = []
        current = raw_id
        while True:
            if pending and (found := self.memo.recall(("c", tid, ns, current))) is not None:
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
                self.memo.remember(("c", tid, ns, current), (body, chain))
                break
            pending.append((current, decode(self.serde, data), len(data)))
            current = parent
            if len(pending) > MAX_WALK:
                raise LookupError(f"checkpoint {unpack_id(raw_id)}: body chain does not end")
        self._apply_patches(pending, body, chain, lambda step_id, b, c: (("c", tid, ns, step_id), (b, c)))
        return self.memo.recall(key)

    def _apply_patches(self, pending: list[tuple[Any, list, int]], value: Any, chain: Chain,
                       entry: Callable[[Any, Any, Chain], tuple[tuple, tuple]]) -> None:
        """Apply the patches collected newest first on the way down, oldest first, remembering each result."""
        for key, patch, size in reversed(pending):
            value = patches.apply(value, patch)
            chain = chain.after(PATCH, size)
            self.memo.remember(*entry(key, value, chain))

    def encode_body(self, body: dict[str, Any], parent_body: dict[str, Any] | None, parent_chain: Chain | None) -> tuple[int, bytes]:
        """(kind, data): the body as a patch on its parent's while the chain allows one, else whole."""
        if parent_body is not None:
            patch = patches.diff(parent_body, body)
            if not patches.is_replacement(patch):
                data = encode(self.serde, patch)
                if parent_chain.allows(len(data), BODY_KEYFRAME_RATIO, MAX_BODY_CHAIN):
                    return PATCH, data
        return FULL, encode(self.serde, body)
