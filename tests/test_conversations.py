"""``generate --from-conversations``: OpenAI conversations and BFCL entries as starting states."""

from __future__ import annotations

import json
import shutil

import pytest

from dialogforge.inputs.conversations import ConversationError, load_conversations
from dialogforge.runs.planning import conversation_states
from dialogforge.runs.history import history
from dialogforge.config import GenerationSettings
from dialogforge.inputs.seed_tools import load_tools_file
from tests.support.checkpoints import counters_problem, dialogue_problem, manifest_rows, states

BOOKSHOP = {
    "messages": [
        {"role": "system", "content": "You help customers of an online bookstore."},
        {"role": "user", "content": "Hi! Do you have any books about sailing?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search_books", "arguments": "{\"query\": \"sailing\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"results\": [{\"title\": \"Sailing Alone\"}]}"},
        {"role": "assistant", "content": "Yes: Sailing Alone around the World."},
        {"role": "user", "content": "Great, how much is it?"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "search_books", "description": "Search the catalogue.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}],
}
CHAT = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hi, how can I help?"}]}


@pytest.fixture
def bfcl_copy(tmp_path, bfcl_dir):
    """Three BFCL entries, with func_doc/ beside them as in the shared data."""
    shutil.copytree(bfcl_dir / "func_doc", tmp_path / "func_doc")
    lines = (bfcl_dir / "multi_turn_base.jsonl").read_text().splitlines()[:3]
    path = tmp_path / "bfcl.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, [json.loads(line) for line in lines]


def _write(tmp_path, *entries, name="conversations.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(e if isinstance(e, str) else json.dumps(e) for e in entries) + "\n")
    return path


def test_an_openai_conversation_continues_from_where_it_stopped(tmp_path, run_cli):
    path = _write(tmp_path, BOOKSHOP, CHAT)
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--from-conversations", str(path), "--db", str(db),
                     "--max-turns", "6", "--quiet")
    assert result.code == 0, result.err
    rows = sorted(manifest_rows(db), key=lambda r: r["thread_id"])
    assert len(rows) == 2 and {r["status"] for r in rows} == {"done"}
    book, chat = states(db, [r["thread_id"] for r in rows])
    imported = load_conversations(path)[0].messages
    assert book.messages[: len(imported)] == imported  # the conversation so far, as it was
    assert book.messages[len(imported)].role == "user" and book.messages[len(imported)].content.endswith("how much is it?")
    assert book.scenario.domain == "You help customers of an online bookstore."
    assert "search_books" in {t.name for t in book.tools} and len(book.tools) > 1  # imported, then extended
    assert book.tasks and len(book.messages) > len(imported) + 1
    assert chat.messages[:2] == load_conversations(path)[1].messages
    for state in (book, chat):
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None


def test_bfcl_entries_bring_their_tools_world_and_questions(bfcl_copy, tmp_path, run_cli, bfcl_dir):
    path, entries = bfcl_copy
    conversations = load_conversations(path)
    first, raw = conversations[0], entries[0]
    expected_tools = {t.name for t in load_tools_file(bfcl_dir / "func_doc" / "posting_api.jsonl")} | \
        {t.name for t in load_tools_file(bfcl_dir / "func_doc" / "gorilla_file_system.jsonl")}
    assert raw["involved_classes"] == ["TwitterAPI", "GorillaFileSystem"]
    assert {t.name for t in first.tools} == expected_tools - set(raw["excluded_function"])
    assert first.world == raw["initial_config"]
    questions = [turn[0]["content"] for turn in raw["question"]]
    assert first.task.subtasks == questions and first.pending_user_message == questions[0]
    state = conversation_states(GenerationSettings(n=3), conversations)[0]
    assert state.tasks == [first.task] and state.messages == []

    db = tmp_path / "bfcl.db"
    result = run_cli("generate", "--backend", "scripted", "--from-conversations", str(path), "--n", "2",
                     "--db", str(db), "--max-turns", "8", "--quiet")
    assert result.code == 0, result.err
    rows = sorted(manifest_rows(db), key=lambda r: r["thread_id"])
    assert len(rows) == 2 and {r["status"] for r in rows} == {"done"}
    generated = states(db, [r["thread_id"] for r in rows])[0]
    assert generated.messages[0].role == "user" and generated.messages[0].content == questions[0]
    assert len(generated.tasks) == 1 and generated.tasks[0].goal == first.task.goal  # no second, proposed task
    assert generated.world.keys() >= raw["initial_config"].keys()
    assert dialogue_problem(generated.messages) is None
    entries_history = history(db, rows[0]["thread_id"])
    assert entries_history[0].next == ["synthesize_tools"]  # started after task proposal


BAD_LINES = [
    ("{not json", "not valid JSON"),
    (json.dumps([1, 2]), "expected a JSON object"),
    (json.dumps({"text": "hi"}), "neither an OpenAI conversation"),
    (json.dumps({"messages": []}), "\"messages\" must be a non-empty list"),
    (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}), "unknown role 'wizard'"),
    (json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}), "must start with a user message"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}), "two user messages in a row"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "x", "content": "r"}]}),
     "tool result for 'x', which no open tool call has"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}), "tool call 'c9' has no tool result"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                              {"role": "system", "content": "late"}]}), "a system message after the dialogue started"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}), "only text content"),
    (json.dumps({"messages": [{"role": "user", "content": "a"}], "tools": [{"type": "function", "function": {"name": "bad name!"}}]}),
     "tool 1"),
    (json.dumps({"question": [[{"role": "user", "content": "q"}]], "involved_classes": ["NoSuchAPI"]}), "unknown BFCL class 'NoSuchAPI'"),
    (json.dumps({"question": []}), "\"question\" must be a non-empty list"),
]


