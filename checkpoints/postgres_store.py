"""A shared PostgreSQL store: LangGraph's stock Postgres savers with our strict serde.

Several machines (Ray workers) write one dataset at once, which one SQLite
file cannot take. ``--db postgresql://...`` puts the checkpoints (the
stock ``PostgresSaver`` / ``AsyncPostgresSaver`` tables) and the manifest
(``checkpoints.postgres_manifest``) in one Postgres database. Every
connection failure becomes one ``StoreError`` line naming the server,
with the password left out.
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Iterator
from urllib.parse import urlsplit

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

from checkpoints.serde import strict_serializer
from dialogforge.errors import StoreError

SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 10


def is_postgres_url(db: object) -> bool:
    return isinstance(db, str) and db.startswith(SCHEMES)


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def connect_pg(url: str, **kwargs) -> psycopg.Connection:
    """A connection, or a one-line ``StoreError`` (bad URL, server down, wrong database or user)."""
    try:
        return psycopg.Connection.connect(url, connect_timeout=CONNECT_TIMEOUT_S, **kwargs)
    except (psycopg.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{display_url(url)}: cannot connect to PostgreSQL ({first})") from exc


def check_postgres(url: str) -> None:
    """Refuse an unusable URL before anything is written."""
    connect_pg(url).close()


@contextmanager
def pg_run_lock(url: str) -> Iterator[None]:
    """One driver (generate, resume, fork) per Postgres database at a time, like the SQLite run lock.

    A session advisory lock on its own connection: a killed driver's
    connection closes and the server releases the lock. Re-entrant within
    a process (``fork`` holds it and runs ``resume``). Ray workers never
    take it; they run under their driver's."""
    with _held_guard:
        entry = _held.get(url)
        if entry is not None:
            entry[1] += 1
        else:
            _held[url] = [_acquire_pg_lock(url), 1]
    try:
        yield
    finally:
        with _held_guard:
            entry = _held[url]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[url]
                entry[0].close()  # closing the session releases the lock


_held: dict[str, list] = {}  # url -> [connection holding the lock, depth]
_held_guard = threading.Lock()


def _acquire_pg_lock(url: str) -> psycopg.Connection:
    conn = connect_pg(url, autocommit=True)
    if not conn.execute("SELECT pg_try_advisory_lock(hashtext('dialogforge-run'))").fetchone()[0]:
        conn.close()
        raise StoreError(f"{display_url(url)}: another dialogforge process (generate, resume or fork) is running "
                         "on this database; wait for it to finish or stop it")
    return conn


@contextmanager
def pg_errors(url: str) -> Iterator[None]:
    """Postgres failures at a library edge as one ``StoreError`` line."""
    try:
        yield
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{display_url(url)}: database error ({first})") from exc


@contextmanager
def open_pg_saver(url: str) -> Iterator[Any]:
    """A synchronous saver for reading and small edits (list, show, fork)."""
    from checkpoints.postgres_threads import PostgresThreadSaver  # it imports the manifest, which imports us

    conn = connect_pg(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    try:
        saver = PostgresThreadSaver(conn, serde=strict_serializer())
        saver.setup()
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def open_async_pg_saver(url: str) -> AsyncIterator[AsyncPostgresSaver]:
    """The engine's saver: one connection per process, shared by every trajectory."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, prepare_threshold=0, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S,
        )
    except psycopg.Error as exc:
        raise StoreError(f"{display_url(url)}: cannot connect to PostgreSQL ({str(exc).strip().splitlines()[0]})") from exc
    try:
        saver = AsyncPostgresSaver(conn, serde=strict_serializer())
        await saver.setup()
        yield saver
    finally:
        await conn.close()
