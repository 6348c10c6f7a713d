"""What each role sent on the wire, read back from the stub server's recorded requests; and two
drivers for world-model tests: a long trajectory through the whole graph, and a hand-driven
backend that answers one tool call at a time through the real tool-execution node."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from dialogforge.checkpoints.sqlite_savers import open_async_saver
from dialogforge.config import ModelConfig, ModelsConfig, Role
from dialogforge.executors.simulated import SimulatedToolExecutor
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState
from dialogforge.models import ModelSet
from dialogforge.nodes.execute_tools import execute_tools
from dialogforge.records import FunctionSpec, Limits, Message, Mode, Scenario, ToolCall, ToolSimulation, ToolSpec
from dialogforge.runs.engine import RECURSION_LIMIT
from dialogforge.runs.planning import graph_input
from dialogforge.testing.wire_check import agent_requests, sample_context, wire_message  # noqa: F401 (for tests)

_CONTEXT_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def stub_models(base_url: str) -> ModelsConfig:
    return ModelsConfig(default=ModelConfig(backend="openai", base_url=base_url, model="scripted", max_retries=1))


def schema_name(body: dict) -> str | None:
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("name")


def simulator_requests(requests: list[dict]) -> list[dict]:
    """The tool simulator's requests (its structured output is ``ToolResult``)."""
    return [body for body in requests if schema_name(body) == "ToolResult"]


def user_simulator_requests(requests: list[dict]) -> list[dict]:
    return [body for body in requests if schema_name(body) == "UserTurn"]


def context_of(body: dict) -> dict[str, Any]:
    """The last JSON context block of a request's messages (what the role was shown)."""
    for message in reversed(body["messages"]):
        blocks = _CONTEXT_BLOCK.findall(str(message.get("content") or ""))
        if blocks:
            return json.loads(blocks[-1])
    return {}


def long_dialogue(seed: int, turns: int, simulation: ToolSimulation | None = None, *,
                  context_tokens: int | None = None) -> DialogueState:
    """A user with more goals than turns: the trajectory ends at ``turns`` user turns.
    ``context_tokens`` is the agent's and the user simulator's budget (default: the defaults)."""
    budgets = {"agent_context_tokens": context_tokens, "user_context_tokens": context_tokens} if context_tokens else {}
    return DialogueState(
        seed=seed, scenario=Scenario(domain="customer support for an online store", target_tasks=100_000),
        limits=Limits(max_user_turns=turns, max_tasks=100_000, max_tool_steps=8, **budgets),
        simulation=simulation or ToolSimulation(),
    )


async def run_graph(db: Path, thread_id: str, start: DialogueState | None, base_url: str, *,
                    stop_after_calls: int | None = None) -> DialogueState:
    """Run (or, with ``start=None``, continue) one trajectory on the project's SQLite checkpointer.

    ``stop_after_calls`` stops it after the first checkpoint holding more tool calls than that,
    the way a crash would: what the database holds is all that survives.
    """
    models = ModelSet.from_config(stub_models(base_url))
    context = GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": RECURSION_LIMIT}
    values: dict[str, Any] = {}
    try:
        async with open_async_saver(db) as saver:
            graph = compile_graph(Mode.USER, saver)
            async for values in graph.astream(None if start is None else graph_input(start), config,
                                              context=context, stream_mode="values"):
                calls = sum(len(m.tool_calls) for m in values.get("messages", []))
                if stop_after_calls is not None and calls > stop_after_calls:
                    break
    finally:
        await models.aclose()
    return DialogueState.model_validate(values)


def ticket_tools() -> list[ToolSpec]:
    """The scripted synthesizer's shape of tools for one entity kind, ``ticket``."""
    record = {"type": "object", "properties": {"ticket_id": {"type": "string"}, "status": {"type": "string"},
                                               "updated_at": {"type": "string", "format": "date-time"}},
              "required": ["ticket_id"]}
    key = {"type": "object", "properties": {"ticket_id": {"type": "string"}}, "required": ["ticket_id"]}

    def tool(name: str, parameters: dict, result: dict) -> ToolSpec:
        return ToolSpec(function=FunctionSpec(name=name, description=f"{name.replace('_', ' ')}.", parameters=parameters),
                        result_schema=result)

    return [
        tool("create_ticket", {"type": "object", "properties": {"name": {"type": "string"}, "notes": {"type": "string"},
                                                                "quantity": {"type": "integer"}}, "required": ["name"]}, record),
        tool("update_ticket", {"type": "object", "properties": {
            "ticket_id": {"type": "string"}, "status": {"type": "string", "enum": ["open", "on_hold", "closed"]}},
            "required": ["ticket_id", "status"]}, record),
        tool("get_ticket", key, record),
        tool("delete_ticket", key, {"type": "object", "properties": {"deleted": {"type": "boolean"}}, "required": ["deleted"]}),
    ]


class Backend:
    """One trajectory's tool calls, made by hand and answered by the real node and simulator."""

    def __init__(self, base_url: str, said: str, *, seed: int = 3, simulation: ToolSimulation | None = None,
                 tools: list[ToolSpec] | None = None) -> None:
        self.models = ModelSet.from_config(stub_models(base_url))
        self.runtime = Runtime(context=GraphContext(models=self.models, executor=SimulatedToolExecutor(self.models[Role.TOOL_SIMULATOR])))
        self.state = DialogueState(scenario=Scenario(domain="help desk"), seed=seed, tools=tools or ticket_tools(),
                                   simulation=simulation or ToolSimulation(tool_error_rate=0),
                                   messages=[Message(role="user", content=said)])
        self._ids = 0

    async def call(self, tool: str, /, call_id: str | None = None, **arguments: Any) -> Message:
        self._ids += 1
        call = ToolCall(id=call_id or f"call_{self._ids}", name=tool, arguments=arguments)
        self.state = self.state.model_copy(update={"messages": [*self.state.messages, Message(role="assistant", tool_calls=[call])]})
        update = await execute_tools(self.state, self.runtime)
        assert "stop_reason" not in update, update.get("error")
        self.state = self.state.model_copy(update={"messages": [*self.state.messages, *update["messages"]],
                                                   "counters": update["counters"]})
        return update["messages"][-1]

    async def aclose(self) -> None:
        await self.models.aclose()
