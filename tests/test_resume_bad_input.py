"""Bad databases for resume, fork and history: one clear line, exit 2, nothing overwritten.

Locks are met by real processes (a lock is re-entrant within one, and the busy timeout is
read when the process starts); the rest run in this process.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from dialogforge.runs.history import history
from dialogforge.checkpoints.runlock import run_lock
from tests.support.checkpoints import small_run


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    db = tmp_path_factory.mktemp("bad") / "made.db"
    thread = small_run(db, n=1, max_turns=4)[0]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db, thread, history(db, thread)[4].checkpoint_id


def _commands(db, thread, checkpoint):
    return [
        ("resume", "--db", str(db)),
        ("history", thread, "--db", str(db)),
        ("fork", thread, "--db", str(db), "--checkpoint", checkpoint, "--no-run"),
    ]


def _one_line(result, needle):
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert needle in lines[0], lines[0]


def _copy(made, path):
    shutil.copy(made[0], path)
    return path


def test_not_a_database(tmp_path, made, run_cli):
    text = tmp_path / "notes.db"
    text.write_text("just some notes\n")
    for args in _commands(text, made[1], made[2]):
        _one_line(run_cli(*args), "not a SQLite database")
    assert text.read_text() == "just some notes\n"


def test_a_database_that_is_not_ours(tmp_path, made, run_cli):
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    for args in _commands(foreign, made[1], made[2]):
        _one_line(run_cli(*args), "not a dialogforge database")
    assert foreign.read_bytes() == before


def test_a_missing_database(tmp_path, made, run_cli):
    missing = tmp_path / "nowhere.db"
    for args in _commands(missing, made[1], made[2]):
        _one_line(run_cli(*args), "no such database")
    assert not missing.exists()


def test_a_corrupted_database(tmp_path, made, run_cli):
    broken = _copy(made, tmp_path / "broken.db")
    data = bytearray(broken.read_bytes())
    page = 4096
    # Trash every third page whole (keep page 1: the file header and the schema). Bytes in a
    # page's free gap would corrupt nothing, and quick_check rightly passes them.
    for offset in range(2 * page, len(data) - page, 3 * page):
        data[offset: offset + page] = b"\xde\xad\xbe\xef" * (page // 4)
    broken.write_bytes(bytes(data))
    for args in _commands(broken, made[1], made[2]):
        result = run_cli(*args)
        assert result.code == 2, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1 and str(broken) in result.err, result.err
    assert broken.read_bytes() == bytes(data)


def test_a_database_locked_by_another_program(tmp_path, made, run_cli_process):
    db = _copy(made, tmp_path / "locked.db")
    holder = sqlite3.connect(db)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for args in _commands(db, made[1], made[2]):
            _one_line(run_cli_process(*args, env={"DIALOGFORGE_BUSY_TIMEOUT_S": "0.5"}), "locked")
    finally:
        holder.rollback()
        holder.close()
    assert history(db, made[1])[4].checkpoint_id == made[2]
    assert [r[0] for r in sqlite3.connect(db).execute("SELECT thread_id FROM runs")] == [made[1]]


def test_a_database_another_dialogforge_process_is_running_on(tmp_path, made, run_cli_process):
    db = _copy(made, tmp_path / "busy.db")
    with run_lock(db):
        for args in (_commands(db, made[1], made[2])[0], _commands(db, made[1], made[2])[2]):
            _one_line(run_cli_process(*args), "another dialogforge process")
    assert [r[0] for r in sqlite3.connect(db).execute("SELECT thread_id FROM runs")] == [made[1]]


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only file system (root can write into a chmod-ed directory, not into this)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("needs permission to mount a tmpfs (root with CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_database_in_a_read_only_directory(read_only_dir, made, run_cli):
    db = _copy(made, read_only_dir / "run.db")
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_dir)], check=True)
    before = db.read_bytes()
    for args in _commands(db, made[1], made[2]):
        _one_line(run_cli(*args), "is read-only")
    assert db.read_bytes() == before
