"""The linear-storage saver: the same states as LangGraph's stock saver, at a fraction of the bytes."""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
import ormsgpack
import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from dialogforge.checkpoints.copy_thread import copy_thread
from dialogforge.checkpoints.encoding import pack_typed
from dialogforge.checkpoints.sqlite import DERIVED
from dialogforge.runs.reading import load_state
from dialogforge.checkpoints.serde import UnsafeCheckpointError, strict_serializer
from dialogforge.checkpoints.sqlite_savers import open_async_saver, open_saver
from dialogforge.errors import NotFoundError, StoreError
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.context import GraphContext
from dialogforge.runs.planning import graph_input
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Limits, Mode, Scenario
from dialogforge.executors.simulated import SimulatedToolExecutor
from tests.support.checkpoints import small_run
from tests.support.builders import scripted_set

CONFIG = {"configurable": {"thread_id": "t"}, "recursion_limit": 100_000}


def _start(turns: int) -> DialogueState:
    return DialogueState(seed=5, scenario=Scenario(domain="a bank", target_tasks=50),
                         limits=Limits(max_user_turns=turns, max_tasks=50))


def _context() -> GraphContext:
    models = scripted_set()
    from dialogforge.config import Role

    return GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))


def _snapshots(history) -> list[tuple]:
    return [
        (DialogueState.model_validate(s.values).model_dump_json() if s.values.get("scenario") else s.values,
         s.next, s.metadata.get("step"), s.metadata.get("source"))
        for s in history
    ]


def test_every_checkpoint_reads_back_as_with_the_stock_saver(tmp_path):
    """Same run, two savers: every state in the history is identical, field order included."""
    start = _start(25)

    async def stock():
        async with aiosqlite.connect(str(tmp_path / "stock.db")) as conn:
            saver = AsyncSqliteSaver(conn, serde=strict_serializer())
            await saver.setup()
            graph = compile_graph(Mode.USER, saver)
            await graph.ainvoke(graph_input(start), CONFIG, context=_context())
            return _snapshots([s async for s in graph.aget_state_history(CONFIG)])

    async def ours():
        async with open_async_saver(tmp_path / "ours.db") as saver:
            await compile_graph(Mode.USER, saver).ainvoke(graph_input(start), CONFIG, context=_context())

    expected = asyncio.run(stock())
    asyncio.run(ours())
    with open_saver(tmp_path / "ours.db") as saver:
        got = _snapshots(compile_graph(Mode.USER, saver).get_state_history(CONFIG))
    assert len(got) == len(expected) > 100
    assert got == expected
    conn = sqlite3.connect(tmp_path / "ours.db")
    derived = conn.execute("SELECT count(*) FROM cp_blobs WHERE kind = ?", (DERIVED,)).fetchone()[0]
    full_snapshots = conn.execute("SELECT count(*) FROM cp_checkpoints WHERE snaps IS NOT NULL").fetchone()[0]
    conn.close()
    assert derived >= 1 and full_snapshots == 0  # the message snapshots LangGraph asked for cost nothing


def test_a_crafted_row_is_not_revived(tmp_path):
    """Stored bytes that name an importable callable are refused, never called (see test_security)."""
    db = tmp_path / "run.db"
    thread = small_run(db, n=1, max_turns=2)[0]
    marker = tmp_path / "pwned"
    evil = ormsgpack.packb(ormsgpack.Ext(0, ormsgpack.packb(["os", "system", f"touch {marker}"])))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE cp_blobs SET kind = 0, base = NULL, data = ? WHERE channel = (SELECT id FROM cp_names WHERE kind = 1 AND name = 'world')",
            (pack_typed("msgpack", evil),),
        )
    conn.close()
    with open_saver(db) as saver, pytest.raises(UnsafeCheckpointError, match="names os.system"):
        compile_graph(Mode.USER, saver).get_state({"configurable": {"thread_id": thread}})
    assert not marker.exists()


