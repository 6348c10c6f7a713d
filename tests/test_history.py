"""``dialogforge history``: every checkpoint, oldest first, agreeing with LangGraph's own state history."""

from __future__ import annotations

import pytest

from dialogforge.runs.history import history
from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.errors import NotFoundError
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Mode
from tests.support.checkpoints import small_run


@pytest.fixture(scope="module")
def run_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("history") / "run.db"
    return db, small_run(db, n=2, max_turns=8)


def test_history_matches_the_graph_state_history(run_db):
    db, threads = run_db
    for thread in threads:
        entries = history(db, thread)
        with open_saver(db) as saver:
            snapshots = list(compile_graph(Mode.USER, saver).get_state_history({"configurable": {"thread_id": thread}}))
        snapshots.reverse()
        assert [e.checkpoint_id for e in entries] == [s.config["configurable"]["checkpoint_id"] for s in snapshots]
        assert [e.step for e in entries] == [s.metadata["step"] for s in snapshots]
        assert [e.next for e in entries] == [list(s.next) for s in snapshots]
        assert [e.messages for e in entries] == [len(s.values.get("messages") or []) for s in snapshots]
        assert [e.user_turn for e in entries] == [s.values["counters"].user_turns if s.values.get("counters") else 0 for s in snapshots]
        # each checkpoint's writer is what the previous one said would run next
        assert entries[0].node == "input" and entries[0].next == ["__start__"]
        for before, after in zip(entries, entries[1:]):
            assert after.node == ", ".join(before.next)
            assert after.parent_checkpoint_id == before.checkpoint_id
        assert entries[-1].next == [] and not any(e.inherited for e in entries)


def test_previews_say_what_each_step_added(run_db):
    db, threads = run_db
    entries = history(db, threads[0])
    by_node = {}
    for e in entries:
        by_node.setdefault(e.node, []).append(e.preview)
    assert all(p.startswith("task: ") for p in by_node["propose_task"])
    assert all(p.startswith("user: ") for p in by_node["simulate_user"] if p and not p.startswith("stop"))
    assert all(p.startswith("assistant: ") for p in by_node["run_agent"] if not p.startswith("stop"))
    assert all(p.startswith("tool: ") for p in by_node["execute_tools"])


def test_history_cli_json_fields(run_db, run_cli):
    db, threads = run_db
    result = run_cli("history", threads[1], "--db", str(db), "--json")
    assert result.code == 0, result.err
    rows = result.json()
    assert {"checkpoint_id", "step", "node", "next", "user_turn", "preview"} <= set(rows[0])
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    table = run_cli("history", threads[1], "--db", str(db))
    assert table.code == 0 and rows[-1]["checkpoint_id"] in table.out


def test_unknown_and_unstarted_trajectories(run_db, run_cli, tmp_path):
    db, _ = run_db
    with pytest.raises(NotFoundError, match="no trajectory 'nope'"):
        history(db, "nope")
    result = run_cli("history", "nope", "--db", str(db))
    assert result.code == 2 and result.err.strip().count("\n") == 0 and "no trajectory 'nope'" in result.err
    planned = tmp_path / "planned.db"
    manifest = Manifest(planned, create=True)
    manifest.record_planned([PlannedTrajectory(thread_id="p-0", run_id="p", seed=1, mode="user", domain="d",
                                               config_hash="h", initial_state="{}")])
    manifest.close()
    result = run_cli("history", "p-0", "--db", str(planned))
    assert result.code == 2 and "has no checkpoints yet (status pending)" in result.err
