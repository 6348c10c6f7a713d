"""The graph's shape, and the routing functions that decide every edge."""

from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.routing import after_agent, after_setup_step, after_tools, after_user_turn
from dialogforge.records import Message, Mode, StopReason, TaskStatus, ToolCall
from tests.support.builders import state_with_task

NODES = {"propose_task", "synthesize_tools", "simulate_user", "run_agent", "execute_tools"}


def edges(mode: Mode) -> set[tuple[str, str, str]]:
    graph = compile_graph(mode).get_graph()
    return {(e.source, e.target, str(e.data) if e.data else "") for e in graph.edges}


def test_user_mode_has_every_node_and_the_feedback_edges():
    graph = compile_graph(Mode.USER).get_graph()
    assert NODES <= set(graph.nodes)
    got = {(s, t) for s, t, _ in edges(Mode.USER)}
    assert ("__start__", "propose_task") in got
    assert ("propose_task", "synthesize_tools") in got
    assert ("synthesize_tools", "simulate_user") in got
    assert ("simulate_user", "run_agent") in got
    assert ("run_agent", "execute_tools") in got
    assert ("execute_tools", "run_agent") in got  # tool results feed back to the agent
    assert ("run_agent", "simulate_user") in got  # turn-by-turn feedback
    assert ("simulate_user", "propose_task") in got  # next task in the same dialogue


def test_task_mode_ends_when_the_agent_answers():
    got = {(s, t) for s, t, _ in edges(Mode.TASK)}
    assert ("simulate_user", "propose_task") not in got
    assert ("run_agent", "simulate_user") not in got
    assert ("run_agent", "__end__") in got


def test_conditional_edges_are_labelled():
    labels = {label for _, _, label in edges(Mode.USER)}
    assert {"tool calls", "reply", "task complete", "request", "stop"} <= labels


def test_routing_after_agent():
    call = ToolCall(id="c1", name="get_order", arguments={"order_id": "A1"})
    with_call = state_with_task(messages=[Message(role="assistant", tool_calls=[call])])
    reply = state_with_task(messages=[Message(role="assistant", content="Done.")])
    assert after_agent(with_call) == "tool calls"
    assert after_agent(reply) == "reply"
    assert after_agent(reply.model_copy(update={"stop_reason": StopReason.MAX_TOOL_STEPS})) == "stop"


def test_routing_after_user_turn():
    state = state_with_task()
    assert after_user_turn(state) == "request"
    done = state.model_copy(update={"tasks": [state.tasks[0].model_copy(update={"status": TaskStatus.COMPLETED})]})
    assert after_user_turn(done) == "task complete"
    assert after_user_turn(done.model_copy(update={"mode": Mode.TASK})) == "request"
    assert after_user_turn(state.model_copy(update={"stop_reason": StopReason.COMPLETED})) == "stop"


def test_routing_after_setup_and_tools():
    state = state_with_task()
    assert after_setup_step(state) == "continue"
    assert after_tools(state) == "results"
    failed = state.model_copy(update={"stop_reason": StopReason.ERROR})
    assert after_setup_step(failed) == "stop" and after_tools(failed) == "stop"


def test_routers_run_on_the_event_loop_and_read_only_their_own_fields():
    """A plain-function router would be run in a thread pool at every step (a thread hop per step,
    with the GIL passed to and fro); one typed with the whole state would copy every channel and
    validate the whole state. A whole scripted dialogue runs without the loop's executor."""
    import asyncio
    import inspect
    from tests.support.executors import CountingExecutor

    from langgraph.checkpoint.memory import InMemorySaver

    from dialogforge.graphs.state import DialogueState
    from dialogforge.records import Limits, Scenario
    from dialogforge.runs.planning import graph_input
    from tests.support.builders import scripted_context

    graph = compile_graph(Mode.USER, checkpointer=InMemorySaver())
    for spec in graph.builder.branches.values():
        for branch in spec.values():
            assert inspect.iscoroutinefunction(branch.path.afunc) and not inspect.iscoroutinefunction(branch.path.func)
            assert set(branch.input_schema.model_fields) <= {"stop_reason", "mode", "tasks", "messages"}

    counting = CountingExecutor()

    async def dialogue() -> dict:
        asyncio.get_running_loop().set_default_executor(counting)
        state = DialogueState(seed=5, scenario=Scenario(domain="a bank", target_tasks=2), limits=Limits(max_user_turns=4))
        return await graph.ainvoke(graph_input(state), {"configurable": {"thread_id": "t"}, "recursion_limit": 1000},
                                   context=scripted_context())

    final = DialogueState.model_validate(asyncio.run(dialogue()))
    assert final.stop_reason is not None and len(final.messages) > 6
    assert counting.submitted == 0
