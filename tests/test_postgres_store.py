"""``--db postgresql://...``: a real PostgreSQL server (dialogforge/testing/postgres_server.py) holds checkpoints and manifest.

The same run on Postgres and on SQLite must give identical trajectories;
planned rows nobody started are finished by ``resume``; a bad URL is one
line and exit 2.
"""

from __future__ import annotations

import json

import psycopg

from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from dialogforge.checkpoints.store_kinds import driver_lock, open_manifest
from dialogforge.config import GenerationSettings
from dialogforge.dataset.export import export
from dialogforge.dataset.stats import collect_stats
from dialogforge.runs.generate import generate, plan_generation
from dialogforge.records import Limits
from tests.support.checkpoints import SCRIPTED, counters_problem, dialogue_problem
from tests.support.postgres import checkpointed_threads, dialogues, rows

SETTINGS = GenerationSettings(n=4, seed=7, concurrency=4, limits=Limits(max_user_turns=8, max_tasks=2))


def test_generate_on_postgres_matches_the_same_run_on_sqlite(pg_url, tmp_path, run_cli):
    result = generate(pg_url, SETTINGS, SCRIPTED)
    assert (result.summary.done, result.summary.failed) == (4, 0)
    generate(tmp_path / "ref.db", SETTINGS, SCRIPTED)
    assert dialogues(pg_url) == dialogues(tmp_path / "ref.db")
    assert checkpointed_threads(pg_url) == 4
    for row in rows(pg_url):
        state = load_state(pg_url, row["thread_id"])
        assert row["status"] == "done" and row["messages"] == len(state.messages)
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None
    listed = run_cli("list", "--db", pg_url, "--json")
    assert listed.code == 0, listed.err
    assert sorted(r["thread_id"] for r in listed.json()) == sorted(result.thread_ids)
    shown = run_cli("show", result.thread_ids[0], "--db", pg_url)
    assert shown.code == 0 and shown.out.strip(), shown.err
    out, ref_out = tmp_path / "pg.jsonl", tmp_path / "ref.jsonl"
    done = run_cli("export", "--db", pg_url, "--format", "openai", "--out", str(out))
    assert done.code == 0, done.err
    stats = run_cli("stats", "--db", pg_url, "--json")
    assert stats.code == 0, stats.err
    export(tmp_path / "ref.db", ref_out, "openai")
    assert out.read_text() == ref_out.read_text() and out.read_text().count("\n") == 4
    assert stats.json() == json.loads(collect_stats(tmp_path / "ref.db").to_json())
    assert "needs a SQLite --db" in _one_error_line(run_cli("validate", "--db", pg_url))


def test_resume_on_postgres_finishes_planned_rows(pg_url, tmp_path, run_cli):
    plan = plan_generation(pg_url, SETTINGS, SCRIPTED)  # recorded, never run: a driver killed after planning
    assert {r["status"] for r in rows(pg_url)} == {"pending"} and checkpointed_threads(pg_url) == 0
    resumed = run_cli("resume", "--db", pg_url, "--quiet")
    assert resumed.code == 0, resumed.err
    assert "resumed 4 trajectories: 4 done, 0 failed" in resumed.out
    generate(tmp_path / "ref.db", SETTINGS, SCRIPTED)
    assert dialogues(pg_url) == dialogues(tmp_path / "ref.db")
    assert sorted(r["thread_id"] for r in rows(pg_url)) == plan.thread_ids
    again = run_cli("resume", "--db", pg_url)
    assert again.code == 0 and "nothing to resume" in again.out


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


def test_history_and_fork_on_postgres_match_the_same_fork_on_sqlite(pg_url, tmp_path, run_cli):
    one = SETTINGS.model_copy(update={"n": 1, "limits": Limits(max_user_turns=10, max_tasks=3)})
    forked = {}
    for db in (pg_url, str(tmp_path / "ref.db")):
        thread = generate(db, one, SCRIPTED).thread_ids[0]
        entries = history(db, thread)
        points = [e for e in entries if e.node == "execute_tools" and e.next and e.step > 3]
        point = points[len(points) // 2]
        result = run_cli("fork", thread, "--db", db, "--checkpoint", point.checkpoint_id, "--n", "2", "--seed", "100", "--quiet")
        assert result.code == 0, result.err
        forks = [r for r in rows(db) if r["parent_thread_id"] == thread]
        assert [r["status"] for r in forks] == ["done", "done"] and [r["seed"] for r in forks] == [100, 101]
        for fork in forks:
            fork_entries = history(db, fork["thread_id"])
            shared = entries[: entries.index(point) + 1]
            assert [e.checkpoint_id for e in fork_entries[: len(shared)]] == [e.checkpoint_id for e in shared]
            assert all(e.inherited for e in fork_entries[: len(shared)]) and fork_entries[len(shared)].source == "fork"
        forked[db] = [load_state(db, f["thread_id"]).model_dump_json() for f in forks]
        assert forked[db][0] != forked[db][1]  # different seeds, different continuations
    assert forked[pg_url] == forked[str(tmp_path / "ref.db")]


def test_one_driver_at_a_time_per_postgres_database(pg_url, run_cli):
    plan_generation(pg_url, SETTINGS, SCRIPTED)
    with driver_lock(pg_url):  # a generate, resume or Ray driver running on it
        line = _one_error_line(run_cli("resume", "--db", pg_url))
        assert "another dialogforge process" in line
        assert {r["status"] for r in rows(pg_url)} == {"pending"}
    resumed = run_cli("resume", "--db", pg_url, "--quiet")  # released with its connection
    assert resumed.code == 0 and "4 done" in resumed.out, resumed.err
