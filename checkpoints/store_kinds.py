"""One ``--db`` value, three kinds of store: a SQLite file, a sharded SQLite dataset
(``dialogforge.checkpoints.shards``, one file per Ray worker) or a PostgreSQL URL.

The engine, ``generate`` and ``resume`` open their manifest and saver
through these functions, so they run unchanged on either store. A SQLite
file is run by one process at a time (``dialogforge.checkpoints.runlock``); a Postgres
database is shared by many workers, each running its own trajectories, so
it takes no database-wide lock.

The savers (LangGraph) are imported when a saver is opened, and the
PostgreSQL modules (psycopg) only for a Postgres URL, so a command that reads
only the manifest (``list``) starts without either.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from dialogforge.checkpoints.db_errors import check_integrity, database_errors
from dialogforge.checkpoints.manifest import Manifest
from dialogforge.checkpoints.urls import is_postgres_url
from dialogforge.checkpoints.runlock import run_lock
from dialogforge.checkpoints.shards import ShardedManifest, check_shards, is_sharded, shard_paths
from dialogforge.checkpoints.sqlite_file import check_db_path

if TYPE_CHECKING:
    from dialogforge.checkpoints.postgres_manifest import PostgresManifest

Db = str | Path


def check_store(db: Db, *, must_exist: bool) -> None:
    """Refuse an unusable ``--db`` (path or URL) with one line, before anything is written."""
    if is_sharded(db):
        check_shards(db)
    elif is_postgres_url(db):
        from dialogforge.checkpoints.postgres_conn import check_postgres
        from dialogforge.checkpoints.postgres_manifest import PostgresManifest

        if must_exist:
            PostgresManifest(str(db)).close()  # refuses a database without dialogforge runs
        else:
            check_postgres(str(db))
    else:
        check_db_path(db, must_exist=must_exist)


def open_manifest(db: Db, *, create: bool = False) -> Manifest | PostgresManifest | ShardedManifest:
    if is_sharded(db) and not create:
        return ShardedManifest(db)
    if is_postgres_url(db):
        from dialogforge.checkpoints.postgres_manifest import PostgresManifest

        return PostgresManifest(str(db), create=create)
    return Manifest(db, create=create)


def prepare_store(db: Db) -> None:
    """Create the store's tables once, before any worker starts (workers racing on DDL would fail)."""
    open_manifest(db, create=True).close()
    with store_saver(db):
        pass


def store_saver(db: Db) -> AbstractContextManager[Any]:
    """A synchronous saver (reading, forks)."""
    if is_postgres_url(db):
        from dialogforge.checkpoints.postgres_store import open_pg_saver

        return open_pg_saver(str(db))
    from dialogforge.checkpoints.sqlite_savers import open_saver

    return open_saver(db)


@asynccontextmanager
async def async_store_saver(db: Db) -> AsyncIterator[Any]:
    """The engine's saver for this store."""
    if is_postgres_url(db):
        from dialogforge.checkpoints.postgres_store import open_async_pg_saver

        opener = open_async_pg_saver(str(db))
    else:
        from dialogforge.checkpoints.sqlite_savers import open_async_saver

        opener = open_async_saver(db)
    async with opener as saver:
        yield saver


def store_lock(db: Db) -> AbstractContextManager[None]:
    """SQLite: one running process per file. Postgres: none (workers run disjoint trajectories)."""
    return nullcontext() if is_postgres_url(db) else run_lock(db)


def driver_lock(db: Db) -> AbstractContextManager[None]:
    """What a driver (generate, resume, fork, a Ray run) holds for its whole run: SQLite's run lock
    (re-entrant, the engine takes it again), or Postgres's advisory lock (the workers take none)."""
    if is_sharded(db):  # each shard's worker (or resume) takes that shard's own lock
        return nullcontext()
    if is_postgres_url(db):
        from dialogforge.checkpoints.postgres_conn import pg_run_lock

        return pg_run_lock(str(db))
    return run_lock(db)


def store_errors(db: Db) -> AbstractContextManager[None]:
    """The store's failures as one ``StoreError`` line."""
    if is_postgres_url(db):
        from dialogforge.checkpoints.postgres_conn import pg_errors

        return pg_errors(str(db))
    return database_errors(db)


def check_store_integrity(db: Db) -> None:
    """SQLite: ``PRAGMA quick_check`` before writing. Postgres keeps its own integrity."""
    if is_sharded(db):
        for path in shard_paths(db):
            check_integrity(path)
    elif not is_postgres_url(db):
        check_integrity(db)
