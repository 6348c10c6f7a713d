"""``generate --processes N``: local worker processes (no Ray), one SQLite shard each, read as one dataset.

Every trajectory must land exactly once and equal the same run made by one
process; a kill -9 of the driver stops its workers (nobody is left writing)
and ``resume`` finishes every shard.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialogforge.checkpoints.shards import shard_paths, thread_store
from dialogforge.runs.reading import load_state
from tests.support.checkpoints import checkpoint_count, integrity
from tests.support.paths import REPO
from tests.support.procs import live_pids
from tests.support.postgres import dialogues, rows
from tests.support.sql import build_notes_domain

N = 8
RUN = ["--backend", "scripted", "--n", str(N), "--seed", "5", "--concurrency", "2", "--max-turns", "6", "--max-tasks", "2"]
# Long enough (a few seconds) that a kill or a Ctrl-C lands mid-run.
LONG_RUN = ["--backend", "scripted", "--n", "16", "--seed", "5", "--concurrency", "2", "--max-turns", "20", "--max-tasks", "4"]


def _workers_of(db: Path) -> list[int]:
    """Live worker processes writing one of ``db``'s shards (their command line names the shard)."""
    return live_pids(b"dialogforge.runs.local_processes", str(db).encode())


def _reference_and_driver(run_cli, reference_db: Path, db: Path) -> subprocess.Popen:
    """The long run made by one process into ``reference_db``, then started with 2 processes into
    ``db`` as a real process (its output captured), for a test to interrupt."""
    assert run_cli("generate", *LONG_RUN, "--db", str(reference_db), "--quiet").code == 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "dialogforge.cli", "generate", *LONG_RUN, "--processes", "2",
                             "--db", str(db), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish_and_compare(run_cli, db: Path, reference_db: Path) -> None:
    """``resume`` completes every shard, each dialogue as the one-process run made it."""
    resumed = run_cli("resume", "--db", str(db), "--quiet")
    assert resumed.code == 0, resumed.err
    assert {r["status"] for r in rows(db)} == {"done"} and dialogues(db) == dialogues(reference_db)


