"""Kill -9 during ``fork`` and during ``export``, recover, and lose or duplicate nothing.

``test_resume_kill`` kills ``generate``/``resume``; this adds the other two
commands that write. A killed fork is followed by what a user would run:
``resume`` when its forks were recorded, the same ``fork`` again when not.
Forks are all-or-nothing (none or all ``--n`` of them exist after any
kill), finish identical to an uninterrupted fork (the scripted model is
deterministic), and the database stays intact. A killed export leaves
either no output or a complete one, never a partial file, and the re-run
writes exactly what an uninterrupted export does.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialogforge.runs.fork import fork_trajectory
from dialogforge.runs.history import history
from dialogforge.dataset.export import export
from tests.support.checkpoints import counters_problem, dialogue_problem, integrity, manifest_rows, small_run, states, thread_rows
from tests.support.kills import kill_and_resume, kill_at_random
from tests.support.paths import REPO

FORKS = 3


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dialogforge.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _forks_of(db: Path, source: str) -> list[dict]:
    return sorted((r for r in manifest_rows(db) if r["parent_thread_id"] == source), key=lambda r: r["thread_id"])


def _fork_point(db: Path, thread_id: str) -> str:
    """A checkpoint a third of the way in, with something to run after it."""
    entries = [e for e in history(db, thread_id) if e.next and e.step >= 0]
    return entries[len(entries) // 3].checkpoint_id


def _fork_seconds(db: Path, source: str, point: str) -> float:
    """How long an uninterrupted fork takes here, as a process (on a scratch copy of the database)."""
    scratch = db.with_name(f"timing-{db.name}")
    shutil.copy(db, scratch)
    started = time.monotonic()
    done = subprocess.run(_cli("fork", source, "--db", str(scratch), "--checkpoint", point, "--n", str(FORKS), "--quiet"),
                          cwd=REPO, env=_env(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def _kill_fork(db: Path, source: str, point: str, kills: int, rng: random.Random, fresh: Path) -> dict[str, int]:
    """``fresh``: the database as it was before any fork; a fork that finished before its kill is
    undone from it, so the next kill again meets a fork to interrupt (not a resume with nothing left)."""
    landed = {"mid-run": 0, "by time": 0, "finished": 0}
    # Kill times scale with this machine's speed: on a fast box fixed times mostly came after
    # the fork had finished, and a kill that lands on a finished fork tests nothing.
    whole = _fork_seconds(db, source, point)
    for _ in range(kills):
        command = (_cli("resume", "--db", str(db), "--quiet") if _forks_of(db, source)
                   else _cli("fork", source, "--db", str(db), "--checkpoint", point, "--n", str(FORKS), "--quiet"))
        proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # a few forks write tens of checkpoints, not hundreds: smaller steps than a generate
        where = kill_at_random(proc, db, rng, by_time=0.6, seconds=(0.3 * whole, 0.85 * whole), checkpoints=12)
        landed[where] += 1
        assert integrity(db) == "ok"
        assert len(_forks_of(db, source)) in (0, FORKS), "a killed fork left some of its forks, not all or none"
        if where == "finished":
            for leftover in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copy(fresh, db)
    final = (_cli("resume", "--db", str(db), "--quiet") if _forks_of(db, source)
             else _cli("fork", source, "--db", str(db), "--checkpoint", point, "--n", str(FORKS), "--quiet"))
    done = subprocess.run(final, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return landed


def _export_command(db: Path, out: Path) -> list[str]:
    return _cli("export", "--db", str(db), "--format", "openai", "--out", str(out))


def _kill_export(db: Path, out: Path, reference: bytes, kills: int, rng: random.Random) -> dict[str, int]:
    """Half the kills at a random time of a whole export, half while its output is being written."""
    started = time.monotonic()
    warm = subprocess.run(_export_command(db, out.with_name("warm.jsonl")), cwd=REPO, env=_env(), capture_output=True, timeout=300)
    assert warm.returncode == 0, warm.stderr
    whole = time.monotonic() - started
    landed = {"by time": 0, "mid-write": 0, "finished": 0}
    for _ in range(kills):
        proc = subprocess.Popen(_export_command(db, out), cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        writing = rng.random() < 0.5
        deadline = time.monotonic() + rng.uniform(0.0, whole)
        while proc.poll() is None and (any(out.parent.glob(f".{out.name}.tmp-*")) is False if writing else time.monotonic() < deadline):
            time.sleep(0.001)
        if proc.poll() is None:
            proc.kill()
            landed["mid-write" if writing else "by time"] += 1
        else:
            landed["finished"] += 1
        proc.wait()
        if out.exists():
            assert out.read_bytes() == reference, "a killed export left a partial or different file at --out"
    done = subprocess.run(_export_command(db, out), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return landed


def kill_fork_and_export(tmp_path: Path, *, fork_kills: int, export_kills: int, rng_seed: int, n: int = 8,
                         sources: int = 1) -> dict:
    """Fork (``sources`` trajectories in turn, ``fork_kills`` kills each) and export under kill -9,
    checked against the same commands run without a kill."""
    base = tmp_path / "base.db"
    threads = small_run(base, n=n, seed=rng_seed, max_turns=10, max_tasks=3)
    reference_db, killed_db = tmp_path / "reference.db", tmp_path / "killed.db"
    shutil.copy(base, reference_db)
    shutil.copy(base, killed_db)
    rng = random.Random(rng_seed)
    fork_landed: dict[str, int] = {}
    for source in threads[:sources]:  # once a fork is done, killing its resume kills nothing: fork another
        point = _fork_point(base, source)
        reference = fork_trajectory(reference_db, source, point, FORKS)
        source_rows = thread_rows(killed_db, source)
        before = tmp_path / f"before-{source}.db"
        shutil.copy(killed_db, before)
        for where, count in _kill_fork(killed_db, source, point, fork_kills, rng, before).items():
            fork_landed[where] = fork_landed.get(where, 0) + count
        forks = _forks_of(killed_db, source)
        assert [r["thread_id"] for r in forks] == reference.thread_ids
        assert {r["status"] for r in forks} <= {"done", "failed"}
        assert thread_rows(killed_db, source) == source_rows, "forking changed its source"
        for row, got, want in zip(forks, states(killed_db, reference.thread_ids), states(reference_db, reference.thread_ids)):
            assert dialogue_problem(got.messages, finished=row["status"] == "done") is None, row["thread_id"]
            assert counters_problem(got) is None, row["thread_id"]
            assert got.model_dump_json() == want.model_dump_json(), f"{row['thread_id']} differs from the uninterrupted fork"
    assert len(manifest_rows(killed_db)) == n + sources * FORKS, "a trajectory was added or lost"
    assert integrity(killed_db) == "ok"

    reference_out = tmp_path / "reference.jsonl"
    export(reference_db, reference_out, "openai")
    out = tmp_path / "export" / "train.jsonl"
    out.parent.mkdir()
    export_landed = _kill_export(killed_db, out, reference_out.read_bytes(), export_kills, rng)
    assert out.read_bytes() == reference_out.read_bytes()
    lines = out.read_text().splitlines()
    assert len(lines) == len({line for line in lines}) == sum(r["status"] == "done" for r in manifest_rows(killed_db))
    written = json.loads(Path(f"{out}.manifest.json").read_text())
    assert json.dumps(written).count(str(len(lines))) >= 1
    assert integrity(killed_db) == "ok"
    return {"fork": fork_landed, "export": export_landed}


def test_kill_nine_during_fork_and_export_then_recover(tmp_path):
    landed = kill_fork_and_export(tmp_path, fork_kills=4, export_kills=3, rng_seed=21)
    assert landed["fork"]["mid-run"] + landed["fork"]["by time"] >= 2, landed
    assert landed["export"]["by time"] + landed["export"]["mid-write"] >= 2, landed


@pytest.mark.soak
def test_soak_kill_nine_during_generate_and_resume(tmp_path):
    landed = kill_and_resume(tmp_path, kills=20, n=30, seed=13, rng_seed=6)
    print(f"\nSOAK crash generate/resume: {landed}")
    assert landed["mid-run"] + landed["by time"] >= 15, landed


@pytest.mark.soak
def test_soak_kill_nine_during_fork_and_export(tmp_path):
    landed = kill_fork_and_export(tmp_path, fork_kills=4, export_kills=10, rng_seed=22, n=12, sources=4)
    print(f"\nSOAK crash fork+export: {landed}")
    assert landed["fork"]["mid-run"] + landed["fork"]["by time"] >= 8, landed
    assert landed["export"]["mid-write"] >= 3 and landed["export"]["by time"] >= 3, landed


def test_forks_are_created_all_or_none(tmp_path, monkeypatch):
    """A failure (or kill) while creating fork 2 of 3 leaves no fork at all, not one."""
    import dialogforge.runs.fork as fork_module

    db = tmp_path / "run.db"
    source = small_run(db, n=1, max_turns=6, max_tasks=2)[0]
    point = _fork_point(db, source)
    before = manifest_rows(db)
    real, calls = fork_module._put_fork_point, []

    def dies_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a signal does mid-transaction
        return real(*args, **kwargs)

    monkeypatch.setattr(fork_module, "_put_fork_point", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        fork_trajectory(db, source, point, FORKS, run=False)
    assert manifest_rows(db) == before and _forks_of(db, source) == []
    assert all(thread_rows(db, f"{source}-f{k}")[0] == [] for k in (1, 2, 3))
    monkeypatch.setattr(fork_module, "_put_fork_point", real)
    assert len(fork_trajectory(db, source, point, FORKS, run=False).thread_ids) == FORKS
    assert [r["thread_id"] for r in _forks_of(db, source)] == [f"{source}-f{k}" for k in (1, 2, 3)]


def _branch_command(db: Path, thread: str, point: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.branching", str(db), thread, point]


def kill_branch_in_place(tmp_path: Path, *, kills: int, rng_seed: int) -> dict[str, int]:
    """Kill -9 a LangGraph replay running inside a generated thread; between kills, everything
    reads back, and ``resume`` (once the branch exists) or the replay again (before) goes on.
    The thread ends as an uninterrupted branch does, its first line untouched."""
    base = tmp_path / "base.db"
    thread = small_run(base, n=1, seed=rng_seed, max_turns=12, max_tasks=3)[0]
    point = _fork_point(base, thread)
    first_end = states(base, [thread])[0]
    reference_db, killed_db = tmp_path / "reference.db", tmp_path / "killed.db"
    shutil.copy(base, reference_db)
    shutil.copy(base, killed_db)
    subprocess.run(_branch_command(reference_db, thread, point), cwd=REPO, env=_env(), check=True, timeout=300)
    reference = states(reference_db, [thread])[0]
    rng = random.Random(rng_seed)
    landed = {"mid-run": 0, "by time": 0, "finished": 0}
    for _ in range(kills):
        branched = len(history(killed_db, thread)) > len(history(base, thread))
        command = _cli("resume", "--db", str(killed_db), "--quiet") if branched else _branch_command(killed_db, thread, point)
        proc = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        landed[kill_at_random(proc, killed_db, rng, by_time=0.3, seconds=(0.3, 2.0), checkpoints=30)] += 1
        assert integrity(killed_db) == "ok"
        rows = manifest_rows(killed_db)
        assert [r["thread_id"] for r in rows] == [thread]
        entries = history(killed_db, thread)  # every branch reads back
        assert {e.checkpoint_id for e in history(base, thread)} <= {e.checkpoint_id for e in entries}
        leaves = [e.ends for e in entries if e.ends]
        for leaf_state in states(killed_db, leaves):
            assert dialogue_problem(leaf_state.messages, finished=False) is None
    if len(history(killed_db, thread)) == len(history(base, thread)):
        subprocess.run(_branch_command(killed_db, thread, point), cwd=REPO, env=_env(), check=True, timeout=300)
    done = subprocess.run(_cli("resume", "--db", str(killed_db), "--quiet"), cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    head, = states(killed_db, [thread])
    assert head.model_dump_json() == reference.model_dump_json(), "the resumed branch differs from an uninterrupted one"
    old_leaf = next(e.ends for e in history(killed_db, thread) if e.ends and e.ends != thread
                    and e.messages == len(first_end.messages) and e.step == history(base, thread)[-1].step)
    assert states(killed_db, [old_leaf])[0].model_dump_json() == first_end.model_dump_json()
    assert manifest_rows(killed_db)[0]["status"] == "done" and integrity(killed_db) == "ok"
    return landed


def test_kill_nine_during_an_in_place_branch_then_resume(tmp_path):
    landed = kill_branch_in_place(tmp_path, kills=3, rng_seed=31)
    print(f"\ncrash in-place branch: {landed}")
    assert landed["mid-run"] + landed["by time"] >= 2, landed


@pytest.mark.soak
def test_soak_kill_nine_during_an_in_place_branch(tmp_path):
    landed = kill_branch_in_place(tmp_path, kills=10, rng_seed=32)
    print(f"\nSOAK crash in-place branch: {landed}")
    assert landed["mid-run"] + landed["by time"] >= 7, landed
