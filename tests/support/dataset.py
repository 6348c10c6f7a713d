"""Hand-made trajectories for the dataset tests, and a way to store them in a real database.

States are built directly (no model involved) so each test knows exactly
what is in them; ``store_states`` writes them through the real checkpointer
and manifest, so the CLI reads them like any generated run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Counters, FunctionSpec, Limits, Message, Mode, RubricCategory, RubricItem, Scenario, StopReason, Task, TaskStatus, TokenUsage, ToolCall, ToolSource, ToolSpec

ORDER_TOOL = ToolSpec(function=FunctionSpec(
    name="get_order", description="Look up an order.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
))
CANCEL_TOOL = ToolSpec(function=FunctionSpec(
    name="cancel_order", description="Cancel an order.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}, "reason": {"type": "string"}}, "required": ["order_id"]},
))


def task(goal: str = "Find out where order A1 is and cancel it.", status: TaskStatus = TaskStatus.COMPLETED) -> Task:
    return Task(
        goal=goal, subtasks=["look up order A1", "cancel order A1"], status=status,
        rubric=[
            RubricItem(criterion="The assistant looked up order A1", category=RubricCategory.CRITICAL),
            RubricItem(criterion="The assistant cancelled order A1", category=RubricCategory.CRITICAL),
            RubricItem(criterion="Facts come from tool results", category=RubricCategory.STRUCTURAL),
            RubricItem(criterion="Replies are polite", category=RubricCategory.NON_CRITICAL),
        ],
        expected_tools=["get_order", "cancel_order"],
    )


def user(text: str, task_index: int = 0) -> Message:
    return Message(role="user", content=text, task_index=task_index)


def calls(*tool_calls: ToolCall, reasoning: str | None = None, task_index: int = 0) -> Message:
    return Message(role="assistant", tool_calls=list(tool_calls), reasoning=reasoning, task_index=task_index)


def reply(text: str, reasoning: str | None = None, task_index: int = 0) -> Message:
    return Message(role="assistant", content=text, reasoning=reasoning, task_index=task_index)


def result(call: ToolCall, content: Any, *, error: bool = False, task_index: int = 0) -> Message:
    text = content if isinstance(content, str) else json.dumps(content)
    return Message(role="tool", content=text, tool_call_id=call.id, name=call.name, is_error=error, task_index=task_index)


def good_state(*, seed: int = 11, user_words: str = "Hi, where is my order A1?") -> DialogueState:
    """A valid user-mode trajectory: a lookup, a recovered invalid call, a cancel, and the user's thanks."""
    lookup = ToolCall(id="call_1", name="get_order", arguments={"order_id": "A1"})
    bad = ToolCall(id="call_2", name="cancel_order", arguments={"reason": "late"})  # order_id missing
    cancel = ToolCall(id="call_3", name="cancel_order", arguments={"order_id": "A1", "reason": "late"})
    messages = [
        user(user_words),
        calls(lookup, reasoning="The user wants order A1; look it up."),
        result(lookup, {"order_id": "A1", "status": "shipped"}),
        reply("Order A1 has shipped.", reasoning="Report the status."),
        user("Please cancel it, it is late."),
        calls(bad, reasoning="Cancel it."),
        result(bad, {"error": "invalid arguments for cancel_order: (root): 'order_id' is a required property"}, error=True),
        calls(cancel, reasoning="I forgot the id; retry with it."),
        result(cancel, {"order_id": "A1", "status": "cancelled"}),
        reply("Done: order A1 is cancelled."),
        user("Thanks, that's all!"),
    ]
    counters = Counters(
        user_turns=3, assistant_turns=5, tool_calls=3, tool_errors=1, requests=2, step_counts=[1, 2], tasks_completed=1,
        usage={"agent": TokenUsage(prompt=900, completion=100, calls=5), "user_simulator": TokenUsage(prompt=400, completion=50, calls=3)},
    )
    return DialogueState(
        mode=Mode.USER, seed=seed, scenario=Scenario(domain="online store support"), tools=[ORDER_TOOL, CANCEL_TOOL],
        tasks=[task()], messages=messages, counters=counters, stop_reason=StopReason.COMPLETED,
        reference_time="2026-03-01T10:00:00Z",
    )


def stopped_mid_task(state: DialogueState, reason: StopReason = StopReason.MAX_USER_TURNS) -> DialogueState:
    """``state`` as if a cap had stopped it during its last task: no closing thanks, the task still open."""
    messages = state.messages[:-1] if state.messages and state.messages[-1].role == "user" else state.messages
    tasks = [*state.tasks[:-1], state.tasks[-1].model_copy(update={"status": TaskStatus.ACTIVE})]
    counters = state.counters.model_copy(update={
        "user_turns": sum(1 for m in messages if m.role == "user"),
        "tasks_completed": len(tasks) - 1,
    })
    return state.model_copy(update={"messages": messages, "tasks": tasks, "counters": counters, "stop_reason": reason})


