"""Whole trajectories through the real graph, SQLite checkpointer and manifest."""

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from dialogforge.config import GenerationSettings
from dialogforge.runs.generate import generate
from dialogforge.records import Limits, Mode, StopReason, TaskStatus

SEEDS = 12


def _rows(db):
    manifest = Manifest(db)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def test_user_mode_yields_longer_multi_task_dialogues_than_task_mode(tmp_path, scripted_models, capsys):
    totals = {}
    for mode in Mode:
        db = tmp_path / f"{mode.value}.db"
        result = generate(db, GenerationSettings(mode=mode, n=SEEDS, seed=11), scripted_models)
        assert result.summary.done == SEEDS and result.summary.failed == 0
        rows = _rows(db)
        totals[mode] = (sum(r["user_turns"] for r in rows) / SEEDS, sum(r["tasks"] for r in rows) / SEEDS)
    with capsys.disabled():
        print(f"\nper trajectory over {SEEDS} seeds: user mode {totals[Mode.USER][0]:.2f} user turns, "
              f"{totals[Mode.USER][1]:.2f} tasks; task mode {totals[Mode.TASK][0]:.2f} user turns, {totals[Mode.TASK][1]:.2f} tasks")
    assert totals[Mode.USER][0] > totals[Mode.TASK][0]
    assert totals[Mode.USER][1] > totals[Mode.TASK][1]


def test_multi_task_trajectories_complete_every_task_in_order(tmp_path, scripted_models):
    db = tmp_path / "run.db"
    generate(db, GenerationSettings(n=8, seed=3, limits=Limits(max_tasks=3, max_user_turns=60)), scripted_models)
    multi = 0
    for row in _rows(db):
        state = load_state(db, row["thread_id"])
        assert state.stop_reason is StopReason.COMPLETED
        assert all(t.status is TaskStatus.COMPLETED for t in state.tasks)
        assert len(state.tasks) == state.scenario.target_tasks
        indices = [m.task_index for m in state.messages]
        assert indices == sorted(indices)  # each task's turns come after the previous task's
        assert state.messages[-1].role == "user"  # the completion signal closes the dialogue
        multi += len(state.tasks) > 1
    assert multi >= 2


def test_every_tool_call_is_answered_and_messages_alternate(tmp_path, scripted_models):
    db = tmp_path / "run.db"
    generate(db, GenerationSettings(n=6, seed=21), scripted_models)
    invalid_seen = 0
    for row in _rows(db):
        messages = load_state(db, row["thread_id"]).messages
        for i, m in enumerate(messages):
            if m.role == "assistant" and m.tool_calls:
                answers = messages[i + 1 : i + 1 + len(m.tool_calls)]
                assert [a.tool_call_id for a in answers] == [c.id for c in m.tool_calls]
                invalid_seen += sum(a.is_error for a in answers)
            if m.role == "user" and i > 0:
                assert messages[i - 1].role == "assistant" and not messages[i - 1].tool_calls
    assert invalid_seen > 0  # the scripted agent makes mistakes the data should contain


def test_caps_stop_with_their_reason(tmp_path, scripted_models):
    cases = {
        StopReason.MAX_USER_TURNS: Limits(max_user_turns=1, max_tasks=3),
        StopReason.MAX_TOOL_STEPS: Limits(max_tool_steps=1),
        StopReason.BUDGET: Limits(token_budget=50),
    }
    for reason, limits in cases.items():
        db = tmp_path / f"{reason.value}.db"
        generate(db, GenerationSettings(n=6, seed=5, limits=limits), scripted_models)
        reasons = {r["stop_reason"] for r in _rows(db)}
        assert reason.value in reasons, (reason, reasons)


def test_same_seed_same_dialogue(tmp_path, scripted_models):
    texts = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.db"
        result = generate(db, GenerationSettings(n=2, seed=99), scripted_models)
        texts.append([[m.content for m in load_state(db, t).messages] for t in result.thread_ids])
    assert texts[0] == texts[1]


def test_seed_tools_from_bfcl_drive_the_dialogue(tmp_path, scripted_models, bfcl_dir):
    from dialogforge.inputs.seed_tools import load_tools_file

    tools = load_tools_file(bfcl_dir / "func_doc" / "message_api.jsonl")
    db = tmp_path / "run.db"
    result = generate(db, GenerationSettings(n=3, seed=2), scripted_models, tools)
    names = {t.name for t in tools}
    called = set()
    for thread in result.thread_ids:
        state = load_state(db, thread)
        assert {t.name for t in state.tools} == names  # seed only: nothing synthesized
        called |= {c.name for m in state.messages for c in m.tool_calls}
    assert called and called <= names
