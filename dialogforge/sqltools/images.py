"""What a trajectory's fresh copy is made from: the source with its bookkeeping table, once per source.

Every trajectory of a Tool-Exec run starts from a copy of the same source.
Made the direct way, a copy was a read-only open of the source file, a
backup, then the bookkeeping table created and its row written: three
commits, each a journal written, synced and deleted (4 ms a copy here, half
of it CPU; with a thousand dialogues in flight, most of the SQL threads'
time). A source up to ``IMAGE_MAX_BYTES`` is instead read once into an
in-memory database that already holds the bookkeeping table at its start
(no writes applied, the source's digest), and each copy is one backup of it:
one commit. The image is keyed by the source's digest, so a changed source
gets a new image, never an old one; a larger source is copied the direct way.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from typing import NamedTuple

from dialogforge.sqltools.connect import open_readonly, policy_names

RECORD = "_dialogforge_replay"  # the copy's bookkeeping: writes applied and the digest chain's value after them
IMAGE_MAX_BYTES = 64 << 20  # a source this size or smaller is held in memory while copies are made of it
_IMAGES = 4  # sources held at once (a run has one; tests and tools may touch a few)


class SourceImage(NamedTuple):
    conn: sqlite3.Connection  # in memory; only ever read, by backups
    lock: threading.Lock  # one backup from it at a time


_images: OrderedDict[str, SourceImage] = OrderedDict()
_names: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
_lock = threading.Lock()


def start_record(conn: sqlite3.Connection, origin: str) -> None:
    """The bookkeeping table at a copy's start, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {RECORD} (id INTEGER PRIMARY KEY CHECK (id = 1), "
                     "applied INTEGER NOT NULL, digest TEXT NOT NULL)")
        conn.execute(f"INSERT OR REPLACE INTO {RECORD} VALUES (1, 0, ?)", (origin,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def copy_source(source_db: str | os.PathLike[str], origin: str, into: sqlite3.Connection) -> None:
    """Overwrite ``into`` with the source whose digest is ``origin``, bookkeeping table included."""
    image = _image(source_db, origin)
    if image is None:
        _backup(source_db, into)
        start_record(into, origin)
        return
    with image.lock:
        image.conn.backup(into)


def names_of(origin: str, conn: sqlite3.Connection) -> tuple[frozenset[str], frozenset[str]]:
    """The policy names of a copy of the source ``origin``: the same for every copy (no tool statement
    may change a schema), read from ``conn`` the first time."""
    found = _names.get(origin)
    if found is None:
        found = _names[origin] = policy_names(conn)
    return found


def _image(source_db: str | os.PathLike[str], origin: str) -> SourceImage | None:
    with _lock:
        found = _images.get(origin)
        if found is not None:
            _images.move_to_end(origin)
            return found
        if os.path.getsize(source_db) > IMAGE_MAX_BYTES:
            return None
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        _backup(source_db, conn)
        start_record(conn, origin)
        found = _images[origin] = SourceImage(conn, threading.Lock())
        names_of(origin, conn)  # every copy's, read here once
        while len(_images) > _IMAGES:
            _images.popitem(last=False)  # closed when the last backup from it lets go
        return found


def _backup(source_db: str | os.PathLike[str], into: sqlite3.Connection) -> None:
    source = open_readonly(source_db)
    try:
        source.backup(into)
    finally:
        source.close()
