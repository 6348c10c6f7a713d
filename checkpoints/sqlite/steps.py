"""Storing one step: a checkpoint as the difference from its parent, and a task's writes.

A node's write of a last-value channel is the next checkpoint's value of
that channel: the write is stored first (as a patch on the parent's value
when that is smaller), and once the checkpoint that holds the value exists
the write row just points at its blob, so the bytes are stored once.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Sequence

from langgraph.checkpoint.base import WRITES_IDX_MAP, get_checkpoint_metadata, writes_sort_key

from dialogforge.checkpoints.encoding import encode, pack_id, pack_typed, unpack_typed
from dialogforge.checkpoints.sqlite.heads import Head
from dialogforge.checkpoints.sqlite import branches
from dialogforge.checkpoints.sqlite.schema import CHANNEL, DERIVED, FULL, MISSING, PATCH, PATH, REF, SNAP, Chain, blob_key
from dialogforge.checkpoints.sqlite.writes import Write
from dialogforge.compat.langgraph import DeltaSnapshot

if TYPE_CHECKING:
    from dialogforge.checkpoints.sqlite.saver import LinearSqliteSaver


def store_checkpoint(saver: LinearSqliteSaver, tid: int, ns: str, parent_id: str | None, head: Head | None,
                     checkpoint: dict[str, Any], metadata: dict[str, Any], new_versions: dict[str, Any],
                     config: dict[str, Any]) -> Head:
    """Write the checkpoint row and its new channel values; the thread's new head."""
    values = checkpoint["channel_values"]
    raw_id = pack_id(checkpoint["id"])
    # The usual step: a new child of the line's latest checkpoint, which this saver stored (``Head.fresh``).
    grows = head is not None and head.fresh and raw_id > pack_id(head.checkpoint_id)
    reput = not grows and saver.conn.execute(  # the same checkpoint again (LangGraph's exit durability does that)
        "SELECT 1 FROM cp_checkpoints WHERE thread = ? AND ns = ? AND id = ?", (tid, ns, raw_id)
    ).fetchone() is not None
    # A thread with branches stores every new value under a key of its own: another line may
    # hold the same version, or will (a consumed trigger leaves a version without a value).
    branched = (branches.is_branched(saver, tid) if reput or grows
                else branches.note_if_branch(saver, tid, ns, raw_id, parent_id))
    keys = _inherited_keys(saver, tid, ns, parent_id, head, checkpoint["channel_versions"], new_versions)
    own_keys = saver.values.body(tid, ns, raw_id)[0].get("k", {}) if reput else {}
    new_head = Head(
        checkpoint["id"], {}, Chain(), {},
        dict(head.values) if head else {}, dict(head.chains) if head else {},
    )
    new_head.delta = saver.deltas.advance(parent_id, head)
    new_head.fresh = not reput
    if reput:  # what was stored from it before stays its writes
        new_head.writes = list(saver.writes.of(tid, ns, raw_id))
    snaps: list[str] = []
    reused: list[tuple[Write, Any]] = []
    for channel, version in new_versions.items():
        keys.pop(channel, None)
        value = values.get(channel, MISSING)
        cid = saver.names.id(CHANNEL, channel, create=True)
        if value is MISSING:  # a consumed trigger: a new version without a value
            if branched:  # another line may hold a value under this version: say there is none
                keys[channel] = None
            new_head.values.pop(channel, None)
            new_head.chains.pop(channel, None)
            continue
        if isinstance(value, DeltaSnapshot) and channel in saver.deltas:
            kind, base, data = saver.deltas.encode_snapshot(tid, ns, parent_id, channel, value.value, head, new_head)
            write = None
        elif isinstance(value, DeltaSnapshot):
            kind, base, data, write = FULL, None, encode(saver.serde, value), None
        else:
            kind, base, data, write = _encode_channel(saver, channel, value, head)
        # Stored again in place only under the key this checkpoint itself used, or a version of a
        # thread that never branched; otherwise under a key of its own.
        known = own_keys.get(channel) is not None
        replace = reput and (known or not branched)
        key = saver.values.put(tid, cid, own_keys[channel] if known else version, kind, base, data,
                               replace=replace, own_key=branched and not replace)
        if key != version:
            keys[channel] = key
        if kind == DERIVED:
            saver.memo.remember(("b", tid, cid, key), (DERIVED, None, Chain()))
            new_head.values.pop(channel, None)
            new_head.chains.pop(channel, None)
            continue
        if kind in (FULL, SNAP) and isinstance(value, DeltaSnapshot):
            snaps.append(channel)
        parent_chain = head.chains.get(channel, Chain()) if head else Chain()
        new_head.values[channel] = value
        new_head.chains[channel] = parent_chain.after(kind, len(data))
        saver.memo.remember(("b", tid, cid, key), (kind, value, new_head.chains[channel]))
        if write is not None:
            reused.append((write, key))
    # A private copy: the loop goes on updating its checkpoint's version maps in place.
    body = _copied({
        "c": {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")},
        "m": get_checkpoint_metadata(config, metadata),
    })
    if keys:
        body["k"] = keys
    body_kind, body_data = saver.values.encode_body(body, head.body if head else None, head.body_chain if head else None)
    new_head.body = body
    new_head.body_chain = head.body_chain.after(body_kind, len(body_data)) if head else Chain(0, 0, len(body_data))
    new_head.versions = {channel: blob_key(body, channel) for channel in checkpoint["channel_versions"]}
    saver.conn.execute(
        "INSERT OR REPLACE INTO cp_checkpoints (thread, ns, id, parent, snaps, kind, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (tid, ns, raw_id, pack_id(parent_id) if parent_id else None, ",".join(snaps) or None, body_kind, body_data),
    )
    saver.memo.remember(("c", tid, ns, raw_id), (body, new_head.body_chain))
    if reused:
        _point_writes_at_blobs(saver, tid, ns, parent_id, head, reused)
    return new_head


_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


def _copied(value: Any) -> Any:
    """``copy.deepcopy`` for a checkpoint body: its dicts, lists and scalars copied (or kept, being
    immutable) by type, anything else by ``deepcopy``. Its ~100 nodes a step went through
    deepcopy's memo and dispatch, a tenth of a checkpoint's storing."""
    kind = type(value)
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind in _PLAIN:
        return value
    if kind is list:
        return [_copied(item) for item in value]
    return copy.deepcopy(value)


def _inherited_keys(saver: LinearSqliteSaver, tid: int, ns: str, parent_id: str | None, head: Head | None,
                    versions: dict[str, Any], new_versions: dict[str, Any]) -> dict[str, Any]:
    """The parent's own blob keys of the channels this checkpoint takes over unchanged."""
    if parent_id is None:
        return {}
    if head is not None:
        parent_body = head.body
    elif saver.tree.row(tid, ns, parent_id) is not None:
        parent_body = saver.values.body(tid, ns, pack_id(parent_id))[0]
    else:
        return {}
    parent_versions = parent_body["c"]["channel_versions"]
    return {
        channel: key for channel, key in (parent_body.get("k") or {}).items()
        if channel not in new_versions and channel in versions and parent_versions.get(channel) == versions[channel]
    }


def _point_writes_at_blobs(saver: LinearSqliteSaver, tid: int, ns: str, parent_id: str, head: Head,
                           reused: list[tuple[Write, Any]]) -> None:
    """A write whose value became a stored channel value keeps only a reference to it."""
    for write, version in reused:
        write.kind, write.base, write.payload = REF, version, None
    for task_id in {write.task_id for write, _ in reused}:
        task_writes = [w for w in head.writes if w.task_id == task_id]
        path_id = saver.names.id(PATH, task_writes[0].path, create=True)
        saver.writes.store(tid, ns, pack_id(parent_id), task_id, path_id, task_writes)


def _encode_channel(saver: LinearSqliteSaver, channel: str, value: Any, head: Head | None) -> tuple[int, Any, bytes, Write | None]:
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
            kind, base, data = saver.values.encode_against(head.values[channel], value, base_version, head.chains.get(channel))
            return kind, base, data, None
    return FULL, None, encode(saver.serde, value), None


def store_writes(saver: LinearSqliteSaver, tid: int, ns: str, checkpoint_id: str, head: Head | None,
                 writes: Sequence[tuple[str, Any]], task_id: str, task_path: str) -> None:
    """A task's writes from a checkpoint, merged with what that task stored before."""
    replace_existing = all(channel in WRITES_IDX_MAP for channel, _ in writes)
    path_id = saver.names.id(PATH, task_path, create=True)
    raw_ckpt = pack_id(checkpoint_id)
    # A head knows all its checkpoint's writes (``Head``); without one they are read.
    before = ([w for w in head.writes if w.task_id == task_id] if head is not None
              else saver.writes.of_task(tid, ns, raw_ckpt, task_id))
    kept = {w.idx: w for w in before}
    for position, (channel, value) in enumerate(writes):
        idx = WRITES_IDX_MAP.get(channel, position)
        if idx in kept and not replace_existing:
            continue  # INSERT OR IGNORE, like LangGraph's savers
        kind, base, payload = FULL, None, None
        if head is not None and channel not in saver.deltas and channel in head.values:
            base_version = head.versions.get(channel)
            if base_version is not None:
                kind, base, payload = saver.values.encode_against(
                    head.values[channel], value, base_version, head.chains.get(channel), compress=False
                )
        if payload is None:
            payload = encode(saver.serde, value, compress=False)
        kept[idx] = Write(task_id, idx, task_path, channel, value, kind, base, payload)
    saver.writes.store(tid, ns, raw_ckpt, task_id, path_id, list(kept.values()))
    if head is not None:
        head.writes = [w for w in head.writes if w.task_id != task_id] + list(kept.values())
        head.writes.sort(key=lambda w: writes_sort_key(w.path, w.task_id, w.idx))
