"""A shared PostgreSQL store: LangGraph's stock Postgres savers with our strict serde.

Several machines (Ray workers) write one dataset at once, which one SQLite
file cannot take. ``--db postgresql://...`` puts the checkpoints (the
stock ``PostgresSaver`` / ``AsyncPostgresSaver`` tables) and the manifest
(``dialogforge.checkpoints.postgres_manifest``) in one Postgres database.
"""

from __future__ import annotations

from contextlib import asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Iterator

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

from dialogforge.checkpoints.postgres_conn import CONNECT_TIMEOUT_S, connect_pg
from dialogforge.checkpoints.postgres_threads import PostgresThreadSaver
from dialogforge.checkpoints.serde import strict_serializer
from dialogforge.checkpoints.urls import display_url
from dialogforge.errors import StoreError


@contextmanager
def open_pg_saver(url: str) -> Iterator[Any]:
    """A synchronous saver for reading and small edits (list, show, fork)."""
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
