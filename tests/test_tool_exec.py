"""The SQL tool executor and the execute_tools node over real SQLite files.

Deterministic checks with hand-made states: verbatim rows, read-after-write
within a trajectory, isolation between trajectories and from the source,
write-log accounting in the node, the task proposer's view of the data, and
backend failures that fail the trajectory with a reason.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from langgraph.runtime import Runtime

from dialogforge.config import GenerationSettings
from dialogforge.errors import DomainError, ToolBackendError
from dialogforge.sqltools import ExecLimits, SqlDomain, load_sql_domain
from dialogforge.sqltools.build import build_example
from dialogforge.graphs.context import GraphContext
from dialogforge.runs.planning import initial_state
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message, Scenario, SqlWrite, StopReason, ToolCall, ToolExec, ToolSource
from dialogforge.runs.tool_backends import domain_for, domain_record, executor_factory, executor_factory_for_run, load_domain, prepare_tool_exec
from dialogforge.executors.sql import SqlToolExecutor, remove_worlds, worlds_dir
from dialogforge.nodes.execute_tools import execute_tools
from dialogforge.nodes.propose_task import propose_task
from dialogforge.tool_checks import first_violation
from tests.support.builders import scripted_set
from tests.support.sql import build_notes_domain, query_copy, sha256

ADDRESS = "Praterstrasse 22/4, 1020 Vienna"


@pytest.fixture
def bookstore(tmp_path: Path) -> SqlDomain:
    db = build_example("bookstore", tmp_path / "src")
    return load_sql_domain(db, tmp_path / "src" / "bookstore.tools.json")


def sql_state(domain: SqlDomain, writes: list[SqlWrite] | None = None, seed: int = 5) -> DialogueState:
    return DialogueState(
        scenario=Scenario(domain="bookstore"), seed=seed, tools=domain.tools, tool_source=ToolSource.SEED,
        tool_exec=ToolExec.SQL, sql_writes=writes or [],
    )


def call(name: str, **arguments) -> ToolCall:
    return ToolCall(id=f"call_{name}", name=name, arguments=arguments)


async def run(executor: SqlToolExecutor, state: DialogueState, name: str, **arguments):
    return await executor.execute(state, state.tools[[t.name for t in state.tools].index(name)], call(name, **arguments))


async def test_select_results_are_the_rows_verbatim(bookstore: SqlDomain, tmp_path: Path) -> None:
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1")
    outcome = await run(executor, sql_state(bookstore), "search_orders", customer_id=1)
    assert not outcome.is_error and outcome.sql_write is None
    # The tool's own statement, run with a plain sqlite3 connection on an independent copy.
    statement = bookstore.tool("search_orders").sql.statement
    expected = query_copy(bookstore, tmp_path / "oracle", "o", [], statement, {"customer_id": 1, "status": None})
    rows = json.loads(outcome.content)
    assert len(rows) >= 2 and rows == expected
    assert outcome.content == json.dumps(rows, ensure_ascii=False)  # the message is the JSON, nothing added


async def test_read_after_write_and_isolation(bookstore: SqlDomain, tmp_path: Path) -> None:
    source_hash = sha256(bookstore.db_path)
    mine = SqlToolExecutor(bookstore, tmp_path / "w", "mine")
    other = SqlToolExecutor(bookstore, tmp_path / "w", "other")
    state = sql_state(bookstore)
    created = await run(mine, state, "create_order", customer_id=2, shipping_address=ADDRESS, placed_at="2026-01-15 10:00:00")
    assert not created.is_error, created.content
    order_id = json.loads(created.content)["last_row_id"]
    assert created.sql_write == SqlWrite(tool="create_order", arguments={
        "customer_id": 2, "shipping_address": ADDRESS, "placed_at": "2026-01-15 10:00:00"})
    state = state.model_copy(update={"sql_writes": [created.sql_write]})

    seen = json.loads((await run(mine, state, "search_orders", customer_id=2)).content)
    assert order_id in {o["order_id"] for o in seen}  # a later read sees the write
    elsewhere = json.loads((await run(other, sql_state(bookstore), "search_orders", customer_id=2)).content)
    assert order_id not in {o["order_id"] for o in elsewhere}  # another trajectory does not
    conn = sqlite3.connect(f"{bookstore.db_path.as_uri()}?mode=ro", uri=True)
    assert conn.execute("SELECT count(*) FROM orders WHERE order_id = ?", (order_id,)).fetchone()[0] == 0
    conn.close()
    assert sha256(bookstore.db_path) == source_hash


async def test_a_state_without_the_write_sees_the_database_without_it(bookstore: SqlDomain, tmp_path: Path) -> None:
    """The copy follows the state's log: a checkpoint from before a write (a fork, a
    resume after a crash) never sees that write, even through the same key."""
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1")
    state = sql_state(bookstore)
    moved = await run(executor, state, "update_order_shipping_address", order_id=1004, shipping_address=ADDRESS)
    assert moved.sql_write is not None
    after = json.loads((await run(executor, state.model_copy(update={"sql_writes": [moved.sql_write]}), "search_orders", customer_id=1)).content)
    before = json.loads((await run(executor, state, "search_orders", customer_id=1)).content)
    assert next(o for o in after if o["order_id"] == 1004)["shipping_address"] == ADDRESS
    assert next(o for o in before if o["order_id"] == 1004)["shipping_address"] != ADDRESS


async def test_the_copy_stays_open_across_calls_and_reopens_when_another_connection_changed_it(
        bookstore: SqlDomain, tmp_path: Path) -> None:
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1")
    state = sql_state(bookstore)
    moved = await run(executor, state, "update_order_shipping_address", order_id=1004, shipping_address=ADDRESS)
    opened = executor._db
    state = state.model_copy(update={"sql_writes": [moved.sql_write]})
    await run(executor, state, "search_orders", customer_id=1)
    assert opened is not None and executor._db is opened  # the log continued: the same connection
    with bookstore.open_trajectory(tmp_path / "w", "t1", []):  # someone rewinds the copy under it
        pass
    after = json.loads((await run(executor, state, "search_orders", customer_id=1)).content)
    assert executor._db is not opened  # its record disagreed: reopened, the write replayed
    assert next(o for o in after if o["order_id"] == 1004)["shipping_address"] == ADDRESS
    await executor.aclose()
    assert executor._db is None


async def test_sql_errors_and_no_op_writes_are_not_logged(bookstore: SqlDomain, tmp_path: Path) -> None:
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1")
    state = sql_state(bookstore)
    broken = await run(executor, state, "create_order", customer_id=999, shipping_address=ADDRESS, placed_at="2026-01-15 10:00:00")
    assert broken.is_error and broken.content == "Error: SQL error: FOREIGN KEY constraint failed" and broken.sql_write is None
    missing = await run(executor, state, "update_order_shipping_address", order_id=424242, shipping_address=ADDRESS)
    assert json.loads(missing.content) == {"rows_affected": 0, "last_row_id": None} and missing.sql_write is None


async def test_a_row_cap_truncates_with_a_note(bookstore: SqlDomain, tmp_path: Path) -> None:
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1", limits=ExecLimits(max_rows=2))
    content = (await run(executor, sql_state(bookstore), "search_books")).content
    rows, marker = content.split("\n", 1)
    assert first_violation(bookstore.tool("search_books").result_schema, json.loads(rows)) is None  # the promised shape
    assert len(json.loads(rows)) == 2 and marker == "[result truncated: 2 of 15 rows shown; narrow the query to see the rest]"


async def test_the_node_logs_writes_in_order_and_later_calls_see_earlier_ones(bookstore: SqlDomain, tmp_path: Path) -> None:
    """Two calls in one assistant message: the second reads what the first wrote."""
    models = scripted_set()
    runtime = Runtime(context=GraphContext(models=models, executor=SqlToolExecutor(bookstore, tmp_path / "w", "t1")))
    asking = Message(role="assistant", tool_calls=[
        call("update_order_shipping_address", order_id=1004, shipping_address=ADDRESS),
        ToolCall(id="call_2", name="search_orders", arguments={"customer_id": 1}),
        ToolCall(id="call_3", name="update_order_status", arguments={"order_id": 1004, "status": "cancelled"}),
    ])
    state = sql_state(bookstore).model_copy(update={"messages": [Message(role="user", content="hi"), asking]})
    update = await execute_tools(state, runtime)
    assert "stop_reason" not in update
    first, second, third = update["messages"]
    assert json.loads(first.content)["rows_affected"] == 1
    assert next(o for o in json.loads(second.content) if o["order_id"] == 1004)["shipping_address"] == ADDRESS
    assert json.loads(third.content)["rows_affected"] == 1
    assert [w.tool for w in update["sql_writes"]] == ["update_order_shipping_address", "update_order_status"]


async def test_a_log_that_cannot_be_replayed_fails_the_trajectory_with_its_reason(bookstore: SqlDomain, tmp_path: Path) -> None:
    runtime = Runtime(context=GraphContext(models=scripted_set(), executor=SqlToolExecutor(bookstore, tmp_path / "w", "t1")))
    bogus = SqlWrite(tool="create_order", arguments={"customer_id": 999, "shipping_address": ADDRESS, "placed_at": "x"})
    asking = Message(role="assistant", tool_calls=[call("search_orders", customer_id=1)])
    state = sql_state(bookstore, [bogus]).model_copy(update={"messages": [asking]})
    update = await execute_tools(state, runtime)
    assert update["stop_reason"] is StopReason.ERROR
    assert "failed on replay" in update["error"] and "FOREIGN KEY" in update["error"]


async def test_a_changed_source_is_refused_rather_than_replayed(bookstore: SqlDomain, tmp_path: Path) -> None:
    factory = executor_factory(tmp_path / "run.db", scripted_set(), bookstore)
    conn = sqlite3.connect(bookstore.db_path)
    conn.execute("UPDATE books SET stock = stock + 1")
    conn.commit()
    conn.close()
    with pytest.raises(ToolBackendError, match="changed since the run started"):
        await run(factory("t1"), sql_state(bookstore), "search_books")


async def test_an_executor_rechecks_its_source_on_every_call_and_hashes_it_only_when_its_stamp_moves(
        bookstore: SqlDomain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-call check skips the hash (and the path's resolution) while the source's stat is the
    one it matched under, and still catches a change made between two calls of one executor."""
    import os
    from dialogforge.executors import sql as sql_executor
    settled = bookstore.db_path.stat().st_mtime_ns - 10_000_000_000  # older than the racy window
    os.utime(bookstore.db_path, ns=(settled, settled))
    hashed: list[str] = []
    real = sql_executor.source_digest
    monkeypatch.setattr(sql_executor, "source_digest", lambda path: hashed.append(str(path)) or real(path))
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1", source_sha256=sha256(bookstore.db_path))
    for _ in range(3):
        assert not (await run(executor, sql_state(bookstore), "get_book", book_id=11)).is_error
    assert len(hashed) == 1
    conn = sqlite3.connect(bookstore.db_path)
    conn.execute("UPDATE books SET stock = stock + 1")
    conn.commit()
    conn.close()
    os.utime(bookstore.db_path, ns=(settled + 1_000_000_000, settled + 1_000_000_000))  # settled, but moved
    with pytest.raises(ToolBackendError, match="changed since the run started"):
        await run(executor, sql_state(bookstore), "get_book", book_id=11)
    bookstore.db_path.unlink()
    with pytest.raises(ToolBackendError, match="is gone"):
        await run(executor, sql_state(bookstore), "get_book", book_id=11)


