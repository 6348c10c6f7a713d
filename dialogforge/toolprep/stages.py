"""The LLM stages of tool preparation, shared by the tool library and per-trajectory synthesis.

Pipeline (PAPER.md): user questions -> tool specs -> gap analysis (up to 10
complementary tools, each with its reason) -> result-schema prediction.
Every generated spec is validated at this boundary: an invalid schema is
regenerated once with its error fed back; a draft that stays invalid, breaks
the paper's naming or is a trivial helper, or duplicates an existing tool is
refused with its reason (``ToolStages.rejected``), never passed on.
"""

from __future__ import annotations

from typing import Any

from dialogforge.graphs.state import GapAnalysis, GapTool, LibraryQuestions, ResultSchemas, ToolDraft, ToolDrafts, UserQuestions
from dialogforge.inputs.tool_library import MAX_GAP_ADDITIONS, Rejection
from dialogforge.models import RoleModel, generate_structured
from dialogforge.prompts import prompt_messages, render
from dialogforge.records import FunctionSpec, JsonObject, TokenUsage, ToolSpec
from dialogforge.tool_checks import needs_result_schema, result_schema_problem, schema_problem, tool_rule_problem

PACKAGE = "dialogforge.toolprep.prompts"
PROMPTS = ("generate_questions", "draft_tools", "draft_tools_stage_draft", "draft_tools_stage_gap",
           "draft_tools_stage_fix", "predict_result_schemas")
MAX_TOOLS = 40
# Tools per result-schema request: a long list makes a long, fragile answer, and a
# grammar-constrained small model is held to 4 list items (models.grammar_bounds).
SCHEMA_BATCH = 4
LIBRARY_QUESTIONS = 20  # the paper's 20-30 user questions per library (LibraryQuestions holds the same bounds)


def stage_text(name: str) -> str:
    return render(PACKAGE, name).strip()


