"""``dialogforge validate``: stored results, idempotent re-runs, stale verdicts, judge errors, CLI errors."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.dataset import append_messages, good_state, reply, stopped_mid_task, store_states, task_mode_state, validation_rows

SCRIPTED_MODELS = {"default": {"backend": "scripted"}, "roles": {}}


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "v.db"
    capped = stopped_mid_task(good_state(seed=3, user_words="Hello, can you check order Z9 for me please?"))
    store_states(path, {
        "t-good": good_state(),
        "t-task": task_mode_state(),
        "t-capped": capped,
    }, run_config={"settings": {"seed": 1}, "models": SCRIPTED_MODELS})
    return path


def test_validate_stores_rules_and_judge_results(db, run_cli):
    result = run_cli("validate", "--db", str(db), "--judge", "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert (summary["checked"], summary["passed_rules"], summary["judged_now"]) == (3, 2, 2)
    assert summary["failure_reasons"]["stopped_at_cap"] == 1
    rows = {row["thread_id"]: row for row in validation_rows(db)}
    capped = rows["t-capped"]
    assert capped["rules_ok"] == 0 and capped["valid"] == 0 and capped["judge_verdict"] is None
    assert json.loads(capped["failure_rules"]) == ["stopped_at_cap", "task_not_completed"]
    for tid in ("t-good", "t-task"):
        row = rows[tid]
        assert row["rules_ok"] == 1 and row["judge_verdict"] in ("valid", "invalid")
        assert row["valid"] == int(row["judge_verdict"] == "valid")
        assert row["judge_model"] == "scripted:default"
        tasks = json.loads(row["judge_tasks"])
        assert len(tasks) == 1 and len(tasks[0]["items"]) == 4


def test_rerunning_is_idempotent(db, run_cli):
    assert run_cli("validate", "--db", str(db), "--judge").code == 0
    before = validation_rows(db)
    again = run_cli("validate", "--db", str(db), "--judge", "--json")
    assert again.code == 0 and again.json()["judged_now"] == 0
    assert validation_rows(db) == before  # not one byte changed, timestamps included
    rejudged = run_cli("validate", "--db", str(db), "--judge", "--rejudge", "--json")
    assert rejudged.json()["judged_now"] == 2
    after = validation_rows(db)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("judged_at", "updated_at")} for r in rows]
    assert strip(after) == strip(before)


def test_a_changed_trajectory_loses_its_stale_verdict(db, run_cli):
    assert run_cli("validate", "--db", str(db), "--judge").code == 0
    append_messages(db, "t-good", good_state(), [reply("You're welcome! Anything else?")])
    again = run_cli("validate", "--db", str(db))
    assert again.code == 0, again.err
    row = {r["thread_id"]: r for r in validation_rows(db)}["t-good"]
    assert row["judge_verdict"] is None and row["judge_fingerprint"] is None
    assert json.loads(row["failure_rules"]) == ["task_not_completed"]  # no longer ends with the user's thanks


class _Refusing(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that is up (preflight passes) but rejects every completion."""

    def do_GET(self):
        self._send(200, {"object": "list", "data": []})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(400, {"error": {"message": "model overloaded with nonsense", "type": "invalid_request_error"}})

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_judge_errors_are_recorded_and_retried_on_the_next_run(db, run_cli, refusing_server):
    failed = run_cli("validate", "--db", str(db), "--judge", "--base-url", refusing_server, env={"OPENAI_API_KEY": "sk-test"})
    assert failed.code == 1, failed.err
    assert "2 failed" in failed.out
    rows = {r["thread_id"]: r for r in validation_rows(db)}
    assert "HTTP 400" in rows["t-good"]["judge_error"] and rows["t-good"]["judge_verdict"] is None
    assert (rows["t-good"]["valid"], rows["t-good"]["judge_status"]) == (0, "unjudged")  # no verdict, not valid
    assert "2 unjudged" in failed.out and "HTTP 400" in failed.out
    retried = run_cli("validate", "--db", str(db), "--judge", "--backend", "scripted", "--json")
    assert retried.code == 0 and retried.json()["judged_now"] == 2
    assert all(r["judge_error"] is None for r in validation_rows(db))


def test_a_run_without_recorded_models_needs_flags(tmp_path, run_cli):
    path = tmp_path / "import.db"
    store_states(path, {"t": good_state()}, run_config={"settings": {}})
    result = run_cli("validate", "--db", str(path), "--judge")
    assert result.code == 2
    assert result.err.strip().count("\n") == 0 and "has no recorded models" in result.err
    assert run_cli("validate", "--db", str(path), "--judge", "--backend", "scripted").code == 0


def test_validate_rejects_a_missing_or_foreign_database(tmp_path, run_cli):
    missing = run_cli("validate", "--db", str(tmp_path / "nope.db"))
    assert missing.code == 2 and missing.err.startswith("dialogforge: error:") and "no such database" in missing.err
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    result = run_cli("validate", "--db", str(foreign))
    assert result.code == 2 and "not a dialogforge database" in result.err
    assert {r[0] for r in sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master")} == {"people"}


@pytest.mark.parametrize("command", ["validate", "export", "stats"])
def test_help_has_an_example(command, capsys):
    from dialogforge.cli.main import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "Example: dialogforge " + command in " ".join(capsys.readouterr().out.split())
