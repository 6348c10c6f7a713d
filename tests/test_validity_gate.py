"""The validity gate through real HTTP: an unjudged trajectory is never valid, and the judge sees what it needs.

The judge is the scripted model behind the stub OpenAI-compatible server
(``dialogforge.testing.stub_server``), faults injected there; what the judge
was shown is read from the requests the server received.
"""

from __future__ import annotations

import json
import re

import pytest

from dialogforge.config import ModelConfig, ModelsConfig, Role
from dialogforge.dataset.validate import validate
from dialogforge.models import call, get_model
from dialogforge.testing.faults import FaultConfig, FaultKind
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from tests.support.dataset import good_state, quoting_state, store_states, task_mode_state, two_task_capped_state, validation_rows

KEY = {"OPENAI_API_KEY": "sk-test"}
_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def is_judge_call(body: dict) -> bool:
    return "TaskJudgment" in json.dumps(body.get("response_format") or {})


def judge_context_of(body: dict) -> dict:
    return json.loads(_BLOCK.findall(body["messages"][-1]["content"])[-1])


@pytest.fixture
def fast_backoff(monkeypatch):
    monkeypatch.setattr(call, "BASE_DELAY_S", 0.01)


@pytest.fixture
def db(tmp_path):
    """Four trajectories that pass the rules: one task, two tasks, a capped one cut to its first task, task mode."""
    path = tmp_path / "gate.db"
    store_states(path, {"t-one": good_state(), "t-quote": quoting_state(), "t-cut": two_task_capped_state(seed=8),
                        "t-task": task_mode_state()})
    return path


def table(db) -> dict[str, dict]:
    return {row["thread_id"]: row for row in validation_rows(db)}


def judge_config(tmp_path, base_url: str, *, timeout_s: float = 2.0, max_retries: int = 1):
    path = tmp_path / "judge.toml"
    path.write_text(f'[models.default]\nbackend = "openai"\nbase_url = "{base_url}"\n'
                    f"timeout_s = {timeout_s}\nmax_retries = {max_retries}\nmax_parse_retries = 1\n")
    return str(path)


def recording_stub(seen: list[dict], faults: FaultConfig | None = None) -> StubServer:
    return StubServer(lambda body: (seen.append(body), ScriptedChatModel())[1], faults=faults)


def test_a_judge_that_always_fails_leaves_nothing_valid_under_valid_only(db, tmp_path, run_cli, fast_backoff):
    always = FaultConfig(rate=1.0, mix={FaultKind.SERVER_ERROR: 1.0})
    with StubServer(lambda body: ScriptedChatModel(), faults=always) as server:
        failed = run_cli("validate", "--db", str(db), "--judge", "--config", judge_config(tmp_path, server.base_url), env=KEY)
        assert server.stats()["faults"]["500"] >= 8  # every trajectory's first call, tried twice
    assert failed.code == 1, failed.err
    assert "4 unjudged" in failed.out and "0 valid and unique" in failed.out and "judge: HTTP 500" in failed.out
    rows = table(db)
    assert {(r["valid"], r["judge_status"], r["judge_verdict"]) for r in rows.values()} == {(0, "unjudged", None)}
    assert all("HTTP 500" in r["judge_error"] for r in rows.values())

    out = tmp_path / "train.jsonl"
    exported = run_cli("export", "--db", str(db), "--format", "openai", "--out", str(out), "--valid-only")
    assert exported.code == 0, exported.err
    assert "exported 0 trajectories" in exported.out and "4 unjudged" in exported.out and "--include-unjudged" in exported.out
    assert out.read_text() == ""

    later = run_cli("validate", "--db", str(db))  # no --judge now: asked for once, a verdict is still needed
    assert later.code == 0 and "4 unjudged" in later.out and "0 valid and unique" in later.out
    stats = run_cli("stats", "--db", str(db), "--json").json()
    assert (stats["validity"]["unjudged"], stats["validity"]["usable"], stats["failure_reasons"]["unjudged"]) == (4, 0, 4)

    admitted = run_cli("export", "--db", str(db), "--format", "openai", "--out", str(tmp_path / "all.jsonl"),
                       "--valid-only", "--include-unjudged", "--keep-duplicates")
    assert admitted.code == 0 and "exported 4 trajectories" in admitted.out


