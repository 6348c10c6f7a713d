"""``generate --tool-exec mcp`` end to end: real MCP servers of our own, the scripted model.

Per-trajectory stdio servers are checked against an oracle: every call of a
finished trajectory, replayed in order on a fresh server, answers exactly
what the trajectory recorded, so no trajectory saw another's state, and a
resumed or forked one saw the state its checkpoint implies (rebuilt by
replay). Failures (a server that dies, one that hangs) end in a recovered
trajectory or a recorded reason, never a crash; no server outlives its run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dialogforge.checkpoints.store_kinds import store_saver
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode
from dialogforge.runs.fork import fork_trajectory
from dialogforge.runs.reading import load_state
from tests.support.checkpoints import checkpoint_count
from tests.support.mcp_servers import broken_server_command, http_server, new_tag, oracle_mismatches, server_command, wait_no_servers, writes_of
from tests.support.paths import REPO

BASE = ["generate", "--backend", "scripted", "--quiet", "--max-turns", "6", "--max-tasks", "2"]


def _rows(run_cli, db: Path) -> list[dict]:
    listed = run_cli("list", "--db", str(db), "--json")
    assert listed.code == 0, listed.err
    return listed.json()


class _Sampler:
    """Counts this test's server processes while a run goes on (the pool bound)."""

    def __init__(self, tag: str):
        from tests.support.mcp_servers import server_pids

        self.tag, self.most, self._pids, self._stop = tag, 0, server_pids, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, len(self._pids(self.tag)))
            time.sleep(0.05)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_each_trajectory_gets_its_own_server_within_the_pool(run_cli, tmp_path: Path) -> None:
    tag = new_tag()
    command = server_command(tag=tag)
    db = tmp_path / "run.db"
    with _Sampler(tag) as sampler:
        result = run_cli(*BASE, "--mcp-server", command, "--n", "4", "--seed", "3", "--concurrency", "4",
                         "--mcp-pool", "2", "--db", str(db))
    assert result.code == 0, result.err
    assert "4 done, 0 failed" in result.out
    assert 1 <= sampler.most <= 2, sampler.most  # 4 trajectories in flight, never more than 2 servers
    assert wait_no_servers(tag) == []
    rows = _rows(run_cli, db)
    assert {r["tool_exec"] for r in rows} == {"mcp"}
    totals = {"calls": 0, "writes": 0, "errors": 0, "read_after_write": 0}
    for row in rows:
        state = load_state(db, row["thread_id"])
        assert {t.source for t in state.tools} == {"seed"} and all(t.mcp for t in state.tools)
        assert "tool_simulator" not in state.counters.usage and "tool_synthesizer" not in state.counters.usage
        assert state.mcp_divergences == []
        replayed, wrong = oracle_mismatches(state, command)
        assert wrong == [], wrong  # answers depend on this trajectory's own calls only
        totals["calls"] += replayed
        totals["writes"] += writes_of(state)
        totals["errors"] += sum(1 for m in state.messages if m.role == "tool" and m.is_error and "Error executing" in m.content)
        totals["read_after_write"] += sum(1 for m in state.messages if m.role == "tool" and '"status": "open"' in m.content
                                          and m.name in ("list_records", "get_record"))
    print(f"\nMCP stdio, 4 trajectories: {totals}")
    assert totals["writes"] >= 4 and totals["errors"] >= 1 and totals["read_after_write"] >= 1
    stats = run_cli("stats", "--db", str(db), "--json")
    assert {(g["mode"], g["source"]) for g in stats.json()["table1"]} == {("user", "mcp")}


def test_an_http_server_is_shared_by_every_trajectory(run_cli, tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with http_server() as url:
        result = run_cli(*BASE, "--mcp-url", url, "--n", "3", "--seed", "2", "--db", str(db))
    assert result.code == 0, result.err
    assert "3 done, 0 failed" in result.out
    created = []
    for row in _rows(run_cli, db):
        state = load_state(db, row["thread_id"])
        created += [m.content for m in state.messages if m.role == "tool" and m.name == "create_record" and not m.is_error]
    ids = [int(text.split('"id": ')[1].split(",")[0]) for text in created]
    assert len(ids) >= 2 and sorted(ids) == list(range(1, len(ids) + 1))  # one server, one sequence of ids for all


def test_a_server_killed_mid_run_is_restarted_and_rebuilt_by_replay(run_cli, tmp_path: Path) -> None:
    tag = new_tag()
    marker = tmp_path / "died"
    command = server_command("--die-at", "3", "--die-once", str(marker), tag=tag)
    db = tmp_path / "run.db"
    result = run_cli(*BASE, "--mcp-server", command, "--n", "2", "--seed", "5", "--db", str(db))
    assert result.code == 0, result.err
    assert marker.exists(), "no server reached its 3rd call"
    assert "2 done, 0 failed" in result.out  # the dead server was replaced, its state replayed
    for row in _rows(run_cli, db):
        state = load_state(db, row["thread_id"])
        assert state.mcp_divergences == []
        assert oracle_mismatches(state, server_command(tag=tag))[1] == []
    assert wait_no_servers(tag) == []


@pytest.mark.parametrize("flags, reason", [
    (["--die-at", "1"], "Connection closed"),
    (["--slow", "30"], "timed out"),
    (None, "malformed reply"),
], ids=["always dies", "hangs", "breaks the protocol"])
def test_a_server_that_keeps_failing_fails_the_trajectory_with_its_reason(run_cli, tmp_path: Path, flags, reason) -> None:
    tag = new_tag()
    db = tmp_path / "run.db"
    command = server_command(*flags, tag=tag) if flags is not None else broken_server_command()
    result = run_cli(*BASE, "--mcp-server", command, "--mcp-timeout", "3", "--n", "2", "--seed", "5", "--db", str(db))
    assert result.code == 0, result.err  # a failed trajectory, not a crashed run
    rows = _rows(run_cli, db)
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["status"] in ("done", "failed") for r in rows)
    for row in failed:
        assert row["error"].startswith("MCP server: ") and reason in row["error"] and "(3 attempts)" in row["error"], row["error"]
    assert "x MCP server" in result.out
    assert wait_no_servers(tag) == []