def test_a_recorded_run_continues_pinned_to_its_source(bookstore: SqlDomain, tmp_path: Path) -> None:
    """What resume and fork use: the run config names the domain and its source digest."""
    settings = GenerationSettings(tool_exec=ToolExec.SQL, domain_db=str(bookstore.db_path))
    domain, recorded, _ = prepare_tool_exec(settings, None)
    config = {"settings": recorded.model_dump(mode="json"), "domain": domain_record(domain)}
    factory = executor_factory_for_run(tmp_path / "run.db", config, scripted_set())
    assert json.loads((await_run(factory("t1"), sql_state(bookstore), "get_book", book_id=11)).content)[0]["book_id"] == 11
    conn = sqlite3.connect(bookstore.db_path)
    conn.execute("DELETE FROM order_items")
    conn.commit()
    conn.close()
    with pytest.raises(ToolBackendError, match="changed since the run started"):
        await_run(executor_factory_for_run(tmp_path / "run.db", config, scripted_set())("t1"), sql_state(bookstore), "get_book", book_id=11)


def await_run(executor: SqlToolExecutor, state: DialogueState, name: str, **arguments):
    return asyncio.run(run(executor, state, name, **arguments))


def test_the_task_proposer_sees_the_schema_and_real_rows_sampled_by_seed(bookstore: SqlDomain, tmp_path: Path) -> None:
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1")
    context = executor.task_context(sql_state(bookstore, seed=1))
    assert "CREATE TABLE customers" in context["database_schema"]
    assert set(context["sample_rows"]) == {"authors", "books", "customers", "orders", "order_items"}
    customers = query_copy(bookstore, tmp_path / "oracle", "o", [], "SELECT * FROM customers")
    assert context["sample_rows"]["customers"] and all(row in customers for row in context["sample_rows"]["customers"])
    assert executor.task_context(sql_state(bookstore, seed=1)) == context  # the seed decides the sample
    others = [SqlToolExecutor(bookstore, tmp_path / "w", "t1").task_context(sql_state(bookstore, seed=s)) for s in range(2, 8)]
    assert any(o["sample_rows"] != context["sample_rows"] for o in others)