def two_task_capped_state(*, seed: int = 21, reason: StopReason = StopReason.MAX_USER_TURNS) -> DialogueState:
    """Task 1 completed; task 2 (which builds on task 1's lookup) stopped by a cap after one tool round.

    Task 2's first user message opens with the thanks for task 1, as the user
    simulator writes it; the cap leaves task 2 with a tool call and no reply.
    """
    base = good_state(seed=seed)
    track = ToolCall(id="call_t2", name="get_order", arguments={"order_id": "B2"})
    messages = [
        *base.messages[:-1],
        user("Thanks! Now, where is order B2?", 1),
        calls(track, reasoning="Look up B2.", task_index=1),
        result(track, {"order_id": "B2", "status": "packed"}, task_index=1),
        calls(track.model_copy(update={"id": "call_t3"}), reasoning="Check again.", task_index=1),
        result(track.model_copy(update={"id": "call_t3"}), {"order_id": "B2", "status": "packed"}, task_index=1),
    ]
    counters = base.counters.model_copy(update={
        "user_turns": 3, "requests": 3, "assistant_turns": 7, "tool_calls": 5, "steps_this_request": 2, "tasks_completed": 1,
    })
    return base.model_copy(update={
        "messages": messages, "tasks": [task(), task("Find where order B2 is.", TaskStatus.ACTIVE)],
        "counters": counters, "stop_reason": reason,
    })


def quoting_state(*, seed: int = 31, history_window: int = 80) -> DialogueState:
    """Two completed tasks; the second is answered from a first-task tool result (tracking ZX9041), no new call."""
    lookup = ToolCall(id="call_q1", name="get_order", arguments={"order_id": "A1"})
    messages = [
        user("Hi, where is my order A1?"),
        calls(lookup, reasoning="Look it up."),
        result(lookup, {"order_id": "A1", "status": "shipped", "tracking": "ZX9041"}),
        reply("Order A1 has shipped."),
        user("Thanks! And what is its tracking number?", 1),
        reply("Its tracking number is ZX9041.", task_index=1),
        user("Great, that's all I needed.", 1),
    ]
    counters = Counters(user_turns=3, assistant_turns=3, tool_calls=1, requests=2, step_counts=[1, 0], tasks_completed=2,
                        usage={"agent": TokenUsage(prompt=500, completion=60, calls=3)})
    second = Task(goal="Get the tracking number of order A1.", subtasks=["tell the tracking number"], status=TaskStatus.COMPLETED,
                  rubric=[RubricItem(criterion="The assistant gave the tracking number", category=RubricCategory.CRITICAL),
                          RubricItem(criterion="Facts come from tool results", category=RubricCategory.STRUCTURAL)])
    return DialogueState(
        mode=Mode.USER, seed=seed, scenario=Scenario(domain="parcel tracking"), tools=[ORDER_TOOL],
        tasks=[task("Find out where order A1 is."), second], messages=messages, counters=counters,
        stop_reason=StopReason.COMPLETED, reference_time="2026-04-02T08:30:00Z",
        limits=Limits(history_window=history_window),
    )


def task_mode_state(*, seed: int = 12) -> DialogueState:
    lookup = ToolCall(id="call_t1", name="get_order", arguments={"order_id": "B2"})
    messages = [
        user("Look up order B2 and tell me its status."),
        calls(lookup),
        result(lookup, {"order_id": "B2", "status": "delivered"}),
        reply("Order B2 was delivered."),
    ]
    counters = Counters(user_turns=1, assistant_turns=2, tool_calls=1, requests=1, step_counts=[1],
                        usage={"agent": TokenUsage(prompt=300, completion=40, calls=2)})
    return DialogueState(
        mode=Mode.TASK, seed=seed, scenario=Scenario(domain="online store support"), tools=[ORDER_TOOL],
        tasks=[task("Find the status of order B2.", TaskStatus.ACTIVE)], messages=messages, counters=counters,
        stop_reason=StopReason.AGENT_FINISHED, tool_source=ToolSource.SEED,
    )


