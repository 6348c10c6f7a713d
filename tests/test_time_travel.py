"""LangGraph's own time travel on the project's stores: replay from a past checkpoint, and
``update_state`` on one, on the same thread (a branch inside it).

One test body per graph, parametrized over the stores: our SQLite saver and
the Postgres store (LangGraph's Postgres saver with our serde). A branch
leaves every checkpoint of the first line reading back as it was, shows in
``get_state_history`` with its true parents, and becomes the thread's head.
"""

from __future__ import annotations

import operator
from contextlib import asynccontextmanager
from typing import Annotated

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from dialogforge.checkpoints.postgres_store import open_async_pg_saver
from dialogforge.checkpoints.sqlite_savers import open_async_saver
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Limits, Mode, Scenario
from dialogforge.runs.planning import graph_input
from tests.support.builders import scripted_context
from tests.support.checkpoints import counters_problem, dialogue_problem

RUN = {"recursion_limit": 100_000}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    """An async saver factory for one store kind (Postgres starts the real server only when asked)."""
    if request.param == "sqlite":
        return lambda: open_async_saver(tmp_path / "run.db")
    url = request.getfixturevalue("pg_url")
    return lambda: open_async_pg_saver(url)


def _id(snapshot) -> str:
    return snapshot.config["configurable"]["checkpoint_id"]


def _parent(snapshot) -> str | None:
    return snapshot.parent_config["configurable"]["checkpoint_id"] if snapshot.parent_config else None


async def _history(graph, thread: str) -> dict[str, object]:
    return {_id(s): s async for s in graph.aget_state_history({"configurable": {"thread_id": thread}})}


async def _line(graph, thread: str) -> list[str]:
    """The head's line, newest first, by parent links."""
    by_id = await _history(graph, thread)
    head = await graph.aget_state({"configurable": {"thread_id": thread}})
    line = [_id(head)]
    while _parent(by_id[line[-1]]) is not None:
        line.append(_parent(by_id[line[-1]]))
    return line


async def _check_branch(graph, thread: str, before: dict[str, object], point) -> None:
    """The first line reads as before; the branch leaves ``point`` and is the newest line, the head."""
    after = await _history(graph, thread)
    assert set(before) < set(after)
    for checkpoint_id, old in before.items():
        again = after[checkpoint_id]
        assert (again.values, again.next, _parent(again)) == (old.values, old.next, _parent(old))
    for snapshot in after.values():
        assert _parent(snapshot) is None or _parent(snapshot) in after
    line = await _line(graph, thread)
    assert line[0] == max(after) and _id(point) in line
    assert not set(line[: line.index(_id(point))]) & set(before)


# ---------------------------------------------------------------- a plain two-node graph

class Count(TypedDict):
    n: int
    trail: Annotated[list, operator.add]


def _plain_graph():
    graph = StateGraph(Count)
    graph.add_node("add", lambda s: {"n": s["n"] + 1, "trail": ["add"]})
    graph.add_node("double", lambda s: {"n": s["n"] * 2, "trail": ["double"]})
    graph.add_edge(START, "add")
    graph.add_edge("add", "double")
    graph.add_edge("double", END)
    return graph


async def test_replay_and_update_state_on_every_checkpoint_of_a_plain_graph(store):
    async with store() as saver:
        graph = _plain_graph().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "t"}}
        assert (await graph.ainvoke({"n": 1, "trail": []}, config))["n"] == 4
        first = list((await _history(graph, "t")).values())
        for point in first:
            before = await _history(graph, "t")
            assert (await graph.ainvoke(None, point.config))["n"] == 4
            await _check_branch(graph, "t", before, point)
        for point in first:  # a run that checkpoints only at its exit, from a past checkpoint
            before = await _history(graph, "t")
            assert (await graph.ainvoke(None, point.config, durability="exit"))["n"] == 4
            await _check_branch(graph, "t", before, point)
        for point in first:
            if not point.next:
                continue
            before = await _history(graph, "t")
            updated = await graph.aupdate_state(point.config, {"n": 10})
            result = await graph.ainvoke(None, updated)
            assert result["n"] == (20 if point.next == ("double",) else 22)
            await _check_branch(graph, "t", before, point)


