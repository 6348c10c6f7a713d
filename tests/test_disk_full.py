"""The disk fills up mid-run: a clear error, and the work done before it intact and resumable.

Two ways to run out of space. With root (CI, this container), a small
tmpfs made by the test holds the database and another file fills it once
a few trajectories are done -- the overnight run whose disk someone else
fills. Without root, a file-size limit (``RLIMIT_FSIZE``) on the process
stands in. Either way ``generate`` must stop with one ``dialogforge:
error:`` line naming the database, exit 2, leave the finished trajectories
exactly as an uninterrupted run makes them, and ``resume`` -- once there
is room again -- must finish the rest, identical to that run.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings
from dialogforge.runs.generate import generate
from dialogforge.records import Limits
from tests.support.checkpoints import SCRIPTED, counters_problem, dialogue_problem, integrity, manifest_rows, states
from tests.support.paths import REPO

N, SEED = 16, 4


def _generate_command(db: Path) -> list[str]:
    return [sys.executable, "-m", "dialogforge.cli", "generate", "--backend", "scripted", "--db", str(db), "--quiet",
            "--n", str(N), "--seed", str(SEED), "--concurrency", "4", "--max-turns", "10", "--max-tasks", "3"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _done_count(db: Path) -> int:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM runs WHERE status = 'done'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, str]:
    db = tmp_path_factory.mktemp("reference") / "reference.db"
    settings = GenerationSettings(n=N, seed=SEED, concurrency=4, limits=Limits(max_user_turns=10, max_tasks=3))
    result = generate(db, settings, SCRIPTED)
    return {_index(t): s.model_dump_json() for t, s in zip(result.thread_ids, states(db, result.thread_ids))}


def _index(thread_id: str) -> str:
    """``<run id>-00003`` -> ``00003``: run ids are random, the index is the trajectory's identity."""
    return thread_id.rsplit("-", 1)[1]


def _check_intact(db: Path, reference: dict[str, str], *, statuses: set[str]) -> list[dict]:
    rows = manifest_rows(db)
    assert len(rows) == N and {r["status"] for r in rows} <= statuses
    assert integrity(db) == "ok"
    done = [r for r in rows if r["status"] == "done"]
    for row, state in zip(done, states(db, [r["thread_id"] for r in done])):
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None
        assert state.model_dump_json() == reference[_index(row["thread_id"])], f"{row['thread_id']} changed"
    return rows


def _check_stopped_clearly(proc: subprocess.Popen, db: Path, problem: str) -> None:
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("generate hung on a full disk")
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, err.decode()[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"dialogforge: error: {db}: ") and problem in lines[0], lines


def _resume_and_check(db: Path, reference: dict[str, str]) -> None:
    resumed = subprocess.run([sys.executable, "-m", "dialogforge.cli", "resume", "--db", str(db), "--quiet"],
                             cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    rows = _check_intact(db, reference, statuses={"done"})
    assert len(rows) == N


@contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the test (skips without the right to mount)."""
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root); test_file_size_limit_mid_run covers the case")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _start_generate(db: Path) -> subprocess.Popen:
    return subprocess.Popen(_generate_command(db), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _fill(directory: Path) -> Path:
    """Write until the filesystem refuses: ENOSPC."""
    filler = directory / "filler.bin"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_disk_fills_up_mid_run_then_resume_after_freeing_space(tmp_path, reference):
    with small_filesystem(tmp_path / "small_fs", "16m") as mnt:
        db = mnt / "run.db"
        proc = _start_generate(db)
        deadline = time.monotonic() + 120
        while _done_count(db) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before the disk could fill; make it longer"
        filler = _fill(mnt)
        _check_stopped_clearly(proc, db, "database or disk is full")
        filler.unlink()
        rows = _check_intact(db, reference, statuses={"done", "running", "pending"})
        assert sum(r["status"] == "done" for r in rows) >= 3, "the work done before the disk filled is kept"
        assert sum(r["status"] != "done" for r in rows) > 0
        _resume_and_check(db, reference)


@pytest.mark.soak
def test_a_disk_too_small_from_the_start_then_resume_once_it_grows(tmp_path, reference):
    """Full before any trajectory finished, with several mid-step: resume must find every
    checkpoint consistent (a cached name id of a rolled-back row once dangled here)."""
    with small_filesystem(tmp_path / "tiny_fs", "400k") as mnt:
        db = mnt / "run.db"
        _check_stopped_clearly(_start_generate(db), db, "database or disk is full")
        _check_intact(db, reference, statuses={"done", "running", "pending"})
        subprocess.run(["mount", "-o", "remount,size=16m", str(mnt)], check=True)
        _resume_and_check(db, reference)


def test_a_rolled_back_transaction_forgets_the_names_it_created(tmp_path):
    """The saver caches name ids; one whose INSERT was rolled back must not be reused."""
    from dialogforge.checkpoints.sqlite_file import connect
    from dialogforge.checkpoints.sqlite_savers import new_saver

    conn = connect(tmp_path / "names.db")
    saver = new_saver(conn)
    with pytest.raises(OSError):
        with saver.transaction():
            saver.names.id(0, "thread-made-then-rolled-back", create=True)
            raise OSError(errno.ENOSPC, "database or disk is full")
    name_id = saver.names.id(0, "thread-made-then-rolled-back", create=True)
    assert conn.execute("SELECT name FROM cp_names WHERE id = ?", (name_id,)).fetchone() == ("thread-made-then-rolled-back",)
    conn.close()


def test_file_size_limit_mid_run(tmp_path, reference):
    """The unprivileged stand-in: the process may not grow a file past a limit (EFBIG)."""
    db = tmp_path / "run.db"

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))

    proc = subprocess.Popen(_generate_command(db), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=limit_file_size)
    _check_stopped_clearly(proc, db, "database error during the run")
    rows = _check_intact(db, reference, statuses={"done", "running", "pending"})
    assert sum(r["status"] != "done" for r in rows) > 0
    _resume_and_check(db, reference)
