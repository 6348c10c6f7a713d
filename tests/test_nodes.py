"""Each node's contract, called directly with a state and a runtime."""

import json

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from dialogforge.config import ModelConfig, Role
from dialogforge.graphs.state import DialogueState
from dialogforge.models import RoleModel
from dialogforge.records import FunctionSpec, LibraryRef, Message, Mode, Scenario, StopReason, TaskStatus, ToolCall, ToolSource, ToolSpec
from dialogforge.nodes.execute_tools import execute_tools
from dialogforge.nodes.propose_task import propose_task
from dialogforge.nodes.run_agent import run_agent
from dialogforge.nodes.simulate_user import simulate_user
from dialogforge.nodes.synthesize_tools import synthesize_tools
from dialogforge.tool_checks import first_violation
from tests.support.builders import garbage_model, order_tool, runtime_with, scripted_set, state_with_task


async def test_propose_task_appends_a_latent_task():
    state = DialogueState(scenario=Scenario(domain="airline bookings"), seed=1)
    update = await propose_task(state, runtime_with())
    (task,) = update["tasks"]
    assert task.goal and task.subtasks and task.rubric
    assert task.status is TaskStatus.ACTIVE
    assert update["counters"].usage["task_proposer"].calls == 1


async def test_propose_task_failure_is_recorded_not_raised():
    models = scripted_set()
    models.models[Role.TASK_PROPOSER] = garbage_model(Role.TASK_PROPOSER)
    update = await propose_task(DialogueState(scenario=Scenario(domain="x")), runtime_with(models))
    assert update["stop_reason"] is StopReason.ERROR
    assert "invalid ProposedTask output after 3 attempts" in update["error"]


async def test_synthesized_tools_are_valid_named_and_typed_consistently():
    state = state_with_task(tools=[], tool_source=ToolSource.SYNTHESIZE)
    for seed in range(6):
        update = await synthesize_tools(state.model_copy(update={"seed": seed}), runtime_with())
        tools = update["tools"]
        assert 1 <= len(tools) <= 40
        names = [t.name for t in tools]
        assert len(names) == len(set(names))
        for tool in tools:
            assert tool.name.split("_")[0] in {"get", "search", "create", "update", "delete"}
            assert tool.function.parameters["type"] == "object"
            assert tool.result_schema.get("properties"), tool.name
        id_types = {}
        for tool in tools:
            for name, prop in tool.result_schema["properties"].items():
                if name.endswith("_id"):
                    id_types.setdefault(name, set()).add(prop["type"])
        assert all(len(types) == 1 for types in id_types.values()), id_types


async def test_seed_only_tools_are_left_alone():
    state = state_with_task(tool_source=ToolSource.SEED)
    assert await synthesize_tools(state, runtime_with()) == {}


async def test_user_turn_reveals_the_goal_piece_by_piece():
    state = state_with_task()
    update = await simulate_user(state, runtime_with())
    (message,) = update["messages"]
    assert message.role == "user" and message.task_index == 0
    assert message.content != state.tasks[0].goal
    assert update["counters"].user_turns == 1


async def test_task_mode_hands_over_the_whole_task():
    state = state_with_task(mode=Mode.TASK)
    update = await simulate_user(state, runtime_with())
    text = update["messages"][0].content
    assert state.tasks[0].goal in text
    assert all(f"- {s}" in text for s in state.tasks[0].subtasks)


async def test_user_turn_stops_at_the_turn_cap():
    state = state_with_task()
    state = state.model_copy(update={"counters": state.counters.model_copy(update={"user_turns": state.limits.max_user_turns})})
    assert (await simulate_user(state, runtime_with()))["stop_reason"] is StopReason.MAX_USER_TURNS


async def test_a_pending_user_message_is_sent_verbatim():
    state = state_with_task(pending_user_message="Actually, cancel order A1.")
    update = await simulate_user(state, runtime_with())
    assert update["messages"][0].content == "Actually, cancel order A1."
    assert update["pending_user_message"] is None


async def test_agent_keeps_reasoning_apart_and_counts_steps():
    state = state_with_task(messages=[Message(role="user", content="Hi, could you help me get order for the latest case?")])
    update = await run_agent(state, runtime_with())
    (reply,) = update["messages"]
    assert reply.role == "assistant" and reply.reasoning
    assert reply.reasoning not in reply.content
    if reply.tool_calls:
        assert update["counters"].steps_this_request == 1
    else:
        assert update["counters"].step_counts == [0]


