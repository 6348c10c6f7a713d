"""Task proposal: the latent user goal that drives a stretch of the dialogue.

Later calls propose a further task in the same conversation: one that builds
on earlier tool results or is a coherent new objective in the same domain.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError, ToolBackendError
from dialogforge.languages import task_instruction
from dialogforge.models import generate_structured
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState, ProposedTask
from dialogforge.records import Task
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import prompt_messages, prompt_text

async def propose_task(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    model = runtime.context.models[Role.TASK_PROPOSER]
    continuation = prompt_text("propose_task_continuation") if state.tasks else ""
    try:  # the context reads the Tool-Exec database, which can fail like any tool backend
        messages = prompt_messages("propose_task", _context(state, runtime.context), continuation=continuation,
                                   language=task_instruction(state.language))
        proposal, usage = await generate_structured(model, ProposedTask, messages, seed=state.seed)
    except (ModelCallError, ToolBackendError) as exc:
        return failed(exc)
    task = Task(**proposal.model_dump())
    return {"tasks": [*state.tasks, task], **charge(state, state.counters, model.role, usage)}


def _context(state: DialogueState, context: GraphContext) -> dict[str, Any]:
    recent = [m.content[:400] for m in state.messages[-12:] if m.role == "tool" and not m.is_error]
    return {
        "scenario": state.scenario.model_dump(mode="json"),
        "tools": [{"name": t.name, "description": t.function.description} for t in state.tools],
        "previous_tasks": [{"goal": t.goal, "status": t.status.value} for t in state.tasks],
        "recent_results": recent[-5:],
        "world": context.executor.task_context(state),
    }
