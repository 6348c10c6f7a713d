"""Kill -9 drivers shared by the crash tests: kill a dialogforge process at a random moment, resume, compare."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from dialogforge.config import GenerationSettings
from dialogforge.records import Limits
from dialogforge.runs.generate import generate
from tests.support.checkpoints import (
    SCRIPTED,
    checkpoint_count,
    counters_problem,
    dialogue_problem,
    integrity,
    manifest_rows,
    states,
)
from tests.support.paths import REPO

def _settings(n: int, seed: int) -> GenerationSettings:
    return GenerationSettings(n=n, seed=seed, concurrency=4, limits=Limits(max_user_turns=30, max_tasks=4))


def _command(db: Path, n: int, seed: int) -> list[str]:
    if manifest_started(db):
        return [sys.executable, "-m", "dialogforge.cli", "resume", "--db", str(db), "--quiet"]
    return [sys.executable, "-m", "dialogforge.cli", "generate", "--backend", "scripted", "--db", str(db), "--quiet",
            "--n", str(n), "--seed", str(seed), "--concurrency", "4", "--max-turns", "30", "--max-tasks", "4"]


def manifest_started(db: Path) -> bool:
    """Whether a generate got as far as recording its trajectories (then resume continues them)."""
    if not db.exists():
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def kill_at_random(proc: subprocess.Popen, db: Path, rng: random.Random, *, by_time: float = 0.25,
                    seconds: tuple[float, float] = (0.0, 2.5), checkpoints: int = 120) -> str:
    """Kill ``proc`` at a random moment; say where (or that it finished first).

    A ``by_time`` share of kills lands ``seconds`` after the start, the rest
    after up to ``dialogforge.checkpoints`` further checkpoints (smaller for a short job)."""
    if rng.random() < by_time:
        deadline = time.monotonic() + rng.uniform(*seconds)  # start-up, planning, first steps
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        where = "by time"
    else:
        target = checkpoint_count(db) + rng.randint(1, checkpoints)
        deadline = time.monotonic() + 60
        while proc.poll() is None and checkpoint_count(db) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        where = "mid-run"
    if proc.poll() is not None:
        return "finished"
    proc.kill()  # SIGKILL: no cleanup, no flush, no handler
    proc.wait()
    return where


def kill_and_resume(tmp_path: Path, *, kills: int, n: int, seed: int, rng_seed: int) -> dict[str, int]:
    db = tmp_path / "killed.db"
    reference_db = tmp_path / "reference.db"
    reference = generate(reference_db, _settings(n, seed), SCRIPTED)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(rng_seed)
    landed = {"mid-run": 0, "by time": 0, "finished": 0}
    for _ in range(kills):
        proc = subprocess.Popen(_command(db, n, seed), cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        landed[kill_at_random(proc, db, rng)] += 1
        if db.exists():
            assert integrity(db) == "ok"
    final = subprocess.run(_command(db, n, seed), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr

    rows = manifest_rows(db)
    assert len(rows) == n, "a requested trajectory is missing or one was added"
    assert len({r["run_id"] for r in rows}) == 1
    assert {r["status"] for r in rows} <= {"done", "failed"}
    assert all(r["error"] for r in rows if r["status"] == "failed")
    assert integrity(db) == "ok"

    ids = sorted(r["thread_id"] for r in rows)
    assert [i.rsplit("-", 1)[1] for i in ids] == [f"{k:05d}" for k in range(n)]
    killed, clean = states(db, ids), states(reference_db, reference.thread_ids)
    for row, state in zip(sorted(rows, key=lambda r: r["thread_id"]), killed):
        finished = row["status"] == "done"
        assert dialogue_problem(state.messages, finished=finished) is None, (row["thread_id"], dialogue_problem(state.messages))
        assert counters_problem(state) is None, (row["thread_id"], counters_problem(state))
        assert row["messages"] == len(state.messages) and row["user_turns"] == state.counters.user_turns
    for got, want, thread in zip(killed, clean, ids):
        assert got.model_dump_json() == want.model_dump_json(), f"{thread} differs from the uninterrupted run"
    return landed