def store_states(db: Path, states: dict[str, DialogueState], *, run_id: str = "run0",
                 run_config: dict[str, Any] | None = None, lineage: dict[str, tuple[str, str]] | None = None) -> None:
    """Write each state as a finished trajectory of one run, through the real checkpointer."""
    manifest = Manifest(db, create=True)
    try:
        manifest.record_run(run_id, run_config if run_config is not None else {"settings": {"seed": 1}, "models": {}})
        manifest.record_planned([
            PlannedTrajectory(
                thread_id=tid, run_id=run_id, seed=s.seed, mode=s.mode.value, domain=s.scenario.domain,
                config_hash="test", initial_state="{}",
                parent_thread_id=(lineage or {}).get(tid, (None, None))[0],
                fork_checkpoint_id=(lineage or {}).get(tid, (None, None))[1],
            )
            for tid, s in states.items()
        ])
        with open_saver(db) as saver:
            for tid, state in states.items():
                graph = compile_graph(state.mode, saver)
                values = {name: getattr(state, name) for name in DialogueState.model_fields}
                graph.update_state({"configurable": {"thread_id": tid}}, values, as_node="simulate_user")
        for tid, state in states.items():
            manifest.mark_finished(tid, state)
    finally:
        manifest.close()


def append_messages(db: Path, thread_id: str, state: DialogueState, extra: list[Message]) -> DialogueState:
    """Continue a stored trajectory (as a resume would), so its validation goes stale."""
    with open_saver(db) as saver:
        graph = compile_graph(state.mode, saver)
        graph.update_state({"configurable": {"thread_id": thread_id}}, {"messages": extra}, as_node="simulate_user")
    return state.model_copy(update={"messages": [*state.messages, *extra]})


SEARCH_TOOL = ToolSpec(function=FunctionSpec(
    name="orders.search", description="Search orders.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}, "required": ["query"]},
))


def edge_state(*, seed: int = 13) -> DialogueState:
    """What a scripted run does not produce: words beside a call, a dotted tool name (also in the
    system prompt), a parallel turn with one unknown tool, arguments that are not JSON, a
    plain-text result, non-ASCII text everywhere, and two tasks."""
    look = ToolCall(id="call_e1", name="get_order", arguments={"order_id": "Ä1"})
    search = ToolCall(id="call_e2", name="orders.search", arguments={"query": "late orders ☂", "limit": 5})
    unknown = ToolCall(id="call_e3", name="get_weather", arguments={"city": "Zürich"})
    broken = ToolCall(id="call_e4", name="cancel_order", raw_arguments='{"order_id": "Ä1",')
    cancel = ToolCall(id="call_e5", name="cancel_order", arguments={"order_id": "Ä1", "reason": "late"})
    other = ToolCall(id="call_e6", name="get_order", arguments={"order_id": "B2"})
    messages = [
        Message(role="system", content="You are the store's assistant. Find orders with orders.search."),
        user("Hi — can you find order Ä1 and tell me whether it is late?"),
        Message(role="assistant", content="Let me look that up.", tool_calls=[look], reasoning="Look the order up first.", task_index=0),
        result(look, {"order_id": "Ä1", "status": "shipped", "eta": "2026-03-02"}),
        calls(search, unknown, reasoning="Search late orders and check the weather at the same time."),
        result(search, {"results": [{"order_id": "Ä1", "late": True}], "total": 1}),
        result(unknown, {"error": "unknown tool 'get_weather'; available tools: cancel_order, get_order, orders.search"}, error=True),
        reply("Order Ä1 has shipped and is late (ETA 2 March).", reasoning="It is in the late list."),
        user("Please cancel it."),
        calls(broken, reasoning="Cancel it."),
        result(broken, {"error": "arguments for cancel_order are not a JSON object: '{\"order_id\": \"Ä1\",'"}, error=True),
        calls(cancel, reasoning="The arguments were cut off; send them whole."),
        result(cancel, "cancelled"),
        reply("Done: order Ä1 is cancelled.", reasoning="Confirm the cancellation."),
        user("Thanks. And order B2?", task_index=1),
        calls(other, reasoning="A second task: look up B2.", task_index=1),
        result(other, {"order_id": "B2", "status": "delivered"}, task_index=1),
        reply("Order B2 was delivered.", reasoning="Report B2.", task_index=1),
        user("Great, that's all!", task_index=1),
    ]
    counters = Counters(user_turns=4, assistant_turns=9, tool_calls=6, tool_errors=2, requests=3, step_counts=[2, 2, 1],
                        tasks_completed=2, usage={"agent": TokenUsage(prompt=1500, completion=200, calls=9)})
    return DialogueState(
        mode=Mode.USER, seed=seed, scenario=Scenario(domain="online store support"),
        tools=[ORDER_TOOL, CANCEL_TOOL, SEARCH_TOOL], tasks=[task(), task("Find where order B2 is.")], messages=messages,
        counters=counters, stop_reason=StopReason.COMPLETED, reference_time="2026-03-01T10:00:00Z",
    )


def validation_rows(db: Path) -> list[dict[str, Any]]:
    """The stored ``validations`` table, one dict per trajectory, in thread order."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM validations ORDER BY thread_id")]
    finally:
        conn.close()