@pytest.mark.parametrize("line, needle", BAD_LINES, ids=[n for _, n in BAD_LINES])
def test_a_bad_line_is_named_and_nothing_is_written(tmp_path, line, needle):
    path = _write(tmp_path, CHAT, CHAT, line)
    with pytest.raises(ConversationError) as caught:
        load_conversations(path)
    message = str(caught.value)
    assert f"{path}: line 3" in message and needle in message and "\n" not in message


def test_the_cli_refuses_a_bad_file_before_writing_anything(tmp_path, run_cli):
    path = _write(tmp_path, CHAT, json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "z"}]}))
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--from-conversations", str(path), "--db", str(db))
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"{path}: line 2" in result.err
    assert not db.exists()
    empty = _write(tmp_path, "", name="empty.jsonl")
    result = run_cli("generate", "--backend", "scripted", "--from-conversations", str(empty), "--db", str(db))
    assert result.code == 2 and "no conversations in file" in result.err and not db.exists()
    missing_docs = _write(tmp_path, json.dumps({"question": [[{"role": "user", "content": "q"}]], "involved_classes": ["MathAPI"]}),
                          name="bfcl.jsonl")
    result = run_cli("generate", "--backend", "scripted", "--from-conversations", str(missing_docs), "--db", str(db))
    assert result.code == 2 and "func_doc" in result.err and not db.exists()


def test_an_imported_start_killed_before_it_ran_resumes_after_task_proposal(bfcl_copy, tmp_path, run_cli):
    """Rows recorded, nothing started (a kill right after planning): resume starts each the same way."""
    from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
    from dialogforge.config import ModelConfig, ModelsConfig

    path, entries = bfcl_copy
    settings = GenerationSettings(n=1, seed=2)
    state = conversation_states(settings, load_conversations(path)[:1])[0]
    db = tmp_path / "planned.db"
    manifest = Manifest(db, create=True)
    manifest.record_run_and_planned("bfcl", {
        "settings": settings.model_dump(mode="json"),
        "models": ModelsConfig(default=ModelConfig(backend="scripted")).model_dump(mode="json"), "seed_tools": [],
    }, [PlannedTrajectory(thread_id="bfcl-00000", run_id="bfcl", seed=state.seed, mode="user", domain=state.scenario.domain,
                          config_hash="h", initial_state=state.model_dump_json())])
    manifest.close()
    result = run_cli("resume", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    resumed = states(db, ["bfcl-00000"])[0]
    assert len(resumed.tasks) == 1 and resumed.messages[0].content == entries[0]["question"][0][0]["content"]