def test_kill_9_mid_run_then_resume_rebuilds_each_server_from_the_recorded_calls(run_cli, tmp_path: Path) -> None:
    tag = new_tag()
    command = server_command(tag=tag)
    db = tmp_path / "run.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialogforge.cli", *BASE[:-4], "--max-turns", "12", "--max-tasks", "3",
         "--mcp-server", command, "--n", "2", "--seed", "11", "--db", str(db)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and checkpoint_count(db) < 25 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read().decode()[-500:]}"
        proc.kill()  # SIGKILL: no cleanup; its servers see their stdin close
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert wait_no_servers(tag) == [], "a server outlived the killed dialogforge"
    before = {r["thread_id"]: r["status"] for r in _rows(run_cli, db)}
    assert set(before.values()) & {"pending", "running"}
    killed_at = {t: len(load_state(db, t).messages) for t, s in before.items() if s == "running"}

    resumed = run_cli("resume", "--db", str(db), "--quiet")
    assert resumed.code == 0, resumed.err
    continued = 0
    for row in _rows(run_cli, db):
        assert row["status"] == "done", row
        state = load_state(db, row["thread_id"])
        assert state.mcp_divergences == []
        assert oracle_mismatches(state, command)[1] == []  # calls after the resume saw the state from before it
        if row["thread_id"] in killed_at and any(m.role == "tool" for m in state.messages[killed_at[row["thread_id"]]:]):
            continued += 1
    assert continued >= 1, "no killed trajectory made a call after the resume"
    assert wait_no_servers(tag) == []


def _fork_point(db: Path, thread_id: str) -> str | None:
    """A checkpoint after the trajectory's first record was created, about to execute tool calls."""
    with store_saver(db) as saver:
        graph = compile_graph(Mode.USER, saver)
        history = list(graph.get_state_history({"configurable": {"thread_id": thread_id}}))
    for snapshot in reversed(history):  # oldest first
        messages = snapshot.values.get("messages") or []
        created = any(m.role == "tool" and m.name == "create_record" and not m.is_error for m in messages)
        if created and snapshot.next == ("execute_tools",):
            return snapshot.config["configurable"]["checkpoint_id"]
    return None


def _forked(run_cli, tmp_path: Path, *flags: str) -> tuple[Path, str, DialogueState, DialogueState]:
    tag = new_tag()
    command = server_command(*flags, tag=tag)
    db = tmp_path / "run.db"
    result = run_cli(*BASE[:-4], "--max-turns", "10", "--mcp-server", command, "--n", "3", "--seed", "7", "--db", str(db))
    assert result.code == 0, result.err
    states = {r["thread_id"]: load_state(db, r["thread_id"]) for r in _rows(run_cli, db)}
    points = {thread: _fork_point(db, thread) for thread in states}
    parent = next((thread for thread, point in points.items() if point), None)
    assert parent is not None, "no trajectory created a record and then called a tool"
    fork = fork_trajectory(db, parent, points[parent], n=1, seed=99)
    assert fork.summary is not None and fork.summary.done == 1
    assert wait_no_servers(tag) == []
    assert load_state(db, parent).model_dump_json() == states[parent].model_dump_json()  # the source only read
    return db, command, states[parent], load_state(db, fork.thread_ids[0])


def test_a_fork_rebuilds_its_own_server_by_replaying_the_parents_writes(run_cli, tmp_path: Path) -> None:
    db, command, parent, fork = _forked(run_cli, tmp_path)
    assert fork.mcp_divergences == []
    shared = next(i for i, (a, b) in enumerate(zip(parent.messages, fork.messages)) if a != b)
    assert writes_of(parent.model_copy(update={"messages": parent.messages[:shared]})) >= 1
    assert oracle_mismatches(fork, command)[1] == []  # after the fork point it saw the parent's state, then its own
    assert fork.messages[shared:] != parent.messages[shared:]  # then went its own way


def test_a_replay_that_answers_differently_is_recorded_as_a_divergence(run_cli, tmp_path: Path) -> None:
    """A server whose writes answer with a fresh random token cannot be rebuilt exactly:
    the fork's replay notices and keeps each difference in the state."""
    _, _, _, fork = _forked(run_cli, tmp_path, "--nonce")
    assert fork.mcp_divergences, "the replay of a nondeterministic create_record went unnoticed"
    first = fork.mcp_divergences[0]
    assert first.tool == "create_record" and first.recorded != first.replayed and '"token"' in first.replayed
