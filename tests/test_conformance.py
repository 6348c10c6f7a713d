"""LangGraph's official checkpointer conformance suite over the project's savers.

``langgraph-checkpoint-conformance`` detects which capabilities a saver
offers (the methods it overrides) and runs that capability's tests; every
offered capability must pass all of them. Our SQLite saver offers all
eight; the Postgres store (LangGraph's ``AsyncPostgresSaver``) offers the
base five and ``prune`` (``fork`` copies Postgres threads its own way:
``dialogforge.checkpoints.postgres_threads``).
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from langgraph.checkpoint.conformance import checkpointer_test, validate

from dialogforge.checkpoints.sqlite_file import connect
from dialogforge.checkpoints.sqlite_savers import new_saver

OFFERED = {"put", "put_writes", "get_tuple", "list", "delete_thread", "copy_thread", "delete_for_runs", "prune"}


@checkpointer_test(name="LinearSqliteSaver")
async def linear_sqlite_saver():
    with tempfile.TemporaryDirectory() as folder:
        conn = connect(Path(folder) / "conformance.db")
        try:
            yield new_saver(conn)
        finally:
            conn.close()


def _results(report) -> dict[str, tuple]:
    return {name: (r.detected, r.passed, r.tests_passed, r.tests_failed, r.failures) for name, r in report.results.items()}


async def test_the_sqlite_saver_passes_every_capability_it_offers():
    report = await validate(linear_sqlite_saver)
    results = _results(report)
    print({name: (r[2], r[3]) for name, r in results.items()})
    assert {name for name, r in results.items() if r[0]} == OFFERED
    failing = {name: r[4] for name, r in results.items() if r[0] and not r[1]}
    assert not failing, failing


async def test_the_postgres_store_passes_every_capability_it_offers(pg_url):
    """The engine's saver on ``--db postgresql://...``: LangGraph's own, with our strict serde."""
    from dialogforge.checkpoints.postgres_store import open_async_pg_saver

    @checkpointer_test(name="dialogforge Postgres store")
    async def postgres_store():
        async with open_async_pg_saver(pg_url) as saver:
            yield saver

    results = _results(await validate(postgres_store))
    print({name: (r[2], r[3]) for name, r in results.items()})
    assert {name for name, r in results.items() if r[0]} == OFFERED - {"copy_thread", "delete_for_runs"}
    failing = {name: r[4] for name, r in results.items() if r[0] and not r[1]}
    assert not failing, failing
