"""Tool synthesis: the domain tools a task needs, when no fixed tool set covers it.

Pipeline (PAPER.md): user questions -> tool specs -> gap analysis (up to 10
complementary tools) -> result-schema prediction, with shared entities typed
alike. Every generated spec is validated; an invalid one is regenerated once
with its error fed back, then dropped, never passed on. With seed tools only
(``ToolSource.SEED``) the node just fills in missing result schemas.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from dialogforge.config import Role
from dialogforge.errors import ModelCallError
from dialogforge.models import RoleModel, generate_structured
from dialogforge.graphs.context import GraphContext
from dialogforge.graphs.state import DialogueState, ResultSchemas, ToolDraft, ToolDrafts, UserQuestions
from dialogforge.records import FunctionSpec, TokenUsage, ToolExec, ToolSource, ToolSpec
from dialogforge.nodes.outcome import charge, failed
from dialogforge.nodes.prompting import prompt_messages, prompt_text
from dialogforge.tool_checks import harmonize_entity_types, schema_problem

MAX_COMPLEMENTARY = 10
MAX_TOOLS = 40

class _Synthesis:
    """One node call's worth of LLM stages, with their usage summed."""

    def __init__(self, model: RoleModel, state: DialogueState):
        self.model, self.state, self.usage = model, state, TokenUsage()

    async def ask(self, schema: type, prompt: str, context: dict[str, Any], **values: str) -> Any:
        value, usage = await generate_structured(
            self.model, schema, prompt_messages(prompt, context, **values), seed=self.state.seed
        )
        self.usage = self.usage.plus(usage)
        return value

    def base_context(self) -> dict[str, Any]:
        task = self.state.active_task
        return {
            "scenario": self.state.scenario.model_dump(mode="json"),
            "task": task.model_dump(mode="json", include={"goal", "subtasks", "expected_tools"}) if task else None,
        }

    async def drafts(self, stage: str, context: dict[str, Any], existing: list[ToolSpec]) -> list[ToolSpec]:
        instructions = prompt_text(f"draft_tools_stage_{stage}")
        context = {**context, "stage": stage, "existing_tools": _summaries(existing)}
        answer: ToolDrafts = await self.ask(ToolDrafts, "draft_tools", context, stage_instructions=instructions)
        taken = {t.name for t in existing}
        good, bad = _split_valid(answer.tools, taken)
        if bad:
            retry_context = {**context, "fix_these": [{"tool": d.model_dump(), "problem": p} for d, p in bad]}
            fixed: ToolDrafts = await self.ask(
                ToolDrafts, "draft_tools", retry_context,
                stage_instructions=prompt_text("draft_tools_stage_fix"),
            )
            good += _split_valid(fixed.tools, taken | {g.name for g in good})[0]
        limit = MAX_COMPLEMENTARY if stage == "gap" else MAX_TOOLS
        return [_spec_of(d) for d in good][:limit]

    async def with_result_schemas(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        # Real backends (SQL, an MCP server) answer verbatim: nothing to predict for them.
        needing = [t for t in tools if not t.result_schema.get("properties") and t.sql is None
                   and self.state.tool_exec is not ToolExec.MCP]
        if not needing:
            return tools
        context = {"tools": [{"name": t.name, "description": t.function.description, "parameters": t.function.parameters} for t in needing]}
        answer: ResultSchemas = await self.ask(ResultSchemas, "predict_result_schemas", context)
        predicted = {s.tool_name: s.result_schema for s in answer.schemas if _is_result_schema(s.result_schema)}
        return [t.model_copy(update={"result_schema": predicted[t.name]}) if t.name in predicted else t for t in tools]


async def synthesize_tools(state: DialogueState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    model = runtime.context.models[Role.TOOL_SYNTHESIZER]
    synthesis = _Synthesis(model, state)
    try:
        tools = await _extend(synthesis, state)
        tools = await synthesis.with_result_schemas(tools)
    except ModelCallError as exc:
        return failed(exc)
    if synthesis.usage.calls == 0:
        return {}
    tools = harmonize_entity_types(tools)
    return {"tools": tools, **charge(state, state.counters, model.role, synthesis.usage)}


async def _extend(synthesis: _Synthesis, state: DialogueState) -> list[ToolSpec]:
    tools = list(state.tools)
    if state.tool_source is ToolSource.SEED or len(tools) >= MAX_TOOLS:
        return tools
    context = synthesis.base_context()
    if not tools:
        questions: UserQuestions = await synthesis.ask(UserQuestions, "generate_questions", context)
        tools = await synthesis.drafts("draft", {**context, "questions": questions.questions}, [])
        return tools + await synthesis.drafts("gap", {**context, "missing_tools": []}, tools)
    missing = _missing_for_task(state, tools)
    first_extension = state.tool_source is ToolSource.SEED_PLUS and not any(t.source == "synthesized" for t in tools)
    if missing or first_extension:
        tools = tools + await synthesis.drafts("gap", {**context, "missing_tools": missing}, tools)
    return tools[:MAX_TOOLS]


def _missing_for_task(state: DialogueState, tools: list[ToolSpec]) -> list[str]:
    task = state.active_task
    names = {t.name for t in tools}
    return [name for name in (task.expected_tools if task else []) if name not in names]


def _split_valid(drafts: list[ToolDraft], taken: set[str]) -> tuple[list[ToolDraft], list[tuple[ToolDraft, str]]]:
    good: list[ToolDraft] = []
    bad: list[tuple[ToolDraft, str]] = []
    for draft in drafts:
        if draft.name in taken or draft.name in {g.name for g in good}:
            continue  # a duplicate adds nothing; not worth a retry
        problem = schema_problem(draft.parameters)
        if problem:
            bad.append((draft, problem))
        else:
            good.append(draft)
    return good, bad


def _is_result_schema(schema: dict[str, Any]) -> bool:
    problem = schema_problem(schema)
    return problem is None


def _summaries(tools: list[ToolSpec]) -> list[dict[str, str]]:
    return [{"name": t.name, "description": t.function.description[:200]} for t in tools]


def _spec_of(draft: ToolDraft) -> ToolSpec:
    return ToolSpec(function=FunctionSpec(name=draft.name, description=draft.description, parameters=draft.parameters))
