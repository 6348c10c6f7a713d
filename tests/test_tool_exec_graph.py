"""Tool-Exec through the whole graph: real SQLite checkpointer, scripted models, real files.

Each finished trajectory is checked against an oracle that rebuilds its
database from the source plus the writes logged before each reply and runs
the tool's statement with a plain connection: replies are verbatim, later
reads see earlier writes, and nothing leaks between trajectories, forks or
into the source file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from dialogforge.checkpoints.sqlite_savers import open_async_saver
from dialogforge.config import GenerationSettings, ModelsConfig
from dialogforge.models import ModelSet
from dialogforge.sqltools.build import build_example
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.context import GraphContext
from dialogforge.runs.generate import generate
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Limits, Mode, ToolExec
from dialogforge.runs.tool_backends import executor_factory_for_run, load_domain
from tests.support.sql import build_notes_domain, check_against_oracle, sha256

PAYLOADS = [
    "'; DROP TABLE notes; --",
    "1 OR 1=1",
    "x'); DELETE FROM notes; --",
    "') UNION SELECT name, sql FROM sqlite_master --",
    "%' OR '1'='1",
    ":body",
    "x'; ATTACH DATABASE 'pwned.db' AS pwned; --",
    "'; PRAGMA writable_schema = 1; --",
    "load_extension('/tmp/evil.so')",
    "a\x00b'; DROP TABLE labels; --",
    '" OR ""="',
    "Robert'); DROP TABLE notes;--",
]


def rows(db: Path) -> list[dict]:
    manifest = Manifest(db)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def schema_of(path: Path) -> list[tuple]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE '_dialogforge_%' ORDER BY name").fetchall()
    finally:
        conn.close()


def sql_settings(db: Path, **updates) -> GenerationSettings:
    return GenerationSettings(tool_exec=ToolExec.SQL, domain_db=str(db), concurrency=4,
                              limits=Limits(max_tasks=3, max_user_turns=40), **updates)


def test_trajectories_read_their_own_writes_verbatim_and_nothing_else(tmp_path: Path, scripted_models: ModelsConfig) -> None:
    source = build_notes_domain(tmp_path / "domain")
    source_hash = sha256(source)
    run_db = tmp_path / "run.db"
    result = generate(run_db, sql_settings(source, n=8, seed=4), scripted_models)
    assert result.summary.done == 8 and result.summary.failed == 0
    domain = load_domain(source)
    totals = {"writes": 0, "selects": 0, "read_after_write": 0}
    for row in rows(run_db):
        assert row["tool_exec"] == "sql"
        state = load_state(run_db, row["thread_id"])
        assert state.tool_exec is ToolExec.SQL and {t.source for t in state.tools} == {"seed"}  # nothing synthesized
        assert "tool_synthesizer" not in state.counters.usage and "tool_simulator" not in state.counters.usage
        for name, count in check_against_oracle(state, domain, tmp_path / "oracle", row["thread_id"]).items():
            totals[name] += count
    print(f"\nnotes domain, 8 trajectories: {totals}")
    assert totals["writes"] >= 8 and totals["selects"] >= 8
    assert totals["read_after_write"] >= 2  # listings that showed a note the same trajectory had written
    assert sha256(source) == source_hash
    assert not Path(f"{run_db}.worlds").exists()  # copies are caches, removed when the run ends


def test_an_example_database_runs_end_to_end(tmp_path: Path, scripted_models: ModelsConfig) -> None:
    source = build_example("bookstore", tmp_path / "examples")
    source_hash = sha256(source)
    run_db = tmp_path / "run.db"
    result = generate(run_db, sql_settings(source, n=4, seed=2), scripted_models)
    assert result.summary.done == 4
    domain = load_domain(source)
    selects = 0
    for row in rows(run_db):
        state = load_state(run_db, row["thread_id"])
        selects += check_against_oracle(state, domain, tmp_path / "oracle", row["thread_id"])["selects"]
        assert any(m.role == "tool" for m in state.messages)
    assert selects >= 4
    assert sha256(source) == source_hash


def test_injection_payloads_as_arguments_are_data(tmp_path: Path, scripted_models: ModelsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripted agent fills arguments from the schema; an ``enum`` of payloads makes
    it send every one of them, through the real graph, as note bodies and search text."""
    monkeypatch.chdir(tmp_path)  # where a relative ATTACH would create its file
    source = build_notes_domain(tmp_path / "domain", body_schema={"type": "string", "enum": PAYLOADS})
    source_hash, source_schema = sha256(source), schema_of(source)
    run_db = tmp_path / "run.db"
    result = generate(run_db, sql_settings(source, n=24, seed=9), scripted_models)  # enough calls to send all 12
    assert result.summary.done == 24
    domain = load_domain(source)
    sent: set[str] = set()
    stored: set[str] = set()
    for row in rows(run_db):
        state = load_state(run_db, row["thread_id"])
        check_against_oracle(state, domain, tmp_path / "oracle", row["thread_id"])
        values = (c.arguments.get("body") or c.arguments.get("text") for m in state.messages for c in m.tool_calls)
        sent |= {v for v in values if isinstance(v, str)}  # a deliberately broken call may carry an object instead
        rebuilt = tmp_path / "rebuilt"
        with domain.open_trajectory(rebuilt, row["thread_id"], state.sql_writes) as db:
            path = db.path
        assert schema_of(path) == source_schema  # no table dropped, none added, nothing attached
        conn = sqlite3.connect(path)
        stored |= {body for (body,) in conn.execute("SELECT body FROM notes")}
        conn.close()
    assert set(PAYLOADS) <= sent  # every payload reached the executor
    assert set(PAYLOADS) & stored  # and inserted payloads are stored exactly as text
    assert sha256(source) == source_hash
    assert not list(tmp_path.rglob("pwned.db"))


