"""Task proposal: the latent user goal that drives a stretch of the dialogue.

Later calls propose a further task in the same conversation: one that builds
on earlier tool results or is a coherent new objective in the same domain.
When the tool set is fixed (a tool library, seed tools only, Tool-Exec) the
proposer sees it and may only expect tools in it: the answer's schema lists
their names and an answer naming another is sent back with the reason. A
library trajectory's first task was proposed while the run was planned, with
the goals proposed before it for the same library in view
(``dialogforge.runs.first_tasks``); this node adopts it, and later proposals
see those goals too (``DialogueState.library_goals``).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError, ToolBackendError
from dialogforge.executors.contract import ToolExecutor
from dialogforge.languages import task_instruction
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState, ProposedTask
from dialogforge.models import RoleModel, generate_structured
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import prompt_messages, prompt_text
from dialogforge.records import GoalDigest, Task, TokenUsage, ToolSource


async def propose_task(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    if state.stop_reason is not None:
        return {}  # it starts stopped: planning failed it (its tool library could not be built)
    model = runtime.context.models[Role.TASK_PROPOSER]
    if not state.tasks and state.planned_task is not None:
        return {"tasks": [state.planned_task], "planned_task": None,
                **charge(state, state.counters, model.role, TokenUsage())}  # its tokens were counted when planned
    try:  # the context reads the Tool-Exec database, which can fail like any tool backend
        task, usage = await propose(state, model, runtime.context.executor, state.library_goals)
    except (ModelCallError, ToolBackendError) as exc:
        return failed(exc, state, model.role)
    return {"tasks": [*state.tasks, task], **charge(state, state.counters, model.role, usage)}


async def propose(state: DialogueState, model: RoleModel, executor: ToolExecutor,
                  goals: GoalDigest | None) -> tuple[Task, TokenUsage]:
    """One proposal for ``state``, seeing ``goals`` (the run's goals for its library so far)."""
    continuation = prompt_text("propose_task_continuation") if state.tasks else ""
    messages = prompt_messages("propose_task", _context(state, executor, goals), continuation=continuation,
                               language=task_instruction(state.language))
    names = fixed_tool_names(state)
    if names is None:
        proposal, usage = await generate_structured(model, ProposedTask, messages, seed=state.seed)
    else:
        proposal, usage = await generate_structured(
            model, ProposedTask, messages, seed=state.seed, json_schema=_schema_naming(tuple(names)),
            check=lambda answer: _unknown_tools(answer, names),
        )
    return Task(**proposal.model_dump()), usage


def fixed_tool_names(state: DialogueState) -> list[str] | None:
    """The tools a task may expect when no synthesis will add any; None when it may."""
    if state.tool_library is not None or (state.tool_source is ToolSource.SEED and state.tools):
        return [t.name for t in state.tools]
    return None


def _unknown_tools(answer: Any, names: list[str]) -> str | None:
    if not answer.expected_tools:
        return "expected_tools is empty: name the tools (from the context's list) the assistant will need"
    unknown = [name for name in answer.expected_tools if name not in names]
    if unknown:
        return f"expected_tools names {unknown[0]!r}, which is not one of the tools; use only the tools in the context"
    return None


@lru_cache(maxsize=256)
def _schema_naming(names: tuple[str, ...]) -> dict[str, Any]:
    """ProposedTask's JSON Schema with ``expected_tools`` limited to these names (a library's
    trajectories share one tool list, so this is built once per list)."""
    schema = copy.deepcopy(ProposedTask.model_json_schema())
    schema["properties"]["expected_tools"] = {
        "type": "array", "items": {"type": "string", "enum": list(names)}, "minItems": 1,
        "description": "Names of the tools the assistant will need, all from the given tool set.",
    }
    return schema


def _context(state: DialogueState, executor: ToolExecutor, goals: GoalDigest | None) -> dict[str, Any]:
    recent = [m.content[:400] for m in state.messages[-12:] if m.role == "tool" and not m.is_error]
    context: dict[str, Any] = {
        "scenario": state.scenario.model_dump(mode="json"),
        "tools": [{"name": t.name, "description": t.function.description} for t in state.tools],
        "fixed_tools": fixed_tool_names(state) is not None,
        "previous_tasks": [{"goal": t.goal, "status": t.status.value} for t in state.tasks],
        "recent_results": recent[-5:],
        "world": executor.task_context(state),
    }
    if goals is not None and goals.count:
        context["goals_already_proposed"] = goals.model_dump()
    return context
