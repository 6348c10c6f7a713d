"""A thread branched in place by LangGraph's API is a dataset like any other: one sample per leaf.

``list``, ``validate``, ``export`` and ``stats`` count each leaf once; the
thread id reads its head, ``THREAD@CHECKPOINT`` another leaf; ``history``
and the viewer's fork tree show every branch; ``resume`` continues a thread
whose head is unfinished. The same on the Postgres store, and on a database
written by the previous release.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.dataset.export import export
from dialogforge.dataset.stats import collect_stats
from dialogforge.dataset.validate import validate
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Mode
from dialogforge.runs.branches import leaf_trajectory_id
from dialogforge.runs.fork import fork_trajectory
from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from dialogforge.runs.resume import resume_run
from dialogforge.cli.list_cmd import list_trajectories
from dialogforge.viewer.data import trajectory_view
from tests.support.branching import branch_in_place, config_at
from tests.support.checkpoints import counters_problem, dialogue_problem, small_run
from tests.support.paths import REPO

FIXTURE = REPO / "tests" / "fixtures" / "release-0.1.0.db"


def _point(db, thread: str, node: str) -> str:
    entries = [e for e in history(db, thread) if e.next == [node]]
    return entries[len(entries) // 2].checkpoint_id


@pytest.fixture(scope="module")
def branched(tmp_path_factory):
    """Two generated trajectories; the first replayed in place from an agent step."""
    db = tmp_path_factory.mktemp("branches") / "run.db"
    threads = small_run(db, n=2, max_turns=6)
    first_end = load_state(db, threads[0])
    point = _point(db, threads[0], "run_agent")
    old_leaf = history(db, threads[0])[-1].checkpoint_id
    branch_in_place(db, threads[0], point, {"seed": 77})
    return db, threads, point, old_leaf, first_end


def test_each_leaf_is_listed_and_reads_back(branched):
    db, threads, point, old_leaf, first_end = branched
    rows = {r["thread_id"]: r for r in list_trajectories(str(db))}
    leaf = leaf_trajectory_id(threads[0], old_leaf)
    assert list(rows) == [threads[0], leaf, threads[1]]
    assert rows[leaf]["parent_thread_id"] == threads[0] and rows[leaf]["fork_checkpoint_id"] == point
    assert load_state(db, leaf) == first_end
    head = load_state(db, threads[0])
    assert head != first_end and head.stop_reason is not None
    for trajectory, row in rows.items():
        state = load_state(db, trajectory)
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None
        assert (row["status"], row["messages"], row["user_turns"]) == ("done", len(state.messages), state.counters.user_turns)


def test_history_shows_every_branch_with_true_parents(branched):
    db, threads, point, old_leaf, _ = branched
    entries = history(db, threads[0])
    with open_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        snapshots = {s.config["configurable"]["checkpoint_id"]: s
                     for s in graph.get_state_history({"configurable": {"thread_id": threads[0]}})}
        assert [e.checkpoint_id for e in entries] == sorted(snapshots)
        for e in entries:
            s = snapshots[e.checkpoint_id]
            assert e.parent_checkpoint_id == (s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None)
            assert (e.next, e.messages, e.user_turn) == (list(s.next), len(s.values.get("messages") or []),
                                                         s.values["counters"].user_turns if s.values.get("counters") else 0)
    assert {e.ends for e in entries if e.ends} == {threads[0], leaf_trajectory_id(threads[0], old_leaf)}
    by_id = {e.checkpoint_id: e for e in entries}
    assert not by_id[point].branch and by_id[old_leaf].branch
    first_own = next(e for e in entries if e.parent_checkpoint_id == point and e.source == "update")
    assert first_own.preview.startswith("branch: state updated") and not first_own.branch


def test_validate_export_and_stats_count_one_sample_per_leaf(branched, tmp_path):
    db, threads, _, old_leaf, first_end = branched
    leaf = leaf_trajectory_id(threads[0], old_leaf)
    validate(db)
    conn = sqlite3.connect(db)
    validated = {row[0] for row in conn.execute("SELECT thread_id FROM validations")}
    conn.close()
    assert validated == {threads[0], leaf, threads[1]}
    result = export(db, tmp_path / "out.jsonl", "openai")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert result.exported == len(lines) == 3
    assert leaf in json.dumps(json.loads(result.manifest_path.read_text()))
    assert len(set(lines)) == 3  # the two leaves of the branched thread are two different samples
    assert collect_stats(db).statuses["done"] == 3


def test_the_viewer_fork_tree_shows_the_in_place_branch(branched):
    db, threads, point, old_leaf, first_end = branched
    leaf = leaf_trajectory_id(threads[0], old_leaf)
    view = trajectory_view(db, threads[0])
    assert [c["thread_id"] for c in view["lineage"]["tree"]["children"]] == [leaf]
    assert view["forks_here"][0]["thread_id"] == leaf and view["forks_here"][0]["message_index"] is not None
    leaf_view = trajectory_view(db, leaf)
    assert leaf_view["state"]["messages"] == first_end.model_dump(mode="json")["messages"]
    assert leaf_view["fork_point"]["checkpoint_id"] == point


def test_dialogforge_fork_from_either_branch_copies_only_that_line(branched, tmp_path):
    db, threads, point, old_leaf, _ = branched
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    entries = history(copy, threads[0])
    on_old = next(e for e in entries if e.branch and e.next)
    on_new = next(e for e in reversed(entries) if not e.branch and e.next and e.parent_checkpoint_id != point)
    for at in (on_old, on_new):
        forked = fork_trajectory(copy, threads[0], at.checkpoint_id, run=False)
        fork_entries = history(copy, forked.thread_ids[0])
        assert [e.checkpoint_id for e in fork_entries if e.inherited][-1] == at.checkpoint_id
        assert not any(e.branch for e in fork_entries)
        with open_saver(copy) as saver:
            graph = compile_graph(Mode.USER, saver)
            inherited = graph.get_state(config_at(forked.thread_ids[0], at.checkpoint_id))
            assert inherited.values == graph.get_state(config_at(threads[0], at.checkpoint_id)).values
    result = resume_run(copy)
    assert result.summary.failed == 0 and result.summary.done == 2


def test_an_unfinished_head_is_resumed_from_the_head(tmp_path):
    db = tmp_path / "run.db"
    thread = small_run(db, n=1, max_turns=5)[0]
    first_end = load_state(db, thread)
    point = _point(db, thread, "simulate_user")

    with open_saver(db) as saver:  # update_state on a past user turn, and nothing run on
        graph = compile_graph(Mode.USER, saver)
        graph.update_state(config_at(thread, point), {"pending_user_message": "And my other order?"})
    rows = {r["thread_id"]: r for r in list_trajectories(str(db))}
    assert rows[thread]["status"] == "pending"
    assert [r["status"] for k, r in rows.items() if k != thread] == ["done"]
    result = resume_run(db)
    assert result.thread_ids == [thread] and result.summary.done == 1
    head = load_state(db, thread)
    assert any("And my other order?" in m.content for m in head.messages if m.role == "user")
    assert dialogue_problem(head.messages) is None and head != first_end
    assert list_trajectories(str(db))[0]["status"] == "done"


def test_the_postgres_store_lists_and_histories_in_place_branches(pg_url):
    threads = small_run(pg_url, n=1, max_turns=5)
    point = _point(pg_url, threads[0], "execute_tools")
    import asyncio

    from dialogforge.checkpoints.postgres_store import open_async_pg_saver
    from tests.support.builders import scripted_context

    async def replay():
        async with open_async_pg_saver(pg_url) as saver:
            graph = compile_graph(Mode.USER, saver)
            await graph.ainvoke(None, config_at(threads[0], point), context=scripted_context())

    before = load_state(pg_url, threads[0])
    old_leaf = history(pg_url, threads[0])[-1].checkpoint_id
    asyncio.run(replay())
    rows = [r["thread_id"] for r in list_trajectories(pg_url)]
    assert rows == [threads[0], leaf_trajectory_id(threads[0], old_leaf)]
    assert load_state(pg_url, rows[1]) == before
    entries = history(pg_url, threads[0])
    assert {e.ends for e in entries if e.ends} == set(rows)
    assert sum(e.branch for e in entries) >= 1
    on_old = next(e for e in entries if e.branch and e.next)
    fork = fork_trajectory(pg_url, threads[0], on_old.checkpoint_id, run=False).thread_ids[0]
    inherited = [e.checkpoint_id for e in history(pg_url, fork) if e.inherited]
    assert inherited[-1] == on_old.checkpoint_id and not any(e.branch for e in history(pg_url, fork))
    assert resume_run(pg_url).summary.done == 1


def test_a_database_of_the_previous_release_opens_resumes_forks_exports_and_branches(tmp_path):
    db = tmp_path / "old.db"
    shutil.copy(FIXTURE, db)
    rows = list_trajectories(str(db))
    done = [r["thread_id"] for r in rows if r["status"] == "done"]
    assert len(rows) == 10 and len(done) == 7
    for thread in done:
        state = load_state(db, thread)
        assert dialogue_problem(state.messages) is None
        assert len(history(db, thread)) > 1
    export(db, tmp_path / "before.jsonl", "openai")
    assert len((tmp_path / "before.jsonl").read_text().splitlines()) == 7
    point = _point(db, done[0], "run_agent")
    forked = fork_trajectory(db, done[0], point, run=False).thread_ids
    result = resume_run(db)  # the pending and running rows of the old run, and the fork
    assert result.summary.failed == 0 and set(forked) <= set(result.thread_ids)
    old_end = load_state(db, done[1])
    old_leaf = history(db, done[1])[-1].checkpoint_id
    branch_in_place(db, done[1], _point(db, done[1], "simulate_user"), {"seed": 5})
    assert len(list_trajectories(str(db))) == 10 + 1 + 1
    assert load_state(db, leaf_trajectory_id(done[1], old_leaf)) == old_end
    assert dialogue_problem(load_state(db, done[1]).messages) is None
    export(db, tmp_path / "after.jsonl", "openai")
    assert len((tmp_path / "after.jsonl").read_text().splitlines()) == 10 + 1 + 1