async def test_a_fork_continues_from_its_checkpoint_on_its_own_database(tmp_path: Path, scripted_models: ModelsConfig) -> None:
    """Fork a finished SQL trajectory at a checkpoint between two of its writes (the
    LangGraph API: the checkpoint's values into a new thread, another seed), and run it on.

    The fork starts from exactly the parent's writes up to that point, then diverges;
    the parent's history and database are untouched, and so is the source.
    """
    source = build_notes_domain(tmp_path / "domain")
    source_hash = sha256(source)
    run_db = tmp_path / "run.db"
    settings = sql_settings(source, n=8, seed=4)
    await _in_thread(generate, run_db, settings, scripted_models)
    domain = load_domain(source)
    parent_id, parent = max(((r["thread_id"], load_state(run_db, r["thread_id"])) for r in rows(run_db)), key=lambda p: len(p[1].sql_writes))
    assert len(parent.sql_writes) >= 2

    models = ModelSet.from_config(scripted_models)
    manifest = Manifest(run_db)
    try:
        recorded = manifest.run_config(manifest.get(parent_id)["run_id"])
    finally:
        manifest.close()
    executor_for = executor_factory_for_run(run_db, recorded, models)  # as resume and fork would
    # The parent's own copy, brought to its final state, must not change while the fork runs.
    parent_executor = executor_for(parent_id)
    with domain.open_trajectory(parent_executor.workdir, parent_id, parent.sql_writes):
        pass
    parent_copy = parent_executor.workdir / f"{parent_id}.sqlite"
    parent_rows = _notes(parent_copy)

    async with open_async_saver(run_db) as saver:
        graph = compile_graph(Mode.USER, saver)
        history = [s async for s in graph.aget_state_history({"configurable": {"thread_id": parent_id}})]
        fork_point = next(s for s in reversed(history)  # oldest first: just after the first writes
                          if 0 < len(s.values.get("sql_writes") or []) < len(parent.sql_writes) and s.next == ("run_agent",))
        values = DialogueState.model_validate(fork_point.values)
        inherited = len(values.sql_writes)
        fork_id = f"{parent_id}-fork"
        config = {"configurable": {"thread_id": fork_id}, "recursion_limit": 10_000}
        await graph.aupdate_state(config, {**dict(values), "seed": values.seed + 1}, as_node="execute_tools")
        final = DialogueState.model_validate(await graph.ainvoke(
            None, config, context=GraphContext(models=models, executor=executor_for(fork_id))))

    assert final.stop_reason is not None and final.error is None
    print(f"\nfork at {inherited} of the parent's {len(parent.sql_writes)} writes; the fork ended with {len(final.sql_writes)}")
    assert final.sql_writes[:inherited] == parent.sql_writes[:inherited]  # the writes before the fork point
    assert final.sql_writes[inherited:] != parent.sql_writes[inherited:]  # then its own
    check_against_oracle(final, domain, tmp_path / "oracle", fork_id)  # the fork saw only its own log
    after = load_state(run_db, parent_id)
    assert after.sql_writes == parent.sql_writes and len(after.messages) == len(parent.messages)
    assert _notes(parent_copy) == parent_rows  # the parent's database did not move
    fork_rows = _notes(parent_executor.workdir / f"{fork_id}.sqlite")
    assert fork_rows != parent_rows
    assert sha256(source) == source_hash


def _notes(path: Path) -> list[tuple]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT note_id, body FROM notes ORDER BY note_id").fetchall()
    finally:
        conn.close()


async def _in_thread(function, *args):
    """``generate`` runs its own event loop; from an async test it runs in a thread."""
    import asyncio

    return await asyncio.to_thread(function, *args)