# ---------------------------------------------------------------- the dialogue graph

def _start() -> dict:
    state = DialogueState(seed=5, scenario=Scenario(domain="a bank", target_tasks=50),
                          limits=Limits(max_user_turns=4, max_tasks=50))
    return graph_input(state)


def _valid(values: dict) -> DialogueState:
    state = DialogueState.model_validate(values)
    assert dialogue_problem(state.messages) is None, dialogue_problem(state.messages)
    assert counters_problem(state) is None
    assert state.stop_reason is not None and state.error is None
    return state


@pytest.mark.parametrize("node", ["simulate_user", "run_agent", "execute_tools"])
async def test_the_dialogue_graph_branches_in_place_at_a_user_turn_an_agent_step_and_a_tool_step(store, node):
    async with store() as saver:
        graph = compile_graph(Mode.USER, saver)
        config = {"configurable": {"thread_id": "d"}, **RUN}
        first_end = _valid(await graph.ainvoke(_start(), config, context=scripted_context()))
        history = await _history(graph, "d")
        points = sorted((s for s in history.values() if s.next == (node,)), key=_id)
        point = points[len(points) // 2]
        at_point = DialogueState.model_validate(point.values)

        # replay from the past checkpoint
        replayed = _valid(await graph.ainvoke(None, {**point.config, **RUN}, context=scripted_context()))
        assert replayed.messages[: len(at_point.messages)] == at_point.messages
        await _check_branch(graph, "d", history, point)

        # update_state on the same past checkpoint, then run on
        history = await _history(graph, "d")
        update = ({"pending_user_message": "Actually, start over with my savings account."}
                  if node == "simulate_user" else {"seed": 99})
        branch = await graph.aupdate_state(point.config, update)
        updated = _valid(await graph.ainvoke(None, {**branch, **RUN}, context=scripted_context()))
        assert updated.messages[: len(at_point.messages)] == at_point.messages
        if node == "simulate_user":
            assert update["pending_user_message"] in updated.messages[len(at_point.messages)].content
        await _check_branch(graph, "d", history, point)
        head = DialogueState.model_validate((await graph.aget_state({"configurable": {"thread_id": "d"}})).values)
        assert head == updated
        assert DialogueState.model_validate(history[max(k for k, s in history.items() if not s.next)].values) != updated
        assert first_end.messages[: len(at_point.messages)] == at_point.messages


async def _branched_history(saver) -> list[tuple]:
    """The dialogue graph run, replayed from an agent step and updated at a user turn: its history."""
    graph = compile_graph(Mode.USER, saver)
    config = {"configurable": {"thread_id": "s"}, **RUN}
    await graph.ainvoke(_start(), config, context=scripted_context())
    for node, update in (("run_agent", None), ("simulate_user", {"pending_user_message": "One more thing."})):
        history = sorted((await _history(graph, "s")).values(), key=_id)
        points = [s for s in history if s.next == (node,)]
        branch = points[len(points) // 2].config
        if update is not None:
            branch = await graph.aupdate_state(branch, update)
        await graph.ainvoke(None, {**branch, **RUN}, context=scripted_context())
    return [(s.values, s.next, s.metadata.get("step"), s.metadata.get("source"), s.parent_config is None)
            for s in sorted((await _history(graph, "s")).values(), key=_id)]


async def test_branches_read_back_exactly_as_on_the_stock_sqlite_saver(tmp_path):
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from dialogforge.checkpoints.serde import strict_serializer

    async with aiosqlite.connect(str(tmp_path / "stock.db")) as conn:
        stock = AsyncSqliteSaver(conn, serde=strict_serializer())
        await stock.setup()
        expected = await _branched_history(stock)
    async with open_async_saver(tmp_path / "ours.db") as saver:
        got = await _branched_history(saver)
    assert len(got) == len(expected) > 30
    assert got == expected
