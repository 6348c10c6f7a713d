"""The rubric judge: the JUDGE role reads each task of a trajectory against the task's rubric.

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

from dialogforge.models import RoleModel, generate_structured
from dialogforge.graphs.state import DialogueState, TaskJudgment
from dialogforge.records import Message, RubricCategory, Task, TokenUsage
from dialogforge.prompts import context_block

TRANSCRIPT_MESSAGES = 120  # the judge sees at most the last this many messages of a task
TEXT_CHARS = 1500


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


async def judge_trajectory(model: RoleModel, state: DialogueState) -> TrajectoryVerdict:
    """One structured call per task; a failed call raises ModelCallError for the caller to record."""
    usage = TokenUsage()
    verdicts = []
    for index, task in enumerate(state.tasks):
        judged, spent = await generate_structured(
            model, TaskJudgment, judge_messages(state, index), seed=state.seed, check=coverage_check(task)
        )
        usage = usage.plus(spent)
        verdicts.append(task_verdict(task, index, judged))
    return TrajectoryVerdict(verdicts, usage)


def task_verdict(task: Task, index: int, judged: TaskJudgment) -> TaskVerdict:
    """Decide a task: the model's judgment, overruled by any unmet critical item."""
    met = {item.index: item for item in judged.items}
    items = []
    for i, rubric_item in enumerate(task.rubric):
        verdict = met.get(i)
        items.append({
            "index": i, "criterion": rubric_item.criterion, "category": rubric_item.category.value,
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


def judge_messages(state: DialogueState, index: int) -> list[BaseMessage]:
    """Instructions, then the context as the last JSON block (the scripted judge reads it there)."""
    return [
        SystemMessage(_instructions()),
        HumanMessage("Context:\n" + context_block(judge_context(state, index)) + "\nJudge this task."),
    ]


def judge_context(state: DialogueState, index: int) -> dict[str, Any]:
    task = state.tasks[index]
    return {
        "domain": state.scenario.domain,
        "mode": state.mode.value,
        "task_number": index + 1,
        "tasks_in_conversation": len(state.tasks),
        "goal": task.goal,
        "subtasks": task.subtasks,
        "rubric": [{"index": i, "criterion": r.criterion, "category": r.category.value} for i, r in enumerate(task.rubric)],
        "task_status": task.status.value,
        "stop_reason": state.stop_reason.value if state.stop_reason else None,
        "transcript": [_transcript_entry(m) for m in task_messages(state, index)[-TRANSCRIPT_MESSAGES:]],
    }


def task_messages(state: DialogueState, index: int) -> list[Message]:
    if all(m.task_index is None for m in state.messages):
        return state.messages  # an imported conversation without task marks: judge it whole
    return [m for m in state.messages if m.task_index == index]


def _transcript_entry(m: Message) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": m.role, "content": _clip(m.content)}
    if m.tool_calls:
        entry["tool_calls"] = [
            {"name": c.name, "arguments": c.raw_arguments if c.raw_arguments is not None else c.arguments}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        entry["tool"] = m.name
        entry["error"] = m.is_error
    return entry


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + " [...]"
