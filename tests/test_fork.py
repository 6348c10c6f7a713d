"""``dialogforge fork``: branches that share history up to a checkpoint, then go their own way."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from dialogforge.runs.fork import ForkError, fork_trajectory
from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Mode
from tests.support.checkpoints import dialogue_problem, manifest_rows, small_run, thread_rows


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    db = tmp_path_factory.mktemp("fork") / "source.db"
    thread = small_run(db, n=1, max_turns=10, max_tasks=3)[0]
    return db, thread


@pytest.fixture
def db(source, tmp_path):
    """A private copy of the source database for each test."""
    path = tmp_path / "run.db"
    with sqlite3.connect(source[0]) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(source[0], path)
    return path, source[1]


def _point(entries, writer: str):
    """A checkpoint in the middle of the trajectory that ``writer`` wrote."""
    candidates = [e for e in entries if e.node == writer and e.next and e.step > 3]
    return candidates[len(candidates) // 2]


def _dump(path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.mark.parametrize("writer", ["simulate_user", "run_agent", "execute_tools"])
def test_fork_at_a_user_turn_an_agent_step_and_a_tool_result(db, writer, run_cli):
    path, thread = db
    entries = history(path, thread)
    point = _point(entries, writer)
    before = thread_rows(path, thread)
    # Seeds given: forks seeded from their random ids now and then all continued alike (the check below)
    result = run_cli("fork", thread, "--db", str(path), "--checkpoint", point.checkpoint_id, "--n", "3",
                     "--seed", "100", "--quiet")
    assert result.code == 0, result.err
    assert thread_rows(path, thread) == before  # the source, byte for byte

    listed = {r["thread_id"]: r for r in run_cli("list", "--db", str(path), "--json").json()}
    forks = [t for t, r in listed.items() if r["parent_thread_id"] == thread]
    assert len(forks) == 3 and all(listed[f]["fork_checkpoint_id"] == point.checkpoint_id for f in forks)
    assert all(listed[f]["status"] == "done" for f in forks)
    assert len({listed[f]["seed"] for f in forks} | {listed[thread]["seed"]}) == 4

    shared = entries[: entries.index(point) + 1]
    source_messages = load_state(path, thread).messages[: point.messages]
    continuations = set()
    for fork in forks:
        fork_entries = history(path, fork)
        assert [e.checkpoint_id for e in fork_entries[: len(shared)]] == [e.checkpoint_id for e in shared]
        assert all(e.inherited for e in fork_entries[: len(shared)]) and not fork_entries[len(shared)].inherited
        own = fork_entries[len(shared)]
        assert own.source == "fork" and own.next == point.next and own.parent_checkpoint_id == point.checkpoint_id
        state = load_state(path, fork)
        assert state.messages[: point.messages] == source_messages
        assert dialogue_problem(state.messages) is None
        assert state.seed == listed[fork]["seed"]
        continuations.add(state.model_dump_json(include={"messages"}))
    assert len(continuations) > 1  # different seeds, different continuations


def test_user_message_replaces_the_next_user_turn(db):
    path, thread = db
    entries = history(path, thread)
    user_turns_next = [e for e in entries if e.next == ["simulate_user"] and e.step > 3]
    point = user_turns_next[len(user_turns_next) // 2]
    text = "Actually, forget that: please cancel my last order instead."
    result = fork_trajectory(path, thread, point.checkpoint_id, 2, seed=40, user_message=text)
    assert result.seeds == [40, 41] and result.summary.done == 2
    for fork in result.thread_ids:
        state = load_state(path, fork)
        new = state.messages[point.messages]
        assert new.role == "user" and new.content.endswith(text)
        assert state.pending_user_message is None


def test_forks_of_forks_and_forks_before_the_fork_point(db):
    path, thread = db
    entries = history(path, thread)
    first = fork_trajectory(path, thread, _point(entries, "execute_tools").checkpoint_id, 1).thread_ids[0]
    first_entries = history(path, first)
    own = [e for e in first_entries if not e.inherited and e.next]
    grandchild = fork_trajectory(path, first, own[len(own) // 2].checkpoint_id, 1).thread_ids[0]
    early = fork_trajectory(path, first, first_entries[5].checkpoint_id, 1).thread_ids[0]  # inherited by `first`
    rows = {r["thread_id"]: r for r in manifest_rows(path)}
    assert rows[grandchild]["parent_thread_id"] == first and rows[early]["parent_thread_id"] == first
    for fork, parent in ((grandchild, first), (early, first)):
        fork_entries = history(path, fork)
        point = rows[fork]["fork_checkpoint_id"]
        parent_ids = [e.checkpoint_id for e in history(path, parent)]
        shared = parent_ids[: parent_ids.index(point) + 1]
        assert [e.checkpoint_id for e in fork_entries[: len(shared)]] == shared
        assert rows[fork]["status"] == "done" and dialogue_problem(load_state(path, fork).messages) is None


def test_no_run_leaves_forks_pending_for_resume(db, run_cli):
    path, thread = db
    point = _point(history(path, thread), "run_agent")
    created = run_cli("fork", thread, "--db", str(path), "--checkpoint", point.checkpoint_id, "--n", "2", "--no-run")
    assert created.code == 0, created.err
    pending = [r for r in manifest_rows(path) if r["parent_thread_id"] == thread]
    assert [r["status"] for r in pending] == ["pending", "pending"]
    with open_saver(path) as saver:  # the copy is there already: resume continues it, never restarts
        graph = compile_graph(Mode.USER, saver)
        fork_point = graph.get_state({"configurable": {"thread_id": pending[0]["thread_id"]}})
        source_point = graph.get_state({"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": point.checkpoint_id}})
    assert fork_point.next == source_point.next and fork_point.values["messages"] == source_point.values["messages"]
    resumed = run_cli("resume", "--db", str(path), "--quiet")
    assert resumed.code == 0, resumed.err and "resumed 2 trajectories" in resumed.out
    assert {r["status"] for r in manifest_rows(path) if r["parent_thread_id"] == thread} == {"done"}


def test_bad_fork_requests_are_one_line_and_write_nothing(db, run_cli):
    path, thread = db
    entries = history(path, thread)
    before = _dump(path)
    cases = [
        (("fork", "nope", "--checkpoint", entries[3].checkpoint_id), "no trajectory 'nope'"),
        (("fork", thread, "--checkpoint", "1f000000-0000-6000-8000-000000000000"), "has no checkpoint"),
        (("fork", thread, "--checkpoint", entries[0].checkpoint_id), "is the run's input (step -1)"),
        (("fork", thread, "--checkpoint", entries[-1].checkpoint_id), "nothing runs after it"),
        (("fork", thread, "--checkpoint", entries[3].checkpoint_id, "--user-message", "  "), "--user-message is empty"),
    ]
    for args, needle in cases:
        result = run_cli(*args, "--db", str(path))
        assert result.code == 2, (args, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, result.err)
    assert _dump(path) == before
    with pytest.raises(ForkError):
        fork_trajectory(path, thread, entries[3].checkpoint_id, 0)