class ToolStages:
    """One preparation's LLM calls against one model, their usage summed, refusals kept."""

    def __init__(self, model: RoleModel, seed: int):
        self.model, self.seed = model, seed
        self.usage = TokenUsage()
        self.rejected: list[Rejection] = []

    async def ask(self, schema: type, prompt: str, context: dict[str, Any], check: Any = None, **values: str) -> Any:
        value, usage = await generate_structured(
            self.model, schema, prompt_messages(PACKAGE, prompt, context, **values), seed=self.seed, check=check,
        )
        self.usage = self.usage.plus(usage)
        return value

    async def questions(self, context: dict[str, Any]) -> list[str]:
        """A trajectory's few user questions, the drafts' brief."""
        answer: UserQuestions = await self.ask(UserQuestions, "generate_questions", context)
        return answer.questions

    async def library_questions(self, context: dict[str, Any]) -> tuple[list[str], str | None]:
        """A library's 20-30 distinct questions; a model that repeats itself is asked once more for the
        missing ones. Fewer than 20 after that are kept, with a note saying so (returned beside them)."""
        answer: LibraryQuestions = await self.ask(LibraryQuestions, "generate_questions", context)
        questions = _distinct(answer.questions)
        if len(questions) < LIBRARY_QUESTIONS:
            more: UserQuestions = await self.ask(UserQuestions, "generate_questions", {
                **context, "questions_so_far": questions,
                "write_more": f"{LIBRARY_QUESTIONS - len(questions)} more, each different from questions_so_far"})
            questions = _distinct(questions + more.questions)[:30]
        if len(questions) < LIBRARY_QUESTIONS:
            return questions, f"questions: the model gave {len(questions)} distinct questions of the 20-30 asked for"
        return questions, None

    async def drafts(self, context: dict[str, Any], existing: list[ToolSpec]) -> list[ToolSpec]:
        """The draft stage: specs answering the context's questions, beside ``existing``."""
        drafts = await self._stage("draft", ToolDrafts, context, existing)
        return [_spec_of(d) for d in drafts][: max(0, MAX_TOOLS - len(existing))]

    async def gap(self, context: dict[str, Any], existing: list[ToolSpec], missing: list[str]) -> list[tuple[ToolSpec, str]]:
        """The gap analysis: complementary tools with their reasons (``missing`` first)."""
        drafts = await self._stage("gap", GapAnalysis, {**context, "missing_tools": missing}, existing)
        room = min(MAX_GAP_ADDITIONS, max(0, MAX_TOOLS - len(existing)))
        return [(_spec_of(d), d.reason) for d in drafts][:room]

    async def _stage(self, stage: str, schema: type, context: dict[str, Any], existing: list[ToolSpec]) -> list[Any]:
        context = {**context, "stage": stage, "existing_tools": summaries(existing)}
        answer = await self.ask(schema, "draft_tools", context, stage_instructions=stage_text(f"draft_tools_stage_{stage}"))
        taken = {t.name for t in existing}
        good, bad = self._split(stage, answer.tools, taken)
        if bad:
            retry = {**context, "fix_these": [{"tool": d.model_dump(), "problem": p} for d, p in bad]}
            fixed = await self.ask(schema, "draft_tools", retry, stage_instructions=stage_text("draft_tools_stage_fix"))
            good_fixed, still_bad = self._split(stage, fixed.tools, taken | {g.name for g in good})
            good += good_fixed
            fixed_names = {d.name for d in good_fixed}
            self.rejected += [Rejection(tool=d.name, stage=stage, reason=p) for d, p in bad if d.name not in fixed_names]
            self.rejected += [Rejection(tool=d.name, stage=stage, reason=f"after a fix: {p}") for d, p in still_bad]
        return good

    def _split(self, stage: str, drafts: list[ToolDraft | GapTool], taken: set[str]) -> tuple[list[Any], list[tuple[Any, str]]]:
        """Valid drafts, and those worth one fix (a schema problem); refusals no fix would cure are kept."""
        good: list[Any] = []
        bad: list[tuple[Any, str]] = []
        for draft in drafts:
            if draft.name in taken or draft.name in {g.name for g in good}:
                self.rejected.append(Rejection(tool=draft.name, stage=stage, reason="a duplicate of a tool already in the set"))
                continue
            rule = tool_rule_problem(draft.name)
            if rule:
                self.rejected.append(Rejection(tool=draft.name, stage=stage, reason=rule))
                continue
            problem = schema_problem(draft.parameters)
            if problem:
                bad.append((draft, problem))
            else:
                good.append(draft)
        return good, bad

    async def result_schemas(self, tools: list[ToolSpec], entity_types: dict[str, str] | None = None
                             ) -> tuple[list[ToolSpec], list[str], dict[str, str]]:
        """Predict what each tool without a result schema returns (a tool's own schema, arrays
        included, is kept). Returns the tools, the names predicted, and why others failed."""
        needing = [t for t in tools if needs_result_schema(t)]
        batches = [needing[i : i + SCHEMA_BATCH] for i in range(0, len(needing), SCHEMA_BATCH)]
        found: dict[str, JsonObject] = {}
        failures: dict[str, str] = {}
        for batch in batches:  # one at a time: a run's concurrency bounds its calls, libraries run side by side
            predicted, failed = await self._predict(batch, entity_types)
            found.update(predicted)
            failures.update(failed)
        missing = [t for t in needing if t.name not in found]
        if missing:  # one more try for what the first answers left out or got wrong
            again, failures_again = await self._predict(missing, entity_types, failures)
            found.update(again)
            failures = {name: why for name, why in failures_again.items() if name not in found}
        updated = [t.model_copy(update={"result_schema": found[t.name]}) if t.name in found else t for t in tools]
        return updated, [t.name for t in needing if t.name in found], failures

    async def _predict(self, tools: list[ToolSpec], entity_types: dict[str, str] | None,
                       problems: dict[str, str] | None = None) -> tuple[dict[str, JsonObject], dict[str, str]]:
        context: dict[str, Any] = {"tools": [{"name": t.name, "description": t.function.description,
                                              "parameters": t.function.parameters} for t in tools]}
        if entity_types:
            context["entity_types"] = entity_types
        if problems:
            context["earlier_problems"] = {t.name: problems.get(t.name, "no schema was given") for t in tools}
        answer: ResultSchemas = await self.ask(ResultSchemas, "predict_result_schemas", context)
        wanted = {t.name for t in tools}
        found: dict[str, JsonObject] = {}
        failures = {name: "no schema was given" for name in wanted}
        for entry in answer.schemas:
            if entry.tool_name not in wanted or entry.tool_name in found:
                continue
            problem = result_schema_problem(entry.result_schema)
            if problem is None and entry.result_schema == {"type": "object"}:
                problem = "says only \"an object\": give its properties"
            if problem:
                failures[entry.tool_name] = problem
            else:
                found[entry.tool_name] = entry.result_schema
                failures.pop(entry.tool_name, None)
        return found, failures


def _distinct(questions: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for question in questions:
        seen.setdefault(" ".join(question.lower().split()), question.strip())
    return list(seen.values())


def summaries(tools: list[ToolSpec]) -> list[dict[str, str]]:
    return [{"name": t.name, "description": t.function.description[:200]} for t in tools]


def _spec_of(draft: ToolDraft) -> ToolSpec:
    return ToolSpec(function=FunctionSpec(name=draft.name, description=draft.description, parameters=draft.parameters))
