"""PostgreSQL connections: one-line errors that never show the password, and the driver lock.

Every connection failure becomes one ``StoreError`` line naming the server.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import psycopg

from dialogforge.checkpoints.urls import display_url
from dialogforge.errors import StoreError

CONNECT_TIMEOUT_S = 10


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
