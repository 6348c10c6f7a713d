"""The project's LangGraph checkpointer on a SQLite file, opened for the engine, for reading, or for you.

Kept apart from ``sqlite_file`` (the path checks and the connection) so the
commands that only read the manifest (``list``) never load LangGraph.
"""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

from dialogforge.channels import DELTA_CHANNELS
from dialogforge.checkpoints.sqlite import LinearSqliteSaver
from dialogforge.checkpoints.serde import strict_serializer
from dialogforge.checkpoints.sqlite_file import check_db_path, connect


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