def test_a_branch_inside_a_thread_runs_and_the_line_stays_intact(tmp_path):
    """Replaying from a past checkpoint (LangGraph's time travel) re-uses the line's version
    numbers for other values; the branch runs to its end, becomes the thread's head, and every
    state of the first line still reads back as it was."""
    db = tmp_path / "run.db"
    thread = small_run(db, n=1, max_turns=4)[0]
    with open_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        history = list(graph.get_state_history({"configurable": {"thread_id": thread}}))
        end = history[0]
        old = next(s for s in history[len(history) // 2:] if s.next == ("run_agent",))
        asyncio.run(graph.ainvoke(None, old.config, context=_context()))
        assert graph.get_state(end.config).values == end.values
        after = {s.config["configurable"]["checkpoint_id"]: s for s in graph.get_state_history({"configurable": {"thread_id": thread}})}
        assert len(after) > len(history)
        for before in history:
            again = after[before.config["configurable"]["checkpoint_id"]]
            assert (again.values, again.next, again.parent_config) == (before.values, before.next, before.parent_config)
        head = graph.get_state({"configurable": {"thread_id": thread}})
        assert head.config["configurable"]["checkpoint_id"] == max(after) and not head.next
        line, at = [], head
        while at.parent_config is not None:
            line.append(at.parent_config["configurable"]["checkpoint_id"])
            at = after[line[-1]]
        assert old.config["configurable"]["checkpoint_id"] in line
        assert end.config["configurable"]["checkpoint_id"] not in line


def test_copy_thread_whole_and_up_to_a_checkpoint(tmp_path):
    db = tmp_path / "run.db"
    thread = small_run(db, n=1, max_turns=5)[0]
    copy_thread(db, thread, "whole")
    with open_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        whole = DialogueState.model_validate(graph.get_state({"configurable": {"thread_id": "whole"}}).values)
        assert whole.model_dump_json() == load_state(db, thread).model_dump_json()
        history = list(graph.get_state_history({"configurable": {"thread_id": thread}}))
        middle = history[len(history) // 2]
        copy_thread(db, thread, "prefix", middle.config["configurable"]["checkpoint_id"])
        copied = graph.get_state({"configurable": {"thread_id": "prefix"}})
    assert copied.values == middle.values and copied.next == middle.next
    assert copied.config["configurable"]["checkpoint_id"] == middle.config["configurable"]["checkpoint_id"]
    with pytest.raises(StoreError, match="already exists"):
        copy_thread(db, thread, "whole")
    with pytest.raises(NotFoundError, match="no checkpoints for thread 'nope'"):
        copy_thread(db, "nope", "other")
    with pytest.raises(NotFoundError, match="no checkpoint"):
        copy_thread(db, thread, "other", "not-a-checkpoint")


def test_prune_and_delete_for_runs_keep_what_stays_readable(tmp_path):
    """``prune`` keeps each thread's latest checkpoint, readable on its own (its message list was
    rebuilt from ancestors' writes); ``delete_for_runs`` removes one run's branch and leaves the
    rest of the thread reading as before."""
    import uuid

    db = tmp_path / "run.db"
    first, second = small_run(db, n=2, max_turns=5)
    kept = load_state(db, second)
    with open_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        before = {s.config["configurable"]["checkpoint_id"]: s for s in graph.get_state_history({"configurable": {"thread_id": first}})}
        point = next(s for s in sorted(before.values(), key=lambda s: s.config["configurable"]["checkpoint_id"])[10:]
                     if s.next == ("simulate_user",))
        run_id = str(uuid.uuid4())
        branch = graph.update_state(point.config, {"seed": 41})
        asyncio.run(graph.ainvoke(None, {**branch, "run_id": run_id, "recursion_limit": 100_000}, context=_context()))
        assert len(list(saver.list({"configurable": {"thread_id": first}}))) > len(before)
        saver.delete_for_runs([run_id])
        after = {s.config["configurable"]["checkpoint_id"]: s for s in graph.get_state_history({"configurable": {"thread_id": first}})}
        assert set(before) < set(after)  # the update itself was not part of the run
        assert all(s.metadata.get("run_id") != run_id for s in after.values())
        for checkpoint_id, snapshot in before.items():
            assert (after[checkpoint_id].values, after[checkpoint_id].next) == (snapshot.values, snapshot.next)
        saver.prune([second])
        assert len(list(saver.list({"configurable": {"thread_id": second}}))) == 1
    assert load_state(db, second) == kept


def test_values_compress_with_a_window_sized_to_them_and_inflate_as_before():
    """``_deflate`` sizes its window to the dictionary plus the payload (a 32 KB window's set-up
    cost ten times a small value's compression): every size, across each window boundary, inflates
    back exactly, compresses to what the full window gives, and the full window's bytes (every row
    written before) still inflate."""
    import random
    import zlib

    from dialogforge.checkpoints import encoding

    rng = random.Random(7)
    words = [b"order", b"\xa8Counters", b"shipped", b"tracking", b"2026-01-15T09:00:00Z", b"\xa7content"]
    for size in [1, 95, 96, 500, 736, 737, 738, 2000, 2784, 2785, 2786, 7000, 15000, 31000, 40000, 120000]:
        payload = b" ".join(rng.choice(words) + str(rng.randint(0, 999)).encode() for _ in range(size // 6 + 1))[:size]
        squeezed = encoding._deflate(payload)
        assert encoding._inflate(squeezed) == payload
        full = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, encoding._ZDICT)
        old = full.compress(payload) + full.flush()
        assert encoding._inflate(old) == payload
        assert len(squeezed) <= len(old) * 1.02 + 2, size
