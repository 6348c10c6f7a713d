"""The dialogue graph: one trajectory per LangGraph thread.

START -> propose_task -> synthesize_tools -> simulate_user -> run_agent;
run_agent -> execute_tools -> run_agent (the feedback edge) until the agent
replies; the reply goes back to simulate_user (turn-by-turn feedback); a
completed task goes back to propose_task for the next one. Task mode drops
that last edge: the agent's answer ends the trajectory. A trajectory over a
tool library (``DialogueState.tool_library``) passes synthesize_tools without
a change: its tools were prepared once for its domain, before the run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from dialogforge.compat import langgraph as compat_langgraph
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.routing import after_agent, after_setup_step, after_tools, after_user_turn
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode
from dialogforge.nodes.execute_tools import execute_tools
from dialogforge.nodes.propose_task import propose_task
from dialogforge.nodes.run_agent import run_agent
from dialogforge.nodes.simulate_user import simulate_user
from dialogforge.nodes.synthesize_tools import synthesize_tools


_Label = TypeVar("_Label")


def _on_the_loop(route: Callable[[Any], _Label]) -> Any:
    """A router that runs as a coroutine under the async API: LangGraph runs a plain function's route
    in a thread pool (a context copy, a future and a thread hop for a few attribute reads, once per
    step, and the GIL passed back and forth with every dialogue's). The plain function stays for
    the sync API. Its annotations stay the router's, so the branch still reads only the router's
    view of the state (``graphs.routing``)."""
    @functools.wraps(route)
    async def routed(state: Any) -> _Label:
        return route(state)

    return compat_langgraph.router(route, routed)


def build_graph(mode: Mode = Mode.USER) -> StateGraph:
    graph = StateGraph(DialogueState, context_schema=GraphContext)
    for node in (propose_task, synthesize_tools, simulate_user, run_agent, execute_tools):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "propose_task")
    graph.add_conditional_edges("propose_task", _on_the_loop(after_setup_step), {"continue": "synthesize_tools", "stop": END})
    graph.add_conditional_edges("synthesize_tools", _on_the_loop(after_setup_step), {"continue": "simulate_user", "stop": END})
    user_edges = {"request": "run_agent", "stop": END}
    if mode is Mode.USER:
        user_edges["task complete"] = "propose_task"
    graph.add_conditional_edges("simulate_user", _on_the_loop(after_user_turn), user_edges)
    agent_edges = {"tool calls": "execute_tools", "stop": END}
    if mode is Mode.USER:
        agent_edges["reply"] = "simulate_user"  # in task mode the answer is a stop
    graph.add_conditional_edges("run_agent", _on_the_loop(after_agent), agent_edges)
    graph.add_conditional_edges("execute_tools", _on_the_loop(after_tools), {"results": "run_agent", "stop": END})
    return graph


def compile_graph(mode: Mode = Mode.USER, checkpointer: Checkpointer = None) -> CompiledStateGraph:
    return build_graph(mode).compile(checkpointer=checkpointer)
