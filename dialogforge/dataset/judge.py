"""The rubric judge: the JUDGE role reads each task of a trajectory against the task's rubric.

What it is shown for each task (rubric, tool specs, reference time, the
conversation up to the end of that task, within a token budget) is built in
``judge_context``; this module makes the calls and decides the verdicts.

The model answers the paper's ``{judgment, reasoning}`` plus a verdict per
rubric item (``TaskJudgment``). The task's verdict is then decided here,
not by the model alone: an unmet critical item makes the task invalid even
if the model's overall judgment says "valid", and a trajectory is valid
only if every task is. Items classed ``invalid`` (ill-posed, uncheckable)
are recorded but never decide anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from dialogforge.dataset.cut import Cut
from dialogforge.dataset.judge_context import CHARS_PER_TOKEN, judge_context
from dialogforge.dataset.options import DEFAULT_JUDGE_CONTEXT_TOKENS
from dialogforge.models import RoleModel, generate_structured
from dialogforge.graphs.state import DialogueState, TaskJudgment
from dialogforge.records import RubricCategory, Task, TokenUsage
from dialogforge.prompts import context_block


@dataclass
class TaskVerdict:
    task_index: int
    judgment: str  # the decided verdict: valid | invalid
    model_judgment: str  # what the model said overall
    reasoning: str
    items: list[dict[str, Any]]  # {index, criterion, category, met, note}
    failed_critical: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrajectoryVerdict:
    tasks: list[TaskVerdict]
    usage: TokenUsage

    @property
    def verdict(self) -> str:
        return "valid" if self.tasks and all(t.judgment == "valid" for t in self.tasks) else "invalid"

    @property
    def reasoning(self) -> str:
        return " ".join(f"[task {t.task_index + 1}: {t.judgment}] {t.reasoning}" for t in self.tasks)


async def judge_trajectory(model: RoleModel, state: DialogueState, *, cut: Cut | None = None,
                           context_tokens: int = DEFAULT_JUDGE_CONTEXT_TOKENS) -> TrajectoryVerdict:
    """One structured call per task, each retried within the model's bounds.

    Every task's context is built before the first call, so a task too long
    for the budget (``JudgeContextError``) costs no call. A call that still
    fails raises ``ModelCallError``; the caller records either as the reason
    the trajectory stays unjudged.
    """
    prompts = [judge_messages(state, index, cut=cut, context_tokens=context_tokens) for index in range(len(state.tasks))]
    usage = TokenUsage()
    verdicts = []
    for index, (task, messages) in enumerate(zip(state.tasks, prompts)):
        judged, spent = await generate_structured(
            model, TaskJudgment, messages, seed=state.seed, check=coverage_check(task)
        )
        usage = usage.plus(spent)
        verdicts.append(task_verdict(task, index, judged))
    return TrajectoryVerdict(verdicts, usage)


def task_verdict(task: Task, index: int, judged: TaskJudgment) -> TaskVerdict:
    """Decide a task: the model's judgment, overruled by any unmet critical item.

    An item the judge finds ill-posed is classed ``invalid`` (the paper's
    fourth category): recorded with the category it was proposed with, and
    deciding nothing.
    """
    met = {item.index: item for item in judged.items}
    items = []
    for i, rubric_item in enumerate(task.rubric):
        verdict = met.get(i)
        ill_posed = bool(verdict and verdict.ill_posed)
        items.append({
            "index": i, "criterion": rubric_item.criterion,
            "category": RubricCategory.INVALID.value if ill_posed else rubric_item.category.value,
            "proposed_category": rubric_item.category.value,
            "met": bool(verdict and verdict.met), "note": verdict.note if verdict else "not assessed",
        })
    failed_critical = [it["index"] for it in items if it["category"] == RubricCategory.CRITICAL.value and not it["met"]]
    decided = "valid" if judged.judgment == "valid" and not failed_critical else "invalid"
    return TaskVerdict(index, decided, judged.judgment, judged.reasoning, items, failed_critical)


def coverage_check(task: Task):
    """A retry-with-feedback check: one verdict for every rubric index, none invented."""
    expected = set(range(len(task.rubric)))

    def check(judged: TaskJudgment) -> str | None:
        given = [item.index for item in judged.items]
        extra = sorted(set(given) - expected)
        missing = sorted(expected - set(given))
        if extra:
            return f"items refer to rubric indexes {extra}, but the rubric has indexes 0..{len(task.rubric) - 1}"
        if missing:
            return f"items are missing rubric indexes {missing}"
        if len(given) != len(set(given)):
            return "items give more than one verdict for the same rubric index"
        return None

    return check


@cache
def _instructions() -> str:
    text = resources.files("dialogforge.dataset.prompts").joinpath("judge.md").read_text(encoding="utf-8")
    return Template(text).substitute()


def judge_messages(state: DialogueState, index: int, *, cut: Cut | None = None,
                   context_tokens: int = DEFAULT_JUDGE_CONTEXT_TOKENS) -> list[BaseMessage]:
    """Instructions, then the context as the last JSON block (the scripted judge reads it there),
    together within ``context_tokens`` (see ``judge_context``)."""
    instructions = _instructions()
    closing = f"\nJudge task {index + 1}."
    budget = context_tokens * CHARS_PER_TOKEN - len(instructions) - len("Context:\n") - len(closing)
    context = judge_context(state, index, cut=cut, budget_chars=budget)
    return [SystemMessage(instructions), HumanMessage("Context:\n" + context_block(context) + closing)]
