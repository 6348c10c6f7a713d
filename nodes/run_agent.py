"""Agent reasoning: the model under training data generation, with the tools bound.

It never sees the user's hidden goal, only the conversation, held to its
context budget (``dialogforge.context_windows``): the oldest exchanges leave
once the dialogue outgrows it, and inside a tool loop its earlier reasoning
of that loop goes back with its turns. Each turn records the window it was
generated from (``Message.context``), so an export trains it on exactly that.
Its reasoning is kept on the message, apart from the reply.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import SystemMessage
from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.context_windows import OVERFLOW_RETRIES, agent_view, agent_window
from dialogforge.errors import ContextOverflowError, ModelCallError
from dialogforge.models import generate_agent_turn
from dialogforge.models.convert import history
from dialogforge.models.tool_wire import tools_tokens
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode, StopReason
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import agent_system_prompt
from dialogforge.tokens import MESSAGE_OVERHEAD, estimate_tokens



async def run_agent(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    counters = state.counters
    if counters.steps_this_request >= state.limits.max_tool_steps:
        return {"stop_reason": StopReason.MAX_TOOL_STEPS}
    model = runtime.context.models[Role.AGENT]
    system = agent_system_prompt(state)
    fixed = estimate_tokens(system) + MESSAGE_OVERHEAD + tools_tokens(state.tools)
    limit = None  # the model's context, once a refusal names it
    for refused in range(OVERFLOW_RETRIES + 1):
        try:
            window = agent_window(state.messages, fixed=fixed, budget=state.limits.agent_context_tokens,
                                  refused=refused, model_context=limit)
            shown, reasoning_from = agent_view(state.messages, len(state.messages), window)
            reply, usage = await generate_agent_turn(
                model, [SystemMessage(system), *history(shown, reasoning_from=reasoning_from)], state.tools,
                seed=state.seed, task_index=len(state.tasks) - 1,
            )
        except ContextOverflowError as exc:
            if refused == OVERFLOW_RETRIES:
                return failed(ModelCallError(f"{exc} (also with the window cut to {window.scale:.0%} of the context budget)",
                                             usage=exc.usage), state, model.role)
            limit = exc.model_context or limit
            continue
        except ModelCallError as exc:
            return failed(exc, state, model.role)
        break
    # The endpoint's count of this very request calibrates the next window (one call; a nudged retry is two).
    reported = usage.prompt if usage.calls == 1 and usage.prompt else None
    window = window.model_copy(update={"prompt_tokens": reported, "nudged": usage.calls > 1})
    reply = reply.model_copy(update={"context": window})
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

