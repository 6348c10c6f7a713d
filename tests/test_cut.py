"""Cap and cut: a capped trajectory that completed a task is kept up to that task, and every sample ends with a reply."""

from __future__ import annotations

import json

import pytest

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.dataset.corpus import load_or_none, manifest_rows
from dialogforge.dataset.cut import cut_capped
from dialogforge.dataset.export import export
from dialogforge.dataset.rules import Rule, check_rules
from dialogforge.dataset.stats import collect_stats
from dialogforge.dataset.validate import validate
from dialogforge.records import Limits, StopReason, TaskStatus
from dialogforge.runs.generate import generate
from tests.support.checkpoints import counters_problem, dialogue_problem
from tests.support.dataset import good_state, stopped_mid_task, store_states, two_task_capped_state, validation_rows


@pytest.mark.parametrize("reason", [StopReason.MAX_USER_TURNS, StopReason.MAX_TOOL_STEPS, StopReason.BUDGET])
def test_a_capped_trajectory_is_cut_after_its_last_completed_task(reason):
    state = two_task_capped_state(reason=reason)
    trimmed, cut = cut_capped(state)
    assert cut is not None and cut.as_dict() == {
        "stop_reason": reason.value, "kept_tasks": 1, "dropped_tasks": 1,
        "kept_messages": 10, "dropped_messages": 5, "dropped_tool_calls": 2,
    }
    assert trimmed.messages == state.messages[:10] and trimmed.messages[-1].content == "Done: order A1 is cancelled."
    assert [t.status for t in trimmed.tasks] == [TaskStatus.COMPLETED]
    assert counters_problem(trimmed) is None and dialogue_problem(trimmed.messages) is None
    assert trimmed.counters.step_counts == [1, 2] and trimmed.counters.steps_this_request == 0
    assert trimmed.counters.usage == state.counters.usage  # the cut part was paid for
    assert check_rules(state) != [] and check_rules(trimmed, cut) == []


def test_a_trajectory_whose_first_task_never_completed_is_left_as_it_is():
    state = stopped_mid_task(good_state())
    assert cut_capped(state) == (state, None)
    assert {f.rule for f in check_rules(state)} == {Rule.STOPPED_AT_CAP, Rule.TASK_NOT_COMPLETED}


def test_only_caps_are_cut():
    completed = good_state()
    failed = two_task_capped_state().model_copy(update={"stop_reason": StopReason.ERROR, "error": "agent: HTTP 500"})
    assert cut_capped(completed) == (completed, None)
    assert cut_capped(failed) == (failed, None)


def test_a_cut_that_does_not_end_with_a_reply_fails_the_rules():
    trimmed, cut = cut_capped(two_task_capped_state())
    broken = trimmed.model_copy(update={"messages": trimmed.messages[:-1]})  # ends with a tool result
    assert Rule.TASK_NOT_COMPLETED in {f.rule for f in check_rules(broken, cut)}


def test_validate_export_and_stats_read_the_cut(tmp_path):
    db = tmp_path / "c.db"
    store_states(db, {"t-cut": two_task_capped_state(), "t-never": stopped_mid_task(good_state(seed=5, user_words="Is order Q7 late?"))})
    summary = validate(db)
    assert (summary.cut, summary.cut_messages, summary.valid) == (1, 5, 1)
    rows = {r["thread_id"]: r for r in validation_rows(db)}
    assert json.loads(rows["t-cut"]["cut"])["dropped_tasks"] == 1 and rows["t-cut"]["valid"] == 1
    assert rows["t-never"]["cut"] is None and rows["t-never"]["valid"] == 0
    out = tmp_path / "x.jsonl"
    result = export(db, out, "openai", valid_only=True)
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (result.exported, result.cut) == (1, 1) and record["messages"][-1] == {"role": "assistant", "content": "Done: order A1 is cancelled."}
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["counts"]["cut_after_last_completed_task"] == 1
    assert manifest["runs"][0]["cuts"]["t-cut"]["dropped_messages"] == 5
    stats = collect_stats(db, valid_only=True)
    assert stats.cut == 1 and stats.overall.turn.values == [10] and stats.overall.task.values == [1]


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory):
    """Issue 18's run: 24 scripted trajectories with a 5-turn cap, most of them stopped by it."""
    db = tmp_path_factory.mktemp("capped") / "run.db"
    settings = GenerationSettings(n=24, seed=5, concurrency=4, limits=Limits(max_user_turns=5, max_tasks=3))
    generate(db, settings, ModelsConfig(default=ModelConfig(backend="scripted")))
    validate(db)
    return db


def test_every_trajectory_with_a_completed_task_is_kept(capped_run):
    validations = {r["thread_id"]: r for r in validation_rows(capped_run)}
    capped = kept = 0
    for row in manifest_rows(capped_run):
        state = load_or_none(capped_run, row["thread_id"])
        completed = any(t.status is TaskStatus.COMPLETED for t in state.tasks)
        capped += state.stop_reason is StopReason.MAX_USER_TURNS
        kept += completed and state.stop_reason is StopReason.MAX_USER_TURNS
        assert validations[row["thread_id"]]["valid"] == int(completed), (row["thread_id"], validations[row["thread_id"]]["rule_failures"])
    assert capped >= 8 and kept >= 4  # the cap bites, and the cut has something to keep


@pytest.mark.parametrize("fmt", ["openai", "sharegpt"])
def test_every_exported_sample_ends_with_an_assistant_reply(capped_run, tmp_path, fmt):
    out = tmp_path / f"{fmt}.jsonl"
    result = export(capped_run, out, fmt, valid_only=True, keep_duplicates=True)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    kept = sum(1 for r in validation_rows(capped_run) if r["valid"])
    assert result.exported == len(records) == kept
    for record in records:
        if fmt == "openai":
            last = record["messages"][-1]
            assert last["role"] == "assistant" and last["content"] and not last.get("tool_calls")
        else:
            assert record["conversations"][-1]["from"] == "gpt" and record["conversations"][-1]["value"]
    assert json.loads(result.manifest_path.read_text())["counts"]["cut_after_last_completed_task"] >= 4
