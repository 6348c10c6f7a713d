"""``generate --processes N``: local worker processes (no Ray), one SQLite shard each, read as one dataset.

Every trajectory must land exactly once and equal the same run made by one
process; a kill -9 of the driver stops its workers (nobody is left writing)
and ``resume`` finishes every shard.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dialogforge.checkpoints.shards import shard_paths
from tests.support.checkpoints import checkpoint_count, integrity
from tests.support.paths import REPO
from tests.support.procs import live_pids
from tests.support.postgres import dialogues, rows

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
        ("--domain-db", str(_tiny_domain(tmp_path))): "with --executor ray or with --processes",
        ("--budget-usd", "1"): "cannot run with --processes",
    }
    for extra, expected in cases.items():
        result = run_cli("generate", *RUN, "--processes", "2", *extra, "--db", db)
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1 and expected in lines[0], (extra, result.err)
        assert not Path(db).exists() and not (tmp_path / "run.db.shards").exists()
    pg = run_cli("generate", *RUN, "--processes", "2", "--db", pg_url)
    assert pg.code == 2 and "for a postgresql:// --db use --executor ray" in pg.err


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
