"""Exports: the openai shape (checked), sharegpt, a Hugging Face dataset both loaders read,
the manifest beside each, atomic writes, and one exported dialogue as a golden file (in
each format, and in the chat families whose shape differs most). Rendering through real
chat templates, LLaMA-Factory's reading and the fine-tuning schema: test_export_templates.py.

To refresh the golden file after an intended change: DIALOGFORGE_UPDATE_GOLDEN=1 pytest tests/test_export.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collections import Counter

from tests.support.dataset import good_state, stopped_mid_task, store_states
from tests.support.finetune_schema import check_finetune_line as check_openai_record
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, Role
from dialogforge.dataset.chat_families import FAMILIES, HF_CONVENTION, family_messages
from dialogforge.dataset.errors import NotValidatedError
from dialogforge.dataset.export import export
from dialogforge.dataset.format_openai import ToolNames, openai_record as record_of_sample
from dialogforge.dataset.format_sharegpt import sharegpt_record
from dialogforge.dataset.samples import build_samples
from dialogforge.dataset.validate import validate
from dialogforge.models import get_model
from dialogforge.runs.generate import generate
from dialogforge.records import Message, StopReason
from tests.support.paths import REPO

GOLDEN = Path(__file__).parent / "golden" / "export_dialogue.json"


@pytest.fixture(scope="module")
def scripted_db(tmp_path_factory):
    """A scripted run of 8 user-mode trajectories, validated with the scripted judge."""
    db = tmp_path_factory.mktemp("run") / "run.db"
    models = ModelsConfig(default=ModelConfig(backend="scripted"))
    generate(db, GenerationSettings(n=8, seed=6), models)  # a seed whose run the scripted judge partly rejects
    judge = get_model(Role.JUDGE, models)
    validate(db, judge_model_for=lambda run_id: judge)
    return db


def openai_record(state) -> dict:
    return record_of_sample(build_samples(state)[0], ToolNames())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_openai_export_passes_the_format_check(scripted_db, tmp_path):
    out = tmp_path / "train.jsonl"
    result = export(scripted_db, out, "openai")
    records = read_jsonl(out)
    assert result.exported == len(records) == 8
    for record in records:
        assert check_openai_record(record) == []
        assert record["messages"][0]["role"] == "system" and record["messages"][-1]["role"] == "assistant"
        calls = [c for m in record["messages"] for c in m.get("tool_calls") or []]
        answered = [m["tool_call_id"] for m in record["messages"] if m["role"] == "tool"]
        assert sorted(c["id"] for c in calls) == sorted(answered)
        assert all(isinstance(c["function"]["arguments"], str) for c in calls)
        assert not any("reasoning_content" in m for m in record["messages"])
        assert {t["function"]["name"] for t in record["tools"]} >= {c["function"]["name"] for c in calls} - {None}


def test_reasoning_is_kept_by_default_and_dropped_with_no_reasoning(scripted_db, tmp_path):
    out = tmp_path / "r.jsonl"
    export(scripted_db, out, "sharegpt")
    assistant = [t for r in read_jsonl(out) for t in r["conversations"] if t["from"] in ("gpt", "function_call")]
    assert assistant and all(t["value"].startswith("<think>\n") for t in assistant)
    export(scripted_db, out, "sharegpt", with_reasoning=False)
    assert not any("<think>" in t["value"] for r in read_jsonl(out) for t in r["conversations"])


def test_valid_only_follows_the_stored_validation(scripted_db, tmp_path):
    import sqlite3

    usable = sqlite3.connect(scripted_db).execute(
        "SELECT count(*) FROM validations WHERE valid = 1 AND duplicate_of IS NULL").fetchone()[0]
    result = export(scripted_db, tmp_path / "v.jsonl", "openai", valid_only=True)
    assert result.exported == usable < 8  # the scripted judge rejects some
    assert sum(result.skipped.values()) == 8 - usable
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["counts"]["exported"] == usable and manifest["options"]["valid_only"] is True


def test_sharegpt_alternates_and_carries_tools_as_a_json_string(scripted_db, tmp_path):
    out = tmp_path / "s.jsonl"
    export(scripted_db, out, "sharegpt", with_reasoning=True)
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["s"]["file_name"] == "s.jsonl" and info["s"]["formatting"] == "sharegpt"
    for record in read_jsonl(out):
        tools = json.loads(record["tools"])
        assert tools and all("name" in t and "parameters" in t for t in tools)
        sides = [turn["from"] for turn in record["conversations"]]
        assert sides[0] == "human" and sides[-1] == "gpt"
        for i, side in enumerate(sides):  # LLaMA-Factory's rule: human/observation even, gpt/function_call odd
            assert side in (("human", "observation") if i % 2 == 0 else ("gpt", "function_call")), sides
        for turn in record["conversations"]:
            assert set(turn) == {"from", "value"}
            if turn["from"] == "function_call":
                parsed = json.loads(turn["value"].split("\n</think>\n\n")[-1])
                assert all("name" in c and isinstance(c["arguments"], dict) for c in (parsed if isinstance(parsed, list) else [parsed]))


def test_hf_export_loads_with_both_datasets_loaders(scripted_db, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    result = export(scripted_db, out, "hf")
    assert result.exported == 8
    from_parquet = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))["train"]
    from_arrow = datasets.load_from_disk(str(out))["train"]
    assert from_parquet.num_rows == from_arrow.num_rows == 8
    assert from_parquet.column_names == from_arrow.column_names
    for column in ("mode", "domain", "source", "tasks", "counters", "valid", "judge_verdict",
                   "duplicate_of", "parent_thread_id", "fork_checkpoint_id", "messages", "tools"):
        assert column in from_parquet.column_names
    row = from_parquet[0]
    assert row["mode"] == "user" and row["validated"] is True and row["judge_verdict"] in ("valid", "invalid")
    assert row["counters"]["step_counts"] and row["num_tasks"] == len(row["tasks"])
    assert from_parquet[0]["messages"] == from_arrow[0]["messages"] and from_parquet[0]["tools"] == row["tools"]
    assert row["messages"][0]["role"] == "system" and all(t["type"] == "function" for t in row["tools"])
    assert (out / "dialogforge_manifest.json").exists()


def test_the_manifest_records_models_seeds_and_masks_secrets(tmp_path):
    db = tmp_path / "m.db"
    models = {"default": {"backend": "openai", "base_url": "https://alice:hunter2@llm.example/v1", "model": "gpt-oss-120b",
                          "extra_body": {"api_key": "sk-live-123", "top_k": 20}},
              "roles": {"judge": {"model": "judge-model"}}}
    store_states(db, {"t1": good_state()}, run_config={"settings": {"seed": 42, "tools_file": "/data/bfcl.jsonl"}, "models": models})
    result = export(db, tmp_path / "o.jsonl", "openai")
    text = result.manifest_path.read_text()
    assert "hunter2" not in text and "sk-live-123" not in text
    manifest = json.loads(text)
    run = manifest["runs"][0]
    assert run["run_seed"] == 42 and run["trajectory_seeds"] == {"t1": good_state().seed}
    assert run["models"]["agent"]["model"] == "gpt-oss-120b" and run["models"]["judge"]["model"] == "judge-model"
    assert run["models"]["agent"]["base_url"] == "https://alice:***@llm.example/v1"
    assert run["models"]["agent"]["extra_body"] == {"api_key": "***", "top_k": 20}
    assert manifest["dialogforge_version"] and manifest["counts"]["exported"] == 1


def test_an_invalid_call_that_was_recovered_gets_weight_zero():
    record = openai_record(good_state())
    weights = [m.get("weight") for m in record["messages"] if m["role"] == "assistant"]
    assert weights == [None, None, 0, None, None]
    assert record["messages"][-1] == {"role": "assistant", "content": "Done: order A1 is cancelled."}  # closing thanks dropped


def test_the_default_system_prompt_is_the_one_the_agent_saw():
    system = openai_record(good_state())["messages"][0]["content"]
    assert "online store support" in system and "2026-03-01T10:00:00Z" in system


def test_golden_exported_dialogue():
    state = good_state()
    state = state.model_copy(update={"messages": [Message(role="system", content="You are a helpful store assistant."), *state.messages]})
    sample = build_samples(state)[0]
    exported = {
        "openai": record_of_sample(sample, ToolNames()),
        "sharegpt": sharegpt_record(sample, with_reasoning=True, tally=Counter()),
        **{"hf" if family is HF_CONVENTION else f"hf --chat-template {family.name}":
           family_messages(sample, family, with_reasoning=family.reasoning_field is not None, tally=Counter())
           for family in (HF_CONVENTION, FAMILIES["gpt-oss"], FAMILIES["llama3"], FAMILIES["deepseek-v3"])},
    }
    text = json.dumps(exported, indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("DIALOGFORGE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_the_format_check_catches_broken_records():
    good = openai_record(good_state())
    assert check_openai_record(good) == []
    no_result = {**good, "messages": [m for m in good["messages"] if m["role"] != "tool"]}
    assert any("answered" in p or "without a result" in p for p in check_openai_record(no_result))
    object_args = json.loads(json.dumps(good))
    object_args["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"order_id": "A1"}
    assert any("arguments: string" in p for p in check_openai_record(object_args))
    reasoning = json.loads(json.dumps(good))
    reasoning["messages"][2]["reasoning_content"] = "thinking"
    assert any("unexpected key 'reasoning_content'" in p for p in check_openai_record(reasoning))
    dotted = json.loads(json.dumps(good))
    dotted["tools"][0]["function"]["name"] = "orders.get"
    assert any("does not match" in p for p in check_openai_record(dotted))
    empty = json.loads(json.dumps(good))
    empty["messages"][4] = {"role": "assistant", "content": ""}
    assert any("neither content nor tool_calls" in p for p in check_openai_record(empty))
    assert check_openai_record({"messages": [], "extra": 1}) == ["unexpected top-level key 'extra'", "messages must be a non-empty list"]


def test_a_failed_export_leaves_the_previous_file_untouched(tmp_path):
    db = tmp_path / "a.db"
    store_states(db, {"t1": good_state()})
    out = tmp_path / "train.jsonl"
    out.write_text("OLD\n")
    with pytest.raises(NotValidatedError):
        export(db, out, "openai", valid_only=True)  # never validated
    assert out.read_text() == "OLD\n"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("a.db")) == ["train.jsonl"]


def test_a_killed_export_never_leaves_a_half_file(tmp_path):
    db = tmp_path / "big.db"
    store_states(db, {f"t{i:03d}": good_state(seed=i) for i in range(80)})
    out = tmp_path / "train.jsonl"
    out.write_text("OLD\n")
    proc = subprocess.Popen([sys.executable, "-m", "dialogforge.cli", "export", "--db", str(db), "--format", "openai", "--out", str(out)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".train.jsonl.tmp-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "export finished before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert out.read_text() == "OLD\n"
    assert not (tmp_path / "train.jsonl.manifest.json").exists()


def test_cli_exit_codes_and_one_line_errors(tmp_path, run_cli):
    db = tmp_path / "c.db"
    store_states(db, {"t1": good_state()})
    (tmp_path / "somedir").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep")
    cases = [
        (["--format", "xml", "--out", str(tmp_path / "x")], "invalid choice: 'xml'"),
        (["--format", "openai", "--out", str(tmp_path / "no" / "such" / "x.jsonl")], "does not exist"),
        (["--format", "openai", "--out", str(tmp_path / "somedir")], "is a directory"),
        (["--format", "hf", "--out", str(tmp_path / "other")], "not a dialogforge export"),
        (["--format", "openai", "--out", str(tmp_path / "v.jsonl"), "--valid-only"], "dialogforge validate"),
    ]
    for extra, message in cases:
        result = run_cli("export", "--db", str(db), *extra)
        assert result.code == 2, (extra, result.err)
        assert result.err.count("\n") == 1 and message in result.err, (extra, result.err)
    (tmp_path / "old_hf").mkdir()
    (tmp_path / "old_hf" / "dialogforge_manifest.json").write_text("{}")
    capped_db = tmp_path / "capped.db"
    store_states(capped_db, {"t1": stopped_mid_task(good_state(), StopReason.BUDGET)})
    validate(capped_db)
    empty = run_cli("export", "--db", str(capped_db), "--format", "hf", "--out", str(tmp_path / "old_hf"), "--valid-only")
    assert empty.code == 2 and empty.err.count("\n") == 1 and "nothing to export" in empty.err
    assert [p.name for p in (tmp_path / "old_hf").iterdir()] == ["dialogforge_manifest.json"]  # the old export stays
    missing = run_cli("export", "--db", str(tmp_path / "nope.db"), "--format", "openai", "--out", str(tmp_path / "y.jsonl"))
    assert missing.code == 2 and "no such database" in missing.err
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("c.db", "capped.db"))) == ["old_hf", "other", "somedir"]  # nothing written
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep"
    ok = run_cli("export", "--db", str(db), "--format", "sharegpt", "--out", str(tmp_path / "s.jsonl"))
    assert ok.code == 0 and "exported 1 trajectories" in ok.out
    export(db, tmp_path / "hf", "hf")
    replaced = run_cli("export", "--db", str(db), "--format", "hf", "--out", str(tmp_path / "hf"))
    assert replaced.code == 0, replaced.err  # an earlier export of ours is replaced
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left behind


def test_valid_only_refuses_a_trajectory_changed_since_validation(tmp_path):
    from tests.support.dataset import append_messages, reply

    db = tmp_path / "stale.db"
    store_states(db, {"t1": good_state()})
    validate(db)
    append_messages(db, "t1", good_state(), [reply("You're welcome!")])
    out = tmp_path / "v.jsonl"
    with pytest.raises(NotValidatedError, match="t1 changed since it was validated"):
        export(db, out, "openai", valid_only=True)
    assert not out.exists()
    validate(db)  # now it fails the rules (no closing user message) and is left out
    assert export(db, out, "openai", valid_only=True).skipped == {"invalid": 1}
