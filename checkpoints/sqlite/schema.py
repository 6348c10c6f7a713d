"""The saver's tables and the constants every part of it shares.

Five tables, all ``WITHOUT ROWID`` and keyed for the way they are read:

* ``cp_names``: interned thread, channel and task-path names (``names``);
* ``cp_checkpoints``: one row per checkpoint, its body (the checkpoint
  without channel values, and its metadata) full or as a patch on its
  parent's body, the parent id, and which delta channels it stores a
  snapshot of (``snaps``);
* ``cp_blobs``: channel values by (thread, blob key, channel); the blob key
  is the channel's LangGraph version, or, for a value whose version another
  line of the same thread already stored (a branch re-uses version numbers),
  a negative integer of its own, named in the checkpoint body (``blob_key``);
* ``cp_writes``: a task's pending writes, one row per (checkpoint, task);
* ``cp_branches``: the checkpoints that started a second line inside their
  thread (their parent already had a child). Created with the first such
  checkpoint, so a database without branches keeps the four tables above,
  exactly as the previous release wrote them.

``Chain`` is how far a stored value is from its last full copy, which is
what decides when the next one is stored whole (a keyframe).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

# How a value or body is stored: whole, as a patch on a base, as a marker that a
# reader rebuilds it (a delta snapshot the writes reproduce), as a pointer at a blob,
# or as a delta snapshot patched on what a reader rebuilds at the parent checkpoint.
FULL, PATCH, DERIVED, REF, SNAP = 0, 1, 2, 3, 4
# What a cp_names row names.
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
BRANCHES_TABLE = "cp_branches"

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

BRANCHES_SCHEMA = """
CREATE TABLE IF NOT EXISTS cp_branches (
    thread INTEGER NOT NULL, ns TEXT NOT NULL, id BLOB NOT NULL,
    PRIMARY KEY (thread, ns, id)) WITHOUT ROWID
"""


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()  # a delta channel's reader value the saver has not tracked
MISSING = object()  # no stored value


def create_tables(conn: sqlite3.Connection) -> None:
    """Create what is missing; a database that has every table is left as it is."""
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not set(TABLES) <= present:
        conn.executescript(SCHEMA)
        conn.commit()


def blob_key(body: dict[str, Any], channel: str) -> Any:
    """Where a checkpoint's value of ``channel`` is stored: under its version, unless the body
    names another key (``"k"``: the value was stored on a branch that re-used the version), or
    None: no value (a channel it does not have, or a consumed trigger on a branch)."""
    keys = body.get("k")
    if keys and channel in keys:
        return keys[channel]
    return body["c"]["channel_versions"].get(channel)


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