def test_two_processes_land_every_trajectory_once_as_one_process_would(run_cli, tmp_path: Path) -> None:
    reference_db, db = tmp_path / "one.db", tmp_path / "two.db"
    assert run_cli("generate", *RUN, "--db", str(reference_db), "--quiet").code == 0
    result = run_cli("generate", *RUN, "--processes", "2", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    assert f"{N} done, 0 failed" in result.out
    assert [p.name for p in shard_paths(db)] == ["shard-000.db", "shard-001.db"] and not db.exists()
    assert sorted(len(rows(path)) for path in shard_paths(db)) == [N // 2, N // 2]  # each trajectory in one shard
    assert all(integrity(path) == "ok" for path in shard_paths(db))
    assert dialogues(db) == dialogues(reference_db)  # a step lost or run twice would change a dialogue
    assert _workers_of(db) == []
    listed = run_cli("list", "--db", str(db), "--json").json()
    assert len(listed) == N and {r["status"] for r in listed} == {"done"}
    out = tmp_path / "out.jsonl"
    assert run_cli("export", "--db", str(db), "--format", "openai", "--out", str(out)).code == 0
    assert out.read_text().count("\n") == N


def test_kill_nine_of_the_driver_stops_its_workers_and_resume_finishes_every_shard(run_cli, tmp_path: Path) -> None:
    reference_db, db = tmp_path / "one.db", tmp_path / "killed.db"
    driver = _reference_and_driver(run_cli, reference_db, db)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:  # mid-run: both workers have written steps
        shards = shard_paths(db) if (tmp_path / "killed.db.shards").exists() else []
        if len(shards) == 2 and all(checkpoint_count(path) >= 3 for path in shards):
            break
        time.sleep(0.01)
    assert driver.poll() is None, "the run finished before it could be killed"
    workers = _workers_of(db)
    assert len(workers) == 2, workers
    driver.kill()  # SIGKILL: no handler runs, no signal is forwarded
    driver.communicate()
    deadline = time.monotonic() + 10
    while _workers_of(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers_of(db) == [], "a worker kept running after its driver died"
    assert all(integrity(path) == "ok" for path in shard_paths(db))
    unfinished = [r for path in shard_paths(db) for r in rows(path) if r["status"] not in ("done", "failed")]
    assert unfinished, "the kill landed after every trajectory had finished"

    assert len(rows(db)) == 16
    _finish_and_compare(run_cli, db, reference_db)


def _tiny_domain(tmp_path: Path) -> Path:
    """A one-table SQLite domain for Tool-Exec (whose per-trajectory copies live beside one --db)."""
    import sqlite3

    path = tmp_path / "tiny.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO books (title) VALUES ('Dune')")
    return path


def test_processes_refuse_what_they_cannot_run_in_one_line(run_cli, tmp_path: Path, pg_url: str) -> None:
    db = str(tmp_path / "run.db")
    cases = {
        ("--executor", "ray"): "with --executor ray give --workers instead",
        ("--budget-usd", "1"): "cannot run with --processes",
    }
    for extra, expected in cases.items():
        result = run_cli("generate", *RUN, "--processes", "2", *extra, "--db", db)
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and expected in lines[0], (extra, result.err)
        assert not Path(db).exists() and not (tmp_path / "run.db.shards").exists()
    pg = run_cli("generate", *RUN, "--processes", "2", "--db", pg_url)
    assert pg.code == 2 and "for a postgresql:// --db use --executor ray" in pg.err
    ray = run_cli("generate", *RUN, "--executor", "ray", "--domain-db", str(_tiny_domain(tmp_path)), "--db", db)
    assert ray.code == 2 and "cannot run on a postgresql:// --db or with --executor ray (--processes can)" in ray.err
    assert not (tmp_path / "run.db.shards").exists()


def test_tool_exec_sql_on_two_processes_writes_as_one_process_and_forks_in_its_shard(run_cli, tmp_path: Path) -> None:
    """Each worker keeps its trajectories' databases beside its shard; the dialogues (tool results
    read from those databases) equal the one-process run's, and a fork continues in the shard."""
    sql = [*RUN, "--tool-exec", "sql", "--domain-db", str(build_notes_domain(tmp_path / "domain"))]
    reference_db, db = tmp_path / "one.db", tmp_path / "two.db"
    assert run_cli("generate", *sql, "--db", str(reference_db), "--quiet").code == 0
    result = run_cli("generate", *sql, "--processes", "2", "--db", str(db), "--quiet")
    assert result.code == 0 and f"{N} done, 0 failed" in result.out, result.err
    assert dialogues(db) == dialogues(reference_db)
    states = {r["thread_id"]: load_state(db, r["thread_id"]) for r in rows(db)}
    assert sum(len(s.sql_writes) for s in states.values()) > 0  # the tools really wrote
    assert not list(tmp_path.rglob("*.worlds"))  # the copies are caches, removed when the run ends
    parent = max(states, key=lambda t: len(states[t].sql_writes))
    history = run_cli("history", parent, "--db", str(db), "--json").json()
    at = {e["checkpoint_id"]: load_state(db, f"{parent}@{e['checkpoint_id']}") for e in history
          if e["node"] == "execute_tools"}
    point = next(c for c, state in at.items() if state.sql_writes)  # just after the first write
    forked = run_cli("fork", parent, "--db", str(db), "--checkpoint", point, "--n", "2", "--quiet")
    assert forked.code == 0, forked.err
    shard = thread_store(db, parent)
    new = [r for r in rows(shard) if r["thread_id"] not in states]
    assert len(new) == 2 and {r["status"] for r in new} == {"done"}
    assert len(rows(db)) == N + 2  # both in the parent's shard, read with the rest
    inherited = at[point].sql_writes  # each fork's world starts from exactly the parent's writes so far
    assert all(load_state(db, r["thread_id"]).sql_writes[:len(inherited)] == inherited for r in new)


def test_ctrl_c_reaches_the_workers_through_the_driver_and_resume_completes(run_cli, tmp_path: Path) -> None:
    import signal

    reference_db, db = tmp_path / "one.db", tmp_path / "stopped.db"
    driver = _reference_and_driver(run_cli, reference_db, db)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_workers_of(db)) < 2 and driver.poll() is None:
        time.sleep(0.01)
    assert len(_workers_of(db)) == 2, "the workers never started"
    driver.send_signal(signal.SIGINT)  # to the driver alone: the workers run in sessions of their own
    time.sleep(0.05)
    driver.send_signal(signal.SIGINT)  # the second: stop at once
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, (driver.returncode, err)
    assert "resume" in err
    assert _workers_of(db) == []
    assert [r for r in rows(db) if r["status"] not in ("done", "failed")], "the workers finished before the signal"
    _finish_and_compare(run_cli, db, reference_db)


def test_a_killed_worker_is_reported_and_its_shard_resumed(run_cli, tmp_path: Path) -> None:
    import signal

    reference_db, db = tmp_path / "one.db", tmp_path / "lost.db"
    driver = _reference_and_driver(run_cli, reference_db, db)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        shards = shard_paths(db) if (tmp_path / "lost.db.shards").exists() else []
        if len(shards) == 2 and checkpoint_count(shards[0]) >= 3 and len(_workers_of(shards[0])) == 1:
            break
        time.sleep(0.01)
    victims = _workers_of(shard_paths(db)[0])
    assert len(victims) == 1, victims
    os.kill(victims[0], signal.SIGKILL)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, (driver.returncode, err)
    assert "worker process 0 exited with code -9" in err and "resume" in err
    assert [r for r in rows(shard_paths(db)[0]) if r["status"] not in ("done", "failed")], "the worker had finished"
    assert {r["status"] for r in rows(shard_paths(db)[1])} == {"done"}  # the other worker ran its shard to the end
    _finish_and_compare(run_cli, db, reference_db)


def test_the_library_face_runs_processes_and_refuses_what_one_process_keeps(scripted_models, tmp_path: Path) -> None:
    """``generate(processes=N)``: the same shards and dialogues as the CLI; a progress sink or a
    budget (kept in one process) is refused before anything is written."""
    from dialogforge.config import GenerationSettings, Limits
    from dialogforge.errors import ConfigError
    from dialogforge.progress import ProgressTally
    from dialogforge.runs.generate import generate

    settings = GenerationSettings(n=4, seed=5, concurrency=2, limits=Limits(max_user_turns=6, max_tasks=2))
    lines: list[str] = []
    result = generate(tmp_path / "lib.db", settings, scripted_models, processes=2, report=lines.append)
    assert (result.summary.done, result.summary.failed, result.interrupted) == (4, 0, False)
    assert len(shard_paths(tmp_path / "lib.db")) == 2 and lines[-1].startswith("[2 processes] done 4/4 failed 0")
    reference = generate(tmp_path / "one.db", settings, scripted_models)
    assert dialogues(tmp_path / "lib.db") == dialogues(tmp_path / "one.db") and reference.summary.done == 4
    for kwargs, expected in (({"progress": ProgressTally()}, "pass report="),
                             ({"settings": settings.model_copy(update={"budget_usd": 1.0})}, "--budget-usd")):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            generate(tmp_path / "refused.db", kwargs.pop("settings", settings), scripted_models, processes=2, **kwargs)
        assert not (tmp_path / "refused.db.shards").exists()