async def test_agent_stops_at_the_tool_step_cap():
    state = state_with_task(messages=[Message(role="user", content="hi")])
    state = state.model_copy(update={"counters": state.counters.model_copy(update={"steps_this_request": state.limits.max_tool_steps})})
    assert (await run_agent(state, runtime_with()))["stop_reason"] is StopReason.MAX_TOOL_STEPS


def _after_calls(*calls: ToolCall, said: str = "Hi, where is my order A1?") -> DialogueState:
    return state_with_task(messages=[Message(role="user", content=said), Message(role="assistant", tool_calls=list(calls))])


async def test_invalid_arguments_become_a_tool_error_and_the_dialogue_goes_on():
    state = _after_calls(
        ToolCall(id="a", name="get_order", arguments={"verbose": True}),  # order_id missing
        ToolCall(id="b", name="get_order", arguments={"order_id": 7}),  # wrong type
        ToolCall(id="c", name="cancel_everything", arguments={}),  # unknown tool
        ToolCall(id="d", name="get_order", raw_arguments="{not json"),
    )
    update = await execute_tools(state, runtime_with())
    replies = update["messages"]
    assert [r.tool_call_id for r in replies] == ["a", "b", "c", "d"]
    assert all(r.is_error for r in replies)
    assert "order_id" in replies[0].content and "unknown tool" in replies[2].content
    assert update["counters"].tool_errors == 4
    assert "stop_reason" not in update


async def test_valid_calls_get_results_that_match_the_result_schema():
    state = _after_calls(ToolCall(id="a", name="get_order", arguments={"order_id": "A1"}))
    update = await execute_tools(state, runtime_with())
    (reply,) = update["messages"]
    assert not reply.is_error and reply.name == "get_order"
    result = json.loads(reply.content)
    assert first_violation(order_tool().result_schema, result) is None
    assert result["order_id"] == "A1"  # arguments carried into the result
    assert [(op.op, op.kind, op.id) for op in reply.entity_ops] == [("read", "order", "A1")]  # what the lookup showed


async def test_an_id_nobody_gave_is_not_found_and_counted_by_kind():
    state = _after_calls(ToolCall(id="a", name="get_order", arguments={"order_id": "ZZ-404"}))
    update = await execute_tools(state, runtime_with())
    (reply,) = update["messages"]
    assert reply.is_error and json.loads(reply.content)["code"] == "not_found" and "ZZ-404" in reply.content
    assert reply.entity_ops == []
    assert update["counters"].tool_errors == 1 and update["counters"].tool_error_kinds == {"not_found": 1}


async def test_tool_simulator_failure_fails_the_trajectory_with_a_reason():
    models = scripted_set()
    models.models[Role.TOOL_SIMULATOR] = garbage_model(Role.TOOL_SIMULATOR, '{"result": 1}')
    state = _after_calls(ToolCall(id="a", name="get_order", arguments={"order_id": "A1"}))
    update = await execute_tools(state, runtime_with(models))
    assert update["stop_reason"] is StopReason.ERROR
    assert "result schema" in update["error"]


async def test_propose_task_records_a_tool_exec_database_that_is_gone(tmp_path):
    from dialogforge.sqltools.domain import load_sql_domain
    from dialogforge.graphs.context import GraphContext
    from langgraph.runtime import Runtime
    from dialogforge.executors.sql import SqlToolExecutor
    from tests.support.sql import build_notes_domain

    db = build_notes_domain(tmp_path / "domain")
    executor = SqlToolExecutor(load_sql_domain(db, db.with_name("notes.tools.json")), tmp_path / "work", "t1")
    db.unlink()  # the task proposer samples rows from it: a backend failure, not a crash
    update = await propose_task(DialogueState(scenario=Scenario(domain="notes"), seed=3),
                                Runtime(context=GraphContext(models=scripted_set(), executor=executor)))
    assert update["stop_reason"] is StopReason.ERROR
    assert update["error"].startswith("Tool-Exec database")


