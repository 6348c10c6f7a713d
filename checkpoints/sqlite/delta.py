"""``DeltaChannel`` (the message list): LangGraph's contract, without storing its snapshots twice.

Each step stores only a delta channel's writes, and a reader rebuilds the
value by replaying its ancestors' writes from the nearest stored snapshot
(``channel_history``). LangGraph also asks for a periodic snapshot; that
snapshot is checked against the replay: one the replay reproduces exactly
is stored as a marker (``DERIVED``, no bytes). One that differs is what a
branch inside the thread starts with (its parent's writes belong to another
line): it is stored as a patch on what a reader rebuilds at the parent
(``SNAP``, a few bytes, since it is that very list), or whole if that does
not pay. What a reader rebuilds is always what LangGraph expects.

To check without reading the thread back, the saver tracks, per thread in
flight, a reader's value at some checkpoint and the write batches since
(``advance``); a checkpoint whose history is not tracked is checked by
reading it (``reader_value``).
"""

from __future__ import annotations

from typing import Any, Mapping

from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import DeltaChannelHistory

from dialogforge.checkpoints import patches
from dialogforge.checkpoints.encoding import encode, pack_id
from dialogforge.checkpoints.sqlite.heads import Head
from dialogforge.checkpoints.sqlite.names import Names
from dialogforge.checkpoints.sqlite.schema import CHANNEL, DERIVED, FULL, MISSING, SNAP, UNKNOWN, blob_key
from dialogforge.checkpoints.sqlite.tree import CHAIN_SQL, Tree
from dialogforge.checkpoints.sqlite.values import Values
from dialogforge.checkpoints.sqlite.writes import Writes
from dialogforge.compat.langgraph import DeltaSnapshot


class Deltas:
    def __init__(self, specs: Mapping[str, DeltaChannel], names: Names, values: Values, writes: Writes, tree: Tree) -> None:
        self.specs = dict(specs)
        self.names, self.values, self.writes, self.tree = names, values, writes, tree

    def __contains__(self, channel: str) -> bool:
        return channel in self.specs

    def loaded(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The tracks of a checkpoint read back: known where it stores a snapshot, else UNKNOWN."""
        return {
            name: (values[name].value, []) if isinstance(values.get(name), DeltaSnapshot) else UNKNOWN
            for name in self.specs
        }

    def advance(self, parent_id: str | None, head: Head | None) -> dict[str, Any]:
        """Each delta channel's reader value at the new checkpoint, as (base, batches) or UNKNOWN."""
        if parent_id is None:
            return {name: (spec.from_checkpoint(None).value, []) for name, spec in self.specs.items()}
        advanced = {}
        for name in self.specs:
            track = head.delta.get(name, UNKNOWN) if head else UNKNOWN
            if track is UNKNOWN:
                advanced[name] = UNKNOWN
                continue
            base, batches = track
            advanced[name] = (base, batches + [w.value for w in head.writes if w.channel == name])
        return advanced

    def encode_snapshot(self, tid: int, ns: str, parent_id: str | None, channel: str, snapshot: Any,
                        head: Head | None, new_head: Head) -> tuple[int, Any, bytes | None]:
        """(kind, base, data) of a snapshot LangGraph asked for: a marker when replaying the
        ancestors' writes rebuilds it, else a patch on what a reader rebuilds at the parent
        (a branch's first checkpoint: the same list, so a few bytes), else the whole list."""
        track = new_head.delta.get(channel, UNKNOWN)
        new_head.delta[channel] = (snapshot, [])
        stored_parent = parent_id is not None and self.tree.row(tid, ns, parent_id) is not None
        at_parent = MISSING
        if track is UNKNOWN and stored_parent:
            raw_parent = pack_id(parent_id)
            at_parent = self.reader_value(tid, ns, raw_parent, channel)
            track = (at_parent, [w.value for w in self.writes.of(tid, ns, raw_parent, channel)])
        if track is not UNKNOWN and patches.same(self._replay(channel, *track), snapshot):
            return DERIVED, None, None
        if stored_parent:
            if at_parent is MISSING:
                parent_track = head.delta.get(channel, UNKNOWN) if head is not None else UNKNOWN
                at_parent = (self._replay(channel, *parent_track) if parent_track is not UNKNOWN
                             else self.reader_value(tid, ns, pack_id(parent_id), channel))
            patch = patches.diff(at_parent, snapshot)
            if not patches.is_replacement(patch):
                return SNAP, None, encode(self.values.serde, [ns, pack_id(parent_id), patch])
        return FULL, None, encode(self.values.serde, DeltaSnapshot(snapshot))

    def _replay(self, channel: str, base: Any, batches: list) -> Any:
        rebuilt = self.specs[channel].from_checkpoint(DeltaSnapshot(base))
        rebuilt.replay_writes([("", channel, batch) for batch in batches])
        return rebuilt.value

    def reader_value(self, tid: int, ns: str, raw_id: Any, channel: str) -> Any:
        """The value a reader rebuilds for a delta channel at a stored checkpoint."""
        body, _ = self.values.body(tid, ns, raw_id)
        key = blob_key(body, channel)
        found = self.values.read(tid, channel, key) if key is not None else None
        spec = self.specs[channel]
        if found is not None and found[0] != DERIVED:
            return spec.from_checkpoint(found[1]).value
        history = self.channel_history(tid, ns, raw_id, channel)
        rebuilt = spec.from_checkpoint(history.get("seed"))
        rebuilt.replay_writes(history["writes"])
        return rebuilt.value

    def channel_history(self, tid: int, ns: str, raw_target: Any, channel: str) -> DeltaChannelHistory:
        """Writes of ``channel`` on the target's ancestors back to the nearest stored value (the seed)."""
        stop_depth = 0
        seed_id = None
        for raw_id, _, snaps, depth in self.tree.ancestors(tid, ns, raw_target):
            stop_depth = depth
            if depth >= 1 and snaps and channel in snaps.split(","):
                seed_id = raw_id
                break
        entry: DeltaChannelHistory = {"writes": []}
        if seed_id is not None:
            body, _ = self.values.body(tid, ns, seed_id)
            found = self.values.read(tid, channel, blob_key(body, channel))
            entry["seed"] = found[1]
        if stop_depth < 1 or self.names.id(CHANNEL, channel, create=False) is None:
            return entry
        rows = self.values.conn.execute(
            CHAIN_SQL + " SELECT chain.depth, w.task, w.path, w.entries"
            " FROM chain CROSS JOIN cp_writes w ON w.thread = :t AND w.ns = :ns AND w.ckpt = chain.id"
            " WHERE chain.depth BETWEEN 1 AND :stop",
            {"t": tid, "ns": ns, "target": raw_target, "limit": stop_depth, "stop": stop_depth},
        ).fetchall()
        by_depth: dict[int, list[tuple]] = {}
        for depth, task, path, data in rows:
            by_depth.setdefault(depth, []).append((task, path, data))
        collected = []
        for depth in sorted(by_depth, reverse=True):
            collected.extend(self.writes.decode(tid, by_depth[depth], channel))
        entry["writes"] = [(w.task_id, w.channel, w.value) for w in collected]
        return entry
