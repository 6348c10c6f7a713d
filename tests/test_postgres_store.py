"""``--db postgresql://...``: what only PostgreSQL has (URLs, its driver lock).

The operations every store shares (generate, resume, history, fork, export,
stats) run over SQLite, SQLite shards and Postgres in ``test_stores.py``.
A real PostgreSQL server (dialogforge/testing/postgres_server.py) is used.
"""

from __future__ import annotations

import psycopg

from dialogforge.checkpoints.store_kinds import driver_lock
from dialogforge.config import GenerationSettings
from dialogforge.records import Limits
from dialogforge.runs.generate import plan_generation
from tests.support.checkpoints import SCRIPTED
from tests.support.postgres import rows

SETTINGS = GenerationSettings(n=4, seed=7, concurrency=4, limits=Limits(max_user_turns=8, max_tasks=2))


def _one_error_line(result) -> str:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dialogforge: error: "), result.err
    return lines[0]


def test_bad_postgres_urls_are_one_line_and_write_nothing(postgres_server, pg_url, run_cli):
    dead = "postgresql://postgres:secret@127.0.0.1:1/nothing"
    line = _one_error_line(run_cli("generate", "--backend", "scripted", "--n", "1", "--db", dead))
    assert "cannot connect to PostgreSQL" in line and "secret" not in line
    missing = postgres_server.url("no_such_database")
    assert "no_such_database" in _one_error_line(run_cli("generate", "--backend", "scripted", "--n", "1", "--db", missing))
    line = _one_error_line(run_cli("resume", "--db", pg_url))  # a reachable database without our tables
    assert "no dialogforge runs" in line
    with psycopg.connect(pg_url) as conn:  # and reading it did not create them
        assert conn.execute("SELECT to_regclass('dialogforge_runs')").fetchone()[0] is None


def test_one_driver_at_a_time_per_postgres_database(pg_url, run_cli_process):
    run_cli = run_cli_process  # the lock is re-entrant within a process: another process must meet it
    plan_generation(pg_url, SETTINGS, SCRIPTED)
    with driver_lock(pg_url):  # a generate, resume or Ray driver running on it
        line = _one_error_line(run_cli("resume", "--db", pg_url))
        assert "another dialogforge process" in line
        assert {r["status"] for r in rows(pg_url)} == {"pending"}
    resumed = run_cli("resume", "--db", pg_url, "--quiet")  # released with its connection
    assert resumed.code == 0 and "4 done" in resumed.out, resumed.err
