"""``generate --executor ray``: a local Ray cluster (2 CPUs) started here, workers writing one Postgres store.

Every trajectory must land exactly once and equal the same run made by
one local process; a worker killed mid-run (SIGKILL of its process) loses
nothing, whether Ray restarts it or ``resume`` finishes its shard.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import ray

from dialogforge.runs.history import history
from dialogforge.runs.resume import resume_run
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.runs.generate import generate, plan_generation
from dialogforge.runs.ray_run import board_name, run_on_ray
from dialogforge.records import Limits
from dialogforge.cli.main import main as cli_main
from dialogforge.checkpoints.shards import shard_paths
from tests.support.postgres import checkpointed_threads, dialogues, rows

N = 8
SETTINGS = GenerationSettings(n=N, seed=5, concurrency=2, limits=Limits(max_user_turns=6, max_tasks=2))


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def stub():
    with StubServer(lambda r: ScriptedChatModel(), latency_s=0.02) as server:
        yield server


def _models(stub) -> ModelsConfig:
    return ModelsConfig(default=ModelConfig(backend="openai", base_url=stub.base_url))


@pytest.fixture(scope="module")
def reference(stub, tmp_path_factory):
    """The same run by one local process on SQLite."""
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    generate(db, SETTINGS, _models(stub))
    return dialogues(db)


def _assert_exactly_once(db: str, reference: dict[str, str]) -> None:
    landed = rows(db)
    assert len(landed) == N and len({r["thread_id"] for r in landed}) == N
    assert {r["status"] for r in landed} == {"done"}, [(r["thread_id"], r["status"], r["error"]) for r in landed]
    if db.startswith("postgresql://"):
        assert checkpointed_threads(db) == N
    else:  # each trajectory in exactly one shard
        assert sorted(len(rows(path)) for path in shard_paths(db)) == [N // 2, N // 2]
    assert dialogues(db) == reference  # a step lost or run twice would change a dialogue


@pytest.fixture(params=["postgres", "sqlite-shards"])
def store(request, tmp_path):
    """Where the workers write: the shared Postgres database, or one SQLite file each."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "run.db")


def test_cli_two_ray_workers_land_every_trajectory_once(ray_address, stub, reference, pg_url, run_cli_process):
    before = stub.stats()["calls"]
    result = run_cli_process("generate", "--base-url", stub.base_url, "--n", str(N), "--seed", "5", "--concurrency", "2",
                     "--max-turns", "6", "--max-tasks", "2", "--db", pg_url,
                     "--executor", "ray", "--ray-address", ray_address, "--workers", "2", "--progress-interval", "0.5")
    assert result.code == 0, result.err
    assert f"{N} done, 0 failed" in result.out
    assert "workers 2 " in result.err and f"done {N}/{N}" in result.err  # progress summed over both workers
    assert stub.stats()["calls"] > before
    _assert_exactly_once(pg_url, reference)


