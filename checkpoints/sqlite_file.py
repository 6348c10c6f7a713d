"""Opening a dialogforge database safely.

One SQLite file holds LangGraph's checkpoints and our run manifest. Before
anything is written we check that the path is usable and that an existing
file is ours, so a wrong ``--db`` never damages someone else's database.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

from dialogforge.checkpoints.sqlite import TABLES as SAVER_TABLES
from dialogforge.checkpoints.sqlite import LinearSqliteSaver
from dialogforge.checkpoints.urls import display_url, is_postgres_url
from dialogforge.checkpoints.serde import strict_serializer
from dialogforge.errors import StoreError
from dialogforge.channels import DELTA_CHANNELS

_SQLITE_HEADER = b"SQLite format 3\x00"
OUR_TABLES = {"runs", "checkpoints", "writes", *SAVER_TABLES}
# How long to wait for another writer; tests shorten it to see "locked" quickly.
BUSY_TIMEOUT_S = float(os.environ.get("DIALOGFORGE_BUSY_TIMEOUT_S", "30"))


def check_db_path(path: str | Path, *, must_exist: bool) -> Path:
    """Refuse a path we cannot use, with a one-line reason, before writing anything."""
    if is_postgres_url(path):  # a command that reads SQLite only (validate, view, copies)
        raise StoreError(f"{display_url(str(path))}: this command needs a SQLite --db; on PostgreSQL use generate, "
                         "resume, list, show, history, fork, export or stats")
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a database file")
    if not path.exists():
        if must_exist:
            raise StoreError(f"{path}: no such database")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise StoreError(f"{path}: directory {parent} does not exist")
        if not _can_create_in(parent):
            raise StoreError(f"{path}: directory {parent} is not writable")
        return path
    with open(path, "rb") as handle:
        header = handle.read(len(_SQLITE_HEADER))
    if header and header != _SQLITE_HEADER:
        raise StoreError(f"{path}: not a SQLite database")
    parent = path.parent if str(path.parent) else Path(".")
    if not _can_create_in(parent):  # the WAL journal lives beside the database, even to read it
        raise StoreError(f"{path}: directory {parent} is read-only; the database needs its journal files beside it "
                         "(copy it to a writable directory)")
    if header:
        _check_ours(path)
    return path


def _can_create_in(directory: Path) -> bool:
    """Try it: permission bits lie to root and on read-only mounts."""
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".dialogforge-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


# Columns a ``runs`` table must have to be our manifest (another program's "runs" is not).
_RUNS_KEY_COLUMNS = {"thread_id", "run_id", "status"}


def _check_ours(path: Path) -> None:
    # Read-write but read-only in effect (only SELECTs): a read-only connection that is the
    # last to close a WAL database leaves its -wal and -shm files behind, so a refused
    # command would leave files beside the user's database.
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            runs = {row[1] for row in conn.execute("PRAGMA table_info(runs)")} if "runs" in tables else set()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: unreadable database ({exc})") from exc
    if tables and not (tables & OUR_TABLES):
        raise StoreError(f"{path}: not a dialogforge database (tables: {', '.join(sorted(tables)[:5])})")
    if "runs" in tables and not _RUNS_KEY_COLUMNS <= runs:
        raise StoreError(f"{path}: not a dialogforge database (its runs table has columns {', '.join(sorted(runs)[:6])})")


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def new_saver(conn: sqlite3.Connection) -> LinearSqliteSaver:
    """Our checkpointer (``dialogforge.checkpoints.sqlite``): storage linear in dialogue length."""
    saver = LinearSqliteSaver(conn, serde=strict_serializer(), delta_channels=DELTA_CHANNELS)
    saver.setup()
    return saver


@contextmanager
def open_saver(path: str | Path) -> Iterator[LinearSqliteSaver]:
    """A synchronous saver for reading (list, show, history) and small edits (fork)."""
    conn = connect(check_db_path(path, must_exist=True))
    try:
        yield new_saver(conn)
    finally:
        conn.close()


@asynccontextmanager
async def open_async_saver(path: str | Path) -> AsyncIterator[LinearSqliteSaver]:
    """The saver the engine uses; one per process, shared by every trajectory.

    Its async methods run each call as one short transaction on this
    connection, so no transaction stays open across an await."""
    conn = connect(check_db_path(path, must_exist=False))
    try:
        yield new_saver(conn)
    finally:
        conn.close()


@contextmanager
def sqlite_checkpointer(path: str | Path) -> Iterator[LinearSqliteSaver]:
    """The project's LangGraph checkpointer on a new or existing SQLite file, for graphs compiled by hand.

    ``with sqlite_checkpointer("run.db") as saver: graph = build_graph().compile(checkpointer=saver)``.
    A file that is not ours, or a path we cannot write beside, is refused with one line first.
    """
    conn = connect(check_db_path(path, must_exist=False))
    try:
        yield new_saver(conn)
    finally:
        conn.close()
