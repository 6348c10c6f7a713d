"""Ctrl-C on a real ``dialogforge generate`` process, then resume: nothing lost.

The generator runs as a subprocess against a stub server in this process
(each call held briefly, so there is always work in flight); SIGINT is sent
once calls are flowing; ``dialogforge resume`` (another subprocess) then
continues started trajectories from their checkpoints and starts the ones
still pending. Because the scripted model answers from
the conversation alone, an interrupted-then-resumed run must produce exactly
the dialogues of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.runs.generate import generate
from dialogforge.records import Limits
from tests.support.kills import manifest_started
from tests.support.paths import REPO

N, SEED, CONCURRENCY = 8, 13, 4


def _start_generate(db: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dialogforge.cli", "generate", "--base-url", url, "--n", str(N), "--seed", str(SEED),
         "--concurrency", str(CONCURRENCY), "--max-tasks", "2", "--db", str(db),
         "--progress", "plain", "--progress-interval", "0.5"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for_calls(server: StubServer, calls: int, proc: subprocess.Popen, db: Path, timeout: float = 60) -> None:
    """``calls`` calls after the run was planned (tool libraries and first tasks take calls of their own)."""
    deadline = time.monotonic() + timeout
    while not manifest_started(db):  # read-only: a reader creating tables would lock the writer out
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run was never planned"
        time.sleep(0.05)
    calls += server.stats()["calls"]
    while server.stats()["calls"] < calls:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no calls reached the stub server"
        time.sleep(0.05)


def _rows(db: Path) -> list[dict]:
    manifest = Manifest(db)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def _resume(db: Path, url: str) -> None:
    """``dialogforge resume`` as a user runs it: continue started rows, start pending ones."""
    proc = subprocess.run(
        [sys.executable, "-m", "dialogforge.cli", "resume", "--db", str(db), "--base-url", url, "--quiet"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 failed" in proc.stdout, proc.stdout


def _dialogues(db: Path) -> dict[str, list]:
    """Messages per trajectory index (thread ids differ between runs; the index suffix does not)."""
    return {r["thread_id"].rsplit("-", 1)[1]: [m.model_dump() for m in load_state(db, r["thread_id"]).messages]
            for r in _rows(db)}


def _interrupted_then_resumed(tmp_path: Path, server: StubServer, signals: int, after_calls: int) -> tuple[Path, subprocess.CompletedProcess]:
    db = tmp_path / "run.db"
    proc = _start_generate(db, server.base_url)
    _wait_for_calls(server, after_calls, proc, db)
    proc.send_signal(signal.SIGINT)
    if signals == 2:
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    result.stopped_after = stopped_after  # type: ignore[attr-defined]
    return db, result


def test_ctrl_c_drains_then_resume_completes_every_dialogue_unchanged(tmp_path):
    with StubServer(lambda r: ScriptedChatModel(), latency_s=0.05) as server:
        db, result = _interrupted_then_resumed(tmp_path, server, signals=1, after_calls=30)
        assert result.returncode == 130, result.stderr
        assert f"dialogforge resume --db {db}" in result.stderr
        assert "finishing the steps in flight" in result.stderr
        rows = _rows(db)
        assert len(rows) == N
        statuses = [r["status"] for r in rows]
        assert set(statuses) <= {"done", "running", "pending"}, statuses
        unfinished = [r for r in rows if r["status"] != "done"]
        assert unfinished, "interrupted too late: everything finished"
        # Started trajectories kept their checkpointed progress.
        before = {}
        for row in unfinished:
            if row["status"] == "running":
                state = load_state(db, row["thread_id"])
                assert state.stop_reason is None and state.messages
                before[row["thread_id"]] = [m.model_dump() for m in state.messages]
        assert before, "no trajectory was in flight at the interrupt"
        _resume(db, server.base_url)
        assert {r["status"] for r in _rows(db)} == {"done"}
        for thread_id, messages in before.items():
            after = [m.model_dump() for m in load_state(db, thread_id).messages]
            assert after[: len(messages)] == messages  # continued, not restarted
        clean = tmp_path / "clean.db"
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url))
        generate(clean, GenerationSettings(n=N, seed=SEED, concurrency=CONCURRENCY, limits=Limits(max_tasks=2)), models)
    assert _dialogues(db) == _dialogues(clean)


def test_ctrl_c_while_tool_libraries_are_built_plans_nothing_and_keeps_what_was_built(tmp_path):
    with StubServer(lambda r: ScriptedChatModel(), latency_s=0.3) as server:
        db = tmp_path / "run.db"
        proc = _start_generate(db, server.base_url)
        deadline = time.monotonic() + 60
        while server.stats()["calls"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("dialogforge: interrupted while preparing tool libraries"), err
    assert not manifest_started(db)  # nothing half-planned for resume to trip on


def test_second_ctrl_c_stops_at_once_and_stays_resumable(tmp_path):
    with StubServer(lambda r: ScriptedChatModel(), latency_s=2.0) as server:
        db, result = _interrupted_then_resumed(tmp_path, server, signals=2, after_calls=6)
        assert result.returncode == 130, result.stderr
        assert "stopping now" in result.stderr
        # Held calls take 2 s; a drain would wait for them, an immediate stop does not.
        assert result.stopped_after < 1.8, result.stopped_after
        rows = _rows(db)
        assert len(rows) == N and all(r["status"] in ("pending", "running", "done") for r in rows)
    with StubServer(lambda r: ScriptedChatModel()) as fast:
        _resume(db, fast.base_url)
    assert {r["status"] for r in _rows(db)} == {"done"}
    for row in _rows(db):
        assert load_state(db, row["thread_id"]).stop_reason is not None
