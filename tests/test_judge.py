"""The rubric judge: how a task's verdict is decided, what the judge is shown, and a scripted judge run."""

from __future__ import annotations

import asyncio
import json
import re

from tests.support.dataset import good_state, task_mode_state
from dialogforge.config import ModelConfig, ModelsConfig, Role
from dialogforge.dataset.judge import coverage_check, judge_messages, judge_trajectory, task_verdict
from dialogforge.models import get_model
from dialogforge.graphs.state import RubricVerdict, TaskJudgment
from dialogforge.records import RubricCategory, StopReason, TaskStatus

_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def judged(judgment: str, met: list[bool]) -> TaskJudgment:
    return TaskJudgment(judgment=judgment, reasoning="because",
                        items=[RubricVerdict(index=i, met=m) for i, m in enumerate(met)])


def test_an_unmet_critical_item_overrules_a_valid_judgment():
    task = good_state().tasks[0]  # critical, critical, structural, noncritical
    verdict = task_verdict(task, 0, judged("valid", [True, False, True, True]))
    assert (verdict.judgment, verdict.model_judgment, verdict.failed_critical) == ("invalid", "valid", [1])


def test_unmet_structural_or_noncritical_items_do_not_decide():
    task = good_state().tasks[0]
    verdict = task_verdict(task, 0, judged("valid", [True, True, False, False]))
    assert verdict.judgment == "valid" and verdict.failed_critical == []
    assert [item["met"] for item in verdict.items] == [True, True, False, False]


def test_an_invalid_judgment_stands_even_with_every_item_met():
    task = good_state().tasks[0]
    assert task_verdict(task, 0, judged("invalid", [True] * 4)).judgment == "invalid"


def test_invalid_category_items_never_decide():
    task = good_state().tasks[0]
    rubric = [item.model_copy(update={"category": RubricCategory.INVALID}) if i == 1 else item for i, item in enumerate(task.rubric)]
    task = task.model_copy(update={"rubric": rubric})
    assert task_verdict(task, 0, judged("valid", [True, False, True, True])).judgment == "valid"


def test_the_coverage_check_asks_for_one_verdict_per_rubric_item():
    check = coverage_check(good_state().tasks[0])
    assert check(judged("valid", [True] * 4)) is None
    assert "missing rubric indexes [3]" in check(judged("valid", [True] * 3))
    assert "0..3" in check(judged("valid", [True] * 5))
    twice = TaskJudgment(judgment="valid", reasoning="r", items=[RubricVerdict(index=i % 4, met=True) for i in range(5)])
    assert "more than one verdict" in check(twice)


def test_the_judge_sees_rubric_stop_reason_and_transcript_in_the_last_json_block():
    messages = judge_messages(good_state(), 0)
    context = json.loads(_BLOCK.findall(str(messages[-1].content))[-1])
    assert [r["category"] for r in context["rubric"]] == ["critical", "critical", "structural", "noncritical"]
    assert context["stop_reason"] == "completed" and context["task_status"] == "completed"
    roles = [entry["role"] for entry in context["transcript"]]
    assert roles[:3] == ["user", "assistant", "tool"] and len(roles) == 11
    errors = [entry for entry in context["transcript"] if entry.get("error")]
    assert len(errors) == 1 and errors[0]["tool"] == "cancel_order"
    assert "Critical" in str(messages[0].content) or "critical" in str(messages[0].content)


def judge_model():
    return get_model(Role.JUDGE, ModelsConfig(default=ModelConfig(backend="scripted")))


def test_a_scripted_judge_grades_every_item_of_every_task():
    verdict = asyncio.run(judge_trajectory(judge_model(), good_state()))
    assert len(verdict.tasks) == 1
    task = verdict.tasks[0]
    assert [item["index"] for item in task.items] == [0, 1, 2, 3]
    assert (task.judgment == "valid") == (task.failed_critical == [] and task.model_judgment == "valid")
    assert verdict.verdict == task.judgment and verdict.usage.calls == 1


def test_an_unfinished_task_is_judged_invalid():
    state = task_mode_state()
    state = state.model_copy(update={"stop_reason": StopReason.MAX_TOOL_STEPS,
                                     "tasks": [state.tasks[0].model_copy(update={"status": TaskStatus.ACTIVE})]})
    verdict = asyncio.run(judge_trajectory(judge_model(), state))
    assert verdict.verdict == "invalid"
    assert verdict.tasks[0].failed_critical == [0, 1]


def test_the_verdict_is_reproducible():
    first = asyncio.run(judge_trajectory(judge_model(), good_state()))
    second = asyncio.run(judge_trajectory(judge_model(), good_state()))
    assert [t.as_dict() for t in first.tasks] == [t.as_dict() for t in second.tasks]
