"""Tool synthesis per trajectory: the tools a task needs, when no tool library fixes them.

A run normally prepares its tools once per domain, before any trajectory
starts (a tool library, ``dialogforge.toolprep.library``): such a trajectory
has ``tool_library`` set and this node adds nothing, so its tools are the
same at every turn. Per-trajectory synthesis (``--tools-per-trajectory``)
runs the same stages (``dialogforge.toolprep.stages``) here, conditioned on
the active task: questions -> specs -> gap analysis for the task's missing
tools -> result schemas, with shared entities typed alike. With seed tools
only (``ToolSource.SEED``) the node just predicts the result schemas the
seed file did not give; a seed tool's own schema, arrays included, is kept.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState
from dialogforge.nodes.outcome import charge, failed
from dialogforge.records import ToolExec, ToolSource, ToolSpec
from dialogforge.tool_checks import harmonize, needs_result_schema
from dialogforge.toolprep.stages import MAX_TOOLS, ToolStages


async def synthesize_tools(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    if state.tool_library is not None:
        return {}  # a library's tools are fixed from the first turn
    model = runtime.context.models[Role.TOOL_SYNTHESIZER]
    stages = ToolStages(model, state.seed)
    own = [t.name for t in state.tools if t.source == "seed" and not needs_result_schema(t)]
    try:
        tools = await _extend(stages, state)
        if state.tool_exec is not ToolExec.MCP:  # a real server answers verbatim: no schema to predict
            tools = (await stages.result_schemas(tools))[0]
    except ModelCallError as exc:
        return failed(exc)
    if stages.usage.calls == 0:
        return {}
    tools = harmonize(tools, own)[0]
    return {"tools": tools, **charge(state, state.counters, model.role, stages.usage)}


async def _extend(stages: ToolStages, state: DialogueState) -> list[ToolSpec]:
    tools = list(state.tools)
    if state.tool_source is ToolSource.SEED or len(tools) >= MAX_TOOLS:
        return tools
    context = _context(state)
    if not tools:
        questions = await stages.questions(context)
        tools = await stages.drafts({**context, "questions": questions}, [])
        return tools + [spec for spec, _ in await stages.gap(context, tools, _missing_for_task(state, tools))]
    missing = _missing_for_task(state, tools)
    first_extension = state.tool_source is ToolSource.SEED_PLUS and not any(t.source == "synthesized" for t in tools)
    if missing or first_extension:
        tools = tools + [spec for spec, _ in await stages.gap(context, tools, missing)]
    return tools[:MAX_TOOLS]


def _context(state: DialogueState) -> dict[str, Any]:
    task = state.active_task
    return {
        "scenario": state.scenario.model_dump(mode="json"),
        "task": task.model_dump(mode="json", include={"goal", "subtasks", "expected_tools"}) if task else None,
    }


def _missing_for_task(state: DialogueState, tools: list[ToolSpec]) -> list[str]:
    task = state.active_task
    names = {t.name for t in tools}
    return [name for name in (task.expected_tools if task else []) if name not in names]
