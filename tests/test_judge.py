"""The rubric judge: how a task's verdict is decided, what the judge is shown, and a scripted judge run."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.support.dataset import ORDER_TOOL, good_state, quoting_state, store_states, task_mode_state, two_task_capped_state
from dialogforge.config import ModelConfig, ModelsConfig, Role
from dialogforge.dataset.cut import cut_capped
from dialogforge.dataset.errors import JudgeContextError
from dialogforge.dataset.judge import coverage_check, judge_messages, judge_trajectory, task_verdict
from dialogforge.dataset.judge_context import CONDENSED_CHARS, estimate_tokens
from dialogforge.dataset.validate import validate
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


# ---------------------------------------------------------------- the judge's context, bounded by tokens


def context_of(messages) -> dict:
    return json.loads(_BLOCK.findall(str(messages[-1].content))[-1])


def long_two_task_state(result_chars: int = 6000):
    """good_state's task, then a second task; every tool result of the first task is ``result_chars`` long."""
    state = quoting_state()
    padded = [m.model_copy(update={"content": json.dumps({"order_id": "A1", "tracking": "ZX9041", "log": "x" * result_chars})})
              if m.role == "tool" else m for m in state.messages]
    return state.model_copy(update={"messages": padded})


def test_the_judge_is_shown_tool_specs_reference_time_and_the_earlier_task():
    context = context_of(judge_messages(quoting_state(), 1))
    assert context["task_number"] == 2 and context["tasks_in_conversation"] == 2
    assert context["tools"] == [ORDER_TOOL.openai_tool()["function"]]
    assert context["reference_time"] == "2026-04-02T08:30:00Z" and "parcel tracking" in context["agent_system_prompt"]
    assert [(e["n"], e["task"]) for e in context["transcript"]] == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    assert context["cut"] is None


def test_a_cut_trajectory_is_judged_as_cut():
    trimmed, cut = cut_capped(two_task_capped_state())
    context = context_of(judge_messages(trimmed, 0, cut=cut))
    assert "cut after task 1" in context["cut"] and context["transcript"][-1]["content"] == "Done: order A1 is cancelled."


def test_a_conversation_over_budget_has_earlier_tool_results_condensed_first():
    state = long_two_task_state()
    assert context_of(judge_messages(state, 1))["transcript_note"].startswith("Complete")
    context = context_of(judge_messages(state, 1, context_tokens=3500))
    earlier = context["transcript"][2]
    assert earlier["task"] == 1 and len(earlier["content"]) < 2100 and "condensed out" in earlier["content"]
    assert "ZX9041" in earlier["content"]  # the head of a result survives
    assert f"longer than {CONDENSED_CHARS} characters" in context["transcript_note"] and "left out" not in context["transcript_note"]
    assert estimate_tokens("".join(str(m.content) for m in judge_messages(state, 1, context_tokens=3500))) <= 3500


def test_then_the_oldest_exchanges_are_left_out_and_a_task_too_long_for_the_budget_is_refused():
    state = long_two_task_state(result_chars=60_000)
    state = state.model_copy(update={"messages": [
        m.model_copy(update={"content": m.content + " " + "y" * 8000}) if m.role == "user" and m.task_index == 0 else m
        for m in state.messages]})
    context = context_of(judge_messages(state, 1, context_tokens=3000))
    assert [e["n"] for e in context["transcript"]] == [4, 5, 6]
    assert "Messages 0-3" in context["transcript_note"] and "left out" in context["transcript_note"]
    with pytest.raises(JudgeContextError, match="task 1: its own transcript needs about .* raise --judge-context-tokens"):
        judge_messages(state, 0, context_tokens=3000)


def test_a_task_too_long_for_the_judge_is_recorded_unjudged_with_the_reason(tmp_path):
    db = tmp_path / "long.db"
    store_states(db, {"t-long": long_two_task_state(result_chars=60_000)})
    summary = validate(db, judge_model_for=lambda run_id: judge_model(), judge_context_tokens=2000)
    assert (summary.unjudged, summary.valid, summary.judge_errors) == (1, 0, 1)
    (reason,) = summary.unjudged_reasons
    assert reason.startswith("task 1: its own transcript needs about") and "--judge-context-tokens" in reason


def test_an_item_the_judge_finds_ill_posed_is_classed_invalid_and_decides_nothing():
    task = good_state().tasks[0]
    judgment = TaskJudgment(judgment="valid", reasoning="r", items=[
        RubricVerdict(index=0, met=True), RubricVerdict(index=1, met=False, ill_posed=True, note="cannot be checked"),
        RubricVerdict(index=2, met=True), RubricVerdict(index=3, met=True)])
    verdict = task_verdict(task, 0, judgment)
    assert verdict.judgment == "valid" and verdict.failed_critical == []
    assert (verdict.items[1]["category"], verdict.items[1]["proposed_category"]) == ("invalid", "critical")
