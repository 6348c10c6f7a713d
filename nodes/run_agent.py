"""Agent reasoning: the model under training data generation, with the tools bound.

It never sees the user's hidden goal, only the conversation. Its reasoning
is kept on the message, apart from the reply.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import SystemMessage
from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError
from dialogforge.models import generate_agent_turn
from dialogforge.models.convert import to_langchain
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message, Mode, StopReason
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import agent_system_prompt


async def run_agent(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    counters = state.counters
    if counters.steps_this_request >= state.limits.max_tool_steps:
        return {"stop_reason": StopReason.MAX_TOOL_STEPS}
    model = runtime.context.models[Role.AGENT]
    system = SystemMessage(agent_system_prompt(state))
    history = to_langchain(visible_history(state.messages, state.limits.history_window))
    try:
        reply, usage = await generate_agent_turn(
            model, [system, *history], state.tools, seed=state.seed, task_index=len(state.tasks) - 1
        )
    except ModelCallError as exc:
        return failed(exc)
    counters = counters.model_copy(update={"assistant_turns": counters.assistant_turns + 1})
    if reply.tool_calls:
        counters = counters.model_copy(update={
            "tool_calls": counters.tool_calls + len(reply.tool_calls),
            "steps_this_request": counters.steps_this_request + 1,
        })
    else:
        counters = counters.model_copy(update={
            "step_counts": [*counters.step_counts, counters.steps_this_request],
            "steps_this_request": 0,
        })
    update = {"messages": [reply], **charge(state, counters, model.role, usage)}
    if not reply.tool_calls and state.mode is Mode.TASK:
        update.setdefault("stop_reason", StopReason.AGENT_FINISHED)
    return update


def visible_history(messages: list[Message], window: int) -> list[Message]:
    """The last ``window`` messages, starting at a user message so no tool result is orphaned."""
    if len(messages) <= window:
        return messages
    start = len(messages) - window
    while start < len(messages) and messages[start].role != "user":
        start += 1
    return messages[start:] if start < len(messages) else messages[-1:]