def test_a_schema_requiring_an_undefined_parameter_is_refused():
    from dialogforge.tool_checks import schema_problem

    assert schema_problem({"type": "object", "properties": {}, "required": ["item_id"]}) == \
        "required parameter 'item_id' is not among its properties"
    assert schema_problem({"type": "object", "properties": {"item_id": {"type": "string"}}, "required": ["item_id"]}) is None


# --- tool synthesis per trajectory, and trajectories over a tool library ---


def _seed(name: str, result_schema: dict) -> ToolSpec:
    params = {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}
    return ToolSpec(function=FunctionSpec(name=name, parameters=params), result_schema=result_schema, source="seed")


async def test_a_seed_result_schema_that_is_an_array_is_kept_and_a_missing_one_predicted():
    listing = {"type": "array", "items": {"type": "object", "properties": {"order_id": {"type": "integer"}}}}
    state = state_with_task(tools=[_seed("list_orders", listing), _seed("get_order", {"type": "object"})],
                            tool_source=ToolSource.SEED)
    tools = {t.name: t for t in (await synthesize_tools(state, runtime_with()))["tools"]}
    assert tools["list_orders"].result_schema == listing  # the seed's own, never re-predicted
    assert tools["get_order"].result_schema.get("properties")
    assert tools["get_order"].function == state.tools[1].function


async def test_synthesized_tools_take_the_seed_tools_entity_types():
    state = state_with_task(tools=[_seed("list_orders", {"type": "array", "items": {"type": "object"}})],
                            tool_source=ToolSource.SEED_PLUS, scenario=Scenario(domain="online orders"))
    task = state.tasks[0].model_copy(update={"expected_tools": ["get_order", "update_order"]})
    update = await synthesize_tools(state.model_copy(update={"tasks": [task]}), runtime_with())
    added = [t for t in update["tools"] if t.source == "synthesized"]
    assert {"get_order", "update_order"} <= {t.name for t in added}  # the task's missing tools, asked for first
    for tool in added:
        for schema in (tool.function.parameters, tool.result_schema):
            for name, sub in (schema.get("properties") or {}).items():
                if name == "order_id":
                    assert sub["type"] == "integer", (tool.name, schema)  # the seed's type wins


async def test_the_first_gap_analysis_asks_for_the_tasks_missing_tools():
    task = state_with_task().tasks[0].model_copy(update={"expected_tools": ["search_flight", "delete_flight"]})
    state = state_with_task(tools=[], tool_source=ToolSource.SYNTHESIZE, tasks=[task],
                            scenario=Scenario(domain="airline bookings"))
    update = await synthesize_tools(state, runtime_with())
    assert {"search_flight", "delete_flight"} <= {t.name for t in update["tools"]}


async def test_a_library_trajectory_keeps_its_tools_and_adopts_its_planned_task():
    planned = state_with_task().tasks[0]
    state = DialogueState(scenario=Scenario(domain="online store"), tools=[order_tool()], seed=3, planned_task=planned,
                          tool_library=LibraryRef(id="abc", name="store", tools=["get_order"]))
    assert await synthesize_tools(state.model_copy(update={"tasks": [planned]}), runtime_with()) == {}
    update = await propose_task(state, runtime_with())
    assert update["tasks"] == [planned] and update["planned_task"] is None
    assert update["counters"].usage["task_proposer"].calls == 0  # counted when it was planned


async def test_with_a_fixed_tool_set_an_expected_tool_outside_it_is_sent_back():
    wrong = {"goal": "The user wants to track order A1.", "subtasks": ["track it"], "rubric": [{"criterion": "tracked"}],
             "expected_tools": ["get_tracking"]}
    right = {**wrong, "expected_tools": ["get_order"]}
    chat = GenericFakeChatModel(messages=iter([AIMessage(json.dumps(wrong)), AIMessage(json.dumps(right))]))
    models = scripted_set()
    models.models[Role.TASK_PROPOSER] = RoleModel(role=Role.TASK_PROPOSER, config=ModelConfig(backend="scripted"), chat=chat)
    state = DialogueState(scenario=Scenario(domain="online store"), tools=[order_tool()], seed=3,
                          tool_library=LibraryRef(id="abc", name="store", tools=["get_order"]))
    update = await propose_task(state, runtime_with(models))
    assert update["tasks"][0].expected_tools == ["get_order"]
    assert update["counters"].usage["task_proposer"].calls == 2