async def test_propose_task_prompts_with_the_database(bookstore: SqlDomain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    import dialogforge.nodes.propose_task as module

    original = module.generate_structured

    async def recording(model, schema, messages, **kwargs):
        seen.append("\n".join(str(m.content) for m in messages))
        return await original(model, schema, messages, **kwargs)

    monkeypatch.setattr(module, "generate_structured", recording)
    executor = SqlToolExecutor(bookstore, tmp_path / "w", "t1")
    update = await propose_task(sql_state(bookstore), Runtime(context=GraphContext(models=scripted_set(), executor=executor)))
    assert update["tasks"]
    email = executor.task_context(sql_state(bookstore))["sample_rows"]["customers"][0]["email"]
    assert "database_schema" in seen[0] and "CREATE TABLE orders" in seen[0] and email in seen[0]


def test_generation_settings_choose_the_domain_and_seed_tools(bookstore: SqlDomain, tmp_path: Path) -> None:
    settings = GenerationSettings(tool_exec=ToolExec.SQL, domain_db=str(bookstore.db_path))
    domain, recorded, tools = prepare_tool_exec(settings, None)
    assert domain is not None and [t.name for t in tools] == [t.name for t in bookstore.tools]
    assert recorded.tool_source is ToolSource.SEED and recorded.domain_tools.endswith("bookstore.tools.json")
    state = initial_state(recorded, 0, tools)
    assert state.tool_exec is ToolExec.SQL and state.tool_source is ToolSource.SEED and state.sql_writes == []
    assert prepare_tool_exec(GenerationSettings(), None)[0] is None


@pytest.mark.parametrize("settings, message", [
    (GenerationSettings(tool_exec=ToolExec.SQL), "needs --domain-db"),
    (GenerationSettings(domain_db="x.sqlite"), "tool_exec is 'simulated'"),
    (GenerationSettings(tool_exec=ToolExec.SQL, domain_db="x.sqlite", tool_source=ToolSource.SEED_PLUS), "--synthesize-more"),
    (GenerationSettings(tool_exec=ToolExec.SQL, domain_db="x.sqlite", tools_file="t.json"), "not --tools"),
    (GenerationSettings(tool_exec=ToolExec.SQL, domain_db="/nonexistent/x.sqlite"), "database not found"),
])
def test_contradictory_or_missing_domain_settings_are_refused(settings: GenerationSettings, message: str) -> None:
    with pytest.raises(DomainError, match=message):
        domain_for(settings)


def test_a_database_without_a_tools_file_gets_drafted_crud_tools(tmp_path: Path) -> None:
    db = build_notes_domain(tmp_path / "d")
    (tmp_path / "d" / "notes.tools.json").unlink()
    domain = load_domain(db)
    names = {t.name for t in domain.tools}
    assert {"get_note", "search_notes", "create_note", "update_note", "delete_note"} <= names
    assert all(t.sql is not None for t in domain.tools)


def test_worlds_live_beside_the_run_database_and_can_be_removed(bookstore: SqlDomain, tmp_path: Path) -> None:
    run_db = tmp_path / "run.db"
    executor = SqlToolExecutor(bookstore, worlds_dir(run_db), "t-1")
    executor.run_call([], bookstore.tool("get_book"), {"book_id": 11})
    assert (tmp_path / "run.db.worlds" / "t-1.sqlite").is_file()
    remove_worlds(run_db, ["t-1"])
    assert not (tmp_path / "run.db.worlds").exists()
