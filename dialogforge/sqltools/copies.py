"""Where trajectory copies live on disk, and how one is opened.

A copy is ``workdir/<key>.sqlite``. Keys come from outside (thread ids,
fork names), so one that is not a plain file name is hashed rather than
trusted as a path. A file that is not a database is only a broken copy:
it is deleted and started afresh, since the write log can rebuild it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path

from dialogforge.sqltools.connect import apply_limits

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def copy_path(workdir: str | os.PathLike[str], key: str) -> Path:
    """``workdir/<key>.sqlite``; a key unsafe as a file name is hashed instead."""
    name = key if _SAFE_KEY.match(key) else "key-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return Path(workdir) / f"{name}.sqlite"


def remove_copy(workdir: str | os.PathLike[str], key: str) -> None:
    """Delete a trajectory's copy (and any journal), e.g. once it is exported."""
    unlink_copy(copy_path(workdir, key))


def unlink_copy(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def connect_copy(path: Path, max_value_bytes: int) -> sqlite3.Connection:
    """A read-write connection to a copy, with hard limits and FK enforcement.

    A file that is not a database is only a broken copy: start it afresh.
    """
    # Not bound to the opening thread: a trajectory's copy stays open across its calls, each run
    # in whichever worker thread is free, one at a time (``SqlToolExecutor``).
    try:
        return _configure(sqlite3.connect(path, isolation_level=None, check_same_thread=False), max_value_bytes)
    except sqlite3.DatabaseError:
        unlink_copy(path)
        return _configure(sqlite3.connect(path, isolation_level=None, check_same_thread=False), max_value_bytes)


def _configure(conn: sqlite3.Connection, max_value_bytes: int) -> sqlite3.Connection:
    try:
        apply_limits(conn, max_value_bytes)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn
