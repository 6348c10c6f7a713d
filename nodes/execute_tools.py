"""Tool execution: answers the agent's tool calls, and never raises into the graph.

A call to an unknown tool, or with arguments that break the tool's schema,
becomes a tool message with an error and the dialogue goes on: such turns
are exactly the recoveries a tool-using model must learn. Valid calls go to
the run's executor (an LLM world model or SQL), one after another so each
sees the world as the previous one left it. Every error, the executor's too
(not found, conflict, a transient failure...), is a tool message flagged
``is_error`` and counted by kind.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError, ToolBackendError
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message, TokenUsage, ToolCall, ToolErrorKind, ToolSpec
from dialogforge.nodes.outcome import charge, failed
from dialogforge.executors.contract import ExecutionOutcome
from dialogforge.tool_checks import first_violation


async def execute_tools(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    specs = {tool.name: tool for tool in state.tools}
    writes = list(state.sql_writes)  # Tool-Exec: each call must see the writes before it
    usage = TokenUsage()
    divergences = list(state.mcp_divergences)  # MCP: kept, never hidden
    replies: list[Message] = []
    kinds: Counter[str] = Counter(state.counters.tool_error_kinds)
    for call in state.messages[-1].tool_calls:
        # Each call sees the answers before it: the simulated world is the fold of the tool messages.
        seen = state.model_copy(update={"messages": [*state.messages, *replies], "sql_writes": writes})
        try:
            outcome = await _answer(seen, specs, call, runtime.context)
        except (ModelCallError, ToolBackendError) as exc:
            return failed(exc)
        if outcome.sql_write is not None:
            writes.append(outcome.sql_write)
        if outcome.is_error:
            kinds[(outcome.error_kind or ToolErrorKind.FAILED).value] += 1
        divergences.extend(outcome.mcp_divergences)
        usage = usage.plus(outcome.usage)
        replies.append(Message(
            role="tool", content=outcome.content, tool_call_id=call.id, name=call.name,
            is_error=outcome.is_error, task_index=len(state.tasks) - 1, entity_ops=outcome.entity_ops,
        ))
    errors = sum(1 for r in replies if r.is_error)
    counters = state.counters.model_copy(update={
        "tool_errors": state.counters.tool_errors + errors, "tool_error_kinds": dict(sorted(kinds.items())),
    })
    update: dict[str, Any] = {"messages": replies, "counters": counters}
    if len(writes) != len(state.sql_writes):
        update["sql_writes"] = writes
    if len(divergences) != len(state.mcp_divergences):
        update["mcp_divergences"] = divergences
    if usage.calls:
        update.update(charge(state, counters, Role.TOOL_SIMULATOR, usage))
    return update


async def _answer(state: DialogueState, specs: dict[str, ToolSpec], call: ToolCall, context: GraphContext) -> ExecutionOutcome:
    problem = call_problem(specs, call)
    if problem:
        content = json.dumps({"error": problem, "code": ToolErrorKind.INVALID_CALL.value}, ensure_ascii=False)
        return ExecutionOutcome(content=content, is_error=True, error_kind=ToolErrorKind.INVALID_CALL)
    return await context.executor.execute(state, specs[call.name], call)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def call_problem(specs: dict[str, ToolSpec], call: ToolCall) -> str | None:
    """Why a call cannot run, phrased for the agent to correct itself."""
    spec = specs.get(call.name)
    if spec is None:
        return f"unknown tool {call.name!r}; available tools: {', '.join(sorted(specs)) or 'none'}"
    if call.raw_arguments is not None:
        if _is_json_object(call.raw_arguments):  # parsed fine, but held a lone surrogate (see models.convert)
            return f"arguments for {call.name} are not valid Unicode text: {call.raw_arguments[:200]}"
        return f"arguments for {call.name} are not a JSON object: {call.raw_arguments[:200]!r}"
    violation = first_violation(spec.function.parameters, call.arguments)
    if violation:
        return f"invalid arguments for {call.name}: {violation}"
    return None
