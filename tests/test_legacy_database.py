"""A database written by release 0.1.0 (before the one-import-root layout) still opens, resumes, forks and exports.

``tests/fixtures/release-0.1.0.db`` was made by that release's CLI: a run of 3
trajectories with BFCL seed tools, one fork of them, and a second run of 6
killed with -9 after 3 had finished (one left ``running``, two ``pending``).
Its checkpoints name the state's types under their old module, ``graphs.state``.
"""

from __future__ import annotations

import json
import shutil

import ormsgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from dialogforge.checkpoints.serde import strict_serializer
from dialogforge.compat.langgraph import EXT_PYDANTIC_V2
from dialogforge.dataset.export import export
from dialogforge.records import Message
from dialogforge.runs.fork import fork_trajectory
from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from dialogforge.runs.resume import ModelOverrides, resume_run
from tests.support.checkpoints import counters_problem, dialogue_problem, manifest_rows
from tests.support.paths import FIXTURES

SCRIPTED = ModelOverrides(backend="scripted")


def _copy(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURES / "release-0.1.0.db", db)
    return db


def test_old_module_names_revive_as_the_same_records():
    old = ormsgpack.packb(ormsgpack.Ext(EXT_PYDANTIC_V2, ormsgpack.packb(
        ["graphs.state", "Message", {"role": "user", "content": "hi"}, "model_validate_json"])))
    assert strict_serializer().loads_typed(("msgpack", old)) == Message(role="user", content="hi")
    assert JsonPlusSerializer().dumps_typed(Message(role="user"))[1].find(b"dialogforge.records") >= 0


def test_finished_trajectories_read_back_whole(tmp_path):
    db = _copy(tmp_path)
    done = [r for r in manifest_rows(db) if r["status"] == "done"]
    assert len(done) == 7
    for row in done:
        state = load_state(db, row["thread_id"])
        assert len(state.messages) == row["messages"] and state.counters.user_turns == row["user_turns"]
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None
        seeded = row["run_id"] == "4bc15754"  # the first run had BFCL's ticket_api tools
        assert state.tools and (state.tools[0].source == "seed") == seeded, row["thread_id"]
    assert len(history(db, done[0]["thread_id"])) > 5


def test_resume_finishes_the_killed_run(tmp_path):
    db = _copy(tmp_path)
    unfinished = {r["thread_id"] for r in manifest_rows(db) if r["status"] in ("pending", "running")}
    assert len(unfinished) == 3
    result = resume_run(db, overrides=SCRIPTED)
    assert set(result.thread_ids) == unfinished and (result.summary.done, result.summary.failed) == (3, 0)
    for thread in unfinished:
        state = load_state(db, thread)
        assert state.stop_reason is not None and dialogue_problem(state.messages) is None, thread
        assert counters_problem(state) is None


def test_fork_and_export_an_old_trajectory(tmp_path):
    db = _copy(tmp_path)
    source = "4bc15754-00001"
    point = next(e for e in history(db, source) if e.node == "run_agent" and e.next)
    forked = fork_trajectory(db, source, point.checkpoint_id, 2, seed=5, overrides=SCRIPTED)
    assert forked.summary is not None and forked.summary.done == 2
    for thread in forked.thread_ids:
        state = load_state(db, thread)
        before = load_state(db, source).messages[: point.messages]
        assert state.messages[: point.messages] == before and dialogue_problem(state.messages) is None
    out = tmp_path / "train.jsonl"
    exported = export(db, out, "openai")
    lines = out.read_text().splitlines()
    assert exported.exported == len(lines) == 9  # 7 done + 2 forks; the killed run's 3 are unfinished
    assert all(json.loads(line)["messages"] for line in lines)


def test_an_old_validations_table_is_read_then_upgraded(tmp_path):
    """0.1.0 found every capped trajectory invalid; its rows still gate an export, and `validate` upgrades them."""
    import sqlite3

    from dialogforge.dataset.validate import validate
    from dialogforge.dataset.validations import read_validations, skip_reason

    db = _copy(tmp_path)
    old = read_validations(db)
    assert old and all(skip_reason(row) == "invalid" for row in old.values() if not row["valid"])
    summary = validate(db)
    columns = {r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(validations)")}
    assert {"judge_status", "judge_requested", "cut"} <= columns
    assert summary.cut >= 1 and summary.valid >= summary.cut  # capped ones with a completed task are kept now
    out = tmp_path / "valid.jsonl"
    exported = export(db, out, "openai", valid_only=True, keep_duplicates=True)
    assert exported.exported == summary.valid + summary.duplicates
    assert all(json.loads(line)["messages"][-1]["role"] == "assistant" for line in out.read_text().splitlines())