def test_a_judge_that_times_out_once_then_answers_yields_a_verdict(db, tmp_path, fast_backoff):
    seen: list[dict] = []
    with recording_stub(seen, FaultConfig(timeout_hold_s=3.0)) as server:
        server.fail_next(FaultKind.TIMEOUT, 1, when=is_judge_call)
        judge = get_model(Role.JUDGE, ModelsConfig(default=ModelConfig(
            backend="openai", base_url=server.base_url, timeout_s=0.5, max_retries=2, max_parse_retries=1)))
        summary = validate(db, judge_model_for=lambda run_id: judge, concurrency=1)
        faults = server.stats()["faults"]
    assert faults["timeout"] == 1
    assert (summary.judged_now, summary.judge_errors, summary.unjudged) == (4, 0, 0)
    assert all(r["judge_status"] == "judged" and r["judge_verdict"] in ("valid", "invalid") for r in table(db).values())
    tasks_judged = 1 + 2 + 1 + 1  # t-one, t-quote, t-cut (its kept task only), t-task
    assert sum(map(is_judge_call, seen)) == tasks_judged  # the timed-out call never reached the model


def test_the_second_task_is_judged_with_the_first_tasks_tool_result_in_view(tmp_path):
    db = tmp_path / "quote.db"
    store_states(db, {"t-quote": quoting_state()})
    seen: list[dict] = []
    with recording_stub(seen) as server:
        judge = get_model(Role.JUDGE, ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url)))
        validate(db, judge_model_for=lambda run_id: judge)
    contexts = {c["task_number"]: c for c in map(judge_context_of, filter(is_judge_call, seen))}
    second = contexts[2]
    results = [e for e in second["transcript"] if e["role"] == "tool"]
    assert len(results) == 1 and results[0]["task"] == 1 and "ZX9041" in results[0]["content"]
    assert second["transcript"][-2] == {"n": 5, "task": 2, "role": "assistant", "content": "Its tracking number is ZX9041."}
    assert second["reference_time"] == "2026-04-02T08:30:00Z" and "2026-04-02T08:30:00Z" in second["agent_system_prompt"]
    assert [t["name"] for t in second["tools"]] == ["get_order"] and second["tools"][0]["parameters"]["required"] == ["order_id"]
    assert second["transcript_note"].startswith("Complete")
    assert [e["n"] for e in contexts[1]["transcript"]] == [0, 1, 2, 3]  # task 1 ends at its reply: nothing later
    row = table(db)["t-quote"]
    assert row["judge_verdict"] == "valid", row["judge_reasoning"]


def test_a_claim_from_outside_the_agents_history_window_is_judged_a_hallucination(tmp_path):
    """With a 4-message window the agent answering task 2 saw only task 2's question: ZX9041 came from nowhere it saw."""
    db = tmp_path / "window.db"
    store_states(db, {"t-window": quoting_state(history_window=4)})
    seen: list[dict] = []
    with recording_stub(seen) as server:
        judge = get_model(Role.JUDGE, ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url)))
        validate(db, judge_model_for=lambda run_id: judge)
    second = next(c for c in map(judge_context_of, filter(is_judge_call, seen)) if c["task_number"] == 2)
    assert second["transcript"][5]["saw_from"] == 4
    row = table(db)["t-window"]
    tasks = json.loads(row["judge_tasks"])
    assert row["judge_verdict"] == "invalid" and tasks[1]["judgment"] == "invalid" and "ZX9041" in tasks[1]["reasoning"]


def test_validation_without_the_judge_says_nothing_was_judged(db, tmp_path, run_cli):
    result = run_cli("validate", "--db", str(db))
    assert result.code == 0, result.err
    assert "nothing was judged" in result.out and "rules' alone" in result.out
    summary = run_cli("validate", "--db", str(db), "--json").json()
    assert (summary["judge_asked"], summary["not_judged"], summary["unjudged"], summary["valid"]) == (False, 4, 0, 4)
    assert {r["judge_status"] for r in table(db).values()} == {"not_judged"}
    exported = run_cli("export", "--db", str(db), "--format", "sharegpt", "--out", str(tmp_path / "s.jsonl"), "--valid-only")
    assert exported.code == 0 and "exported 4 trajectories" in exported.out