def _kill_one_worker_mid_run(url: str, run_id: str, thread: threading.Thread) -> int:
    """SIGKILL worker 0's process once it has finished some of its trajectories but not all
    (its own counters on the progress board: a SQLite shard's manifest is read by snapshot)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and thread.is_alive():
        try:
            board = ray.get_actor(board_name(run_id))
        except ValueError:  # not created yet
            time.sleep(0.05)
            continue
        counters, pids = ray.get(board.read.remote())
        mine = counters.get(0, {})
        if 0 in pids and 0 < mine.get("done", 0) < mine.get("total", 0):
            os.kill(pids[0], signal.SIGKILL)
            return pids[0]
        time.sleep(0.02)
    raise AssertionError("the run finished before a worker could be killed mid-run")


def _run_and_kill(url: str, stub, max_restarts: int):
    plan = plan_generation(url, SETTINGS, _models(stub), shards=None if url.startswith("postgresql://") else 2)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run_on_ray(
        url, plan, _models(stub), workers=2, max_restarts=max_restarts)))
    thread.start()
    _kill_one_worker_mid_run(url, plan.run_id, thread)
    thread.join(timeout=120)
    assert not thread.is_alive()
    return outcome["result"]


def test_killed_worker_then_resume_loses_and_duplicates_nothing(ray_address, stub, reference, store):
    result = _run_and_kill(store, stub, max_restarts=0)
    assert result.lost_shards == [0] and result.unfinished > 0
    assert result.summary.done == N - result.unfinished and result.summary.failed == 0
    unfinished = [r for r in rows(store) if r["status"] != "done"]
    assert unfinished and all(r["thread_id"].rsplit("-", 1)[1] in {f"{i:05d}" for i in range(0, N, 2)}
                              for r in unfinished)  # only the dead worker's shard
    resumed = resume_run(store)  # the recorded models config points at the stub
    assert resumed.summary.done == len(unfinished) and resumed.summary.failed == 0
    _assert_exactly_once(store, reference)


def test_killed_worker_is_restarted_by_ray_and_finishes_its_shard(ray_address, stub, reference, pg_url):
    result = _run_and_kill(pg_url, stub, max_restarts=1)
    assert result.lost_shards == [] and result.unfinished == 0
    assert (result.summary.done, result.summary.failed) == (N, 0)  # the dead incarnation's finished rows count too
    _assert_exactly_once(pg_url, reference)


def test_cli_sqlite_shards_read_back_as_one_dataset(ray_address, stub, reference, tmp_path, run_cli_process):
    db = str(tmp_path / "run.db")
    result = run_cli_process("generate", "--base-url", stub.base_url, "--n", str(N), "--seed", "5", "--concurrency", "2",
                     "--max-turns", "6", "--max-tasks", "2", "--db", db, "--quiet",
                     "--executor", "ray", "--ray-address", ray_address, "--workers", "2")
    assert result.code == 0, result.err
    assert [p.name for p in shard_paths(db)] == ["shard-000.db", "shard-001.db"] and not Path(db).exists()
    _assert_exactly_once(db, reference)
    listed = run_cli_process("list", "--db", db, "--json").json()
    assert sorted(r["thread_id"] for r in listed) == sorted(r["thread_id"] for r in rows(db))
    out = tmp_path / "out.jsonl"
    assert run_cli_process("export", "--db", db, "--format", "openai", "--out", str(out)).code == 0
    assert out.read_text().count("\n") == N
    source = rows(shard_paths(db)[1])[0]["thread_id"]  # in the second shard
    point = [e for e in history(db, source) if e.next and e.step > 3][2]
    forked = run_cli_process("fork", source, "--db", db, "--checkpoint", point.checkpoint_id, "--n", "1", "--quiet")
    assert forked.code == 0, forked.err
    fork_row = next(r for r in rows(shard_paths(db)[1]) if r["parent_thread_id"] == source)  # beside its source
    assert fork_row["status"] == "done" and len(rows(db)) == N + 1
    assert resume_run(db).thread_ids == []  # nothing unfinished in any shard


def _cli_error(capsys, *args: str) -> str:
    """``dialogforge ARGS`` in this process (these fail before any work): its one error line."""
    assert cli_main(list(args)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dialogforge: error: "), lines
    return lines[0]


def test_ray_executor_bad_setups_are_one_line_and_write_nothing(tmp_path, pg_url, capsys, monkeypatch):
    args = ["generate", "--backend", "scripted", "--n", "2", "--executor", "ray"]
    (tmp_path / "single.db").write_bytes(b"")
    line = _cli_error(capsys, *args, "--db", str(tmp_path / "single.db"))
    assert "is a single-file database" in line and not (tmp_path / "single.db.shards").exists()
    assert "cannot reach the Ray head node" in _cli_error(capsys, *args, "--db", pg_url, "--ray-address", "127.0.0.1:1")
    assert "--workers needs --executor ray" in _cli_error(capsys, "generate", "--backend", "scripted", "--workers", "3",
                                                          "--db", pg_url)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    assert "needs Ray: pip install 'ray>=2.50,<3'" in _cli_error(capsys, *args, "--db", pg_url)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('dialogforge_runs')").fetchone()[0] is None
