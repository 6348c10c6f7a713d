"""``dialogforge resume``: unfinished trajectories continue with their run's recorded configuration."""

from __future__ import annotations

import json
import sqlite3

from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
from dialogforge.runs.resume import ModelOverrides, plan_resume
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, config_hash
from dialogforge.runs.planning import initial_state
from dialogforge.records import Limits
from tests.support.checkpoints import (
    counters_problem,
    dialogue_problem,
    manifest_rows,
    small_run,
    states,
    thread_rows,
)

UNREACHABLE = ModelsConfig(default=ModelConfig(backend="openai", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=2))


def _record_pending_run(db, run_id: str, models: ModelsConfig, n: int = 2) -> list[str]:
    """A run recorded (config and rows) but never started, as a kill right after planning leaves it."""
    settings = GenerationSettings(n=n, seed=21, limits=Limits(max_user_turns=6))
    planned = [
        PlannedTrajectory(thread_id=f"{run_id}-{i:05d}", run_id=run_id, seed=s.seed, mode=s.mode.value,
                          domain=s.scenario.domain, config_hash=config_hash(settings, models),
                          initial_state=s.model_dump_json(exclude={"tools"}))
        for i, s in enumerate(initial_state(settings, i, []) for i in range(n))
    ]
    manifest = Manifest(db, create=True)
    try:
        manifest.record_run_and_planned(run_id, {
            "settings": settings.model_dump(mode="json"), "models": models.model_dump(mode="json"), "seed_tools": [],
        }, planned)
    finally:
        manifest.close()
    return [p.thread_id for p in planned]


def test_only_unfinished_trajectories_run_and_finished_ones_stay_byte_for_byte(tmp_path, run_cli):
    db = tmp_path / "run.db"
    done = small_run(db, n=2, max_turns=5)
    before = {t: thread_rows(db, t) for t in done}
    pending = _record_pending_run(db, "later", ModelsConfig(default=ModelConfig(backend="scripted")))
    result = run_cli("resume", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    assert "resumed 2 trajectories: 2 done, 0 failed" in result.out
    assert {t: thread_rows(db, t) for t in done} == before
    rows = {r["thread_id"]: r for r in manifest_rows(db)}
    assert all(rows[t]["status"] == "done" for t in pending)
    for state in states(db, pending):
        assert dialogue_problem(state.messages) is None and counters_problem(state) is None
    again = run_cli("resume", "--db", str(db), "--quiet")
    assert again.code == 0 and "nothing to resume" in again.out


def test_recorded_models_are_used_and_flags_override_them(tmp_path, run_cli):
    db = tmp_path / "run.db"
    pending = _record_pending_run(db, "remote", UNREACHABLE)
    plan = plan_resume(db)[0]
    assert plan.models_config.default.base_url == "http://127.0.0.1:9/v1" and plan.concurrency == 8
    refused = run_cli("resume", "--db", str(db), "--quiet")  # the recorded endpoint is down
    assert refused.code == 2 and "127.0.0.1:9" in refused.err
    assert {r["status"] for r in manifest_rows(db)} == {"pending"}
    overridden = plan_resume(db, overrides=ModelOverrides(backend="scripted"), concurrency=3)[0]
    assert overridden.models_config.default.backend == "scripted" and overridden.concurrency == 3
    result = run_cli("resume", "--db", str(db), "--backend", "scripted", "--concurrency", "1", "--quiet")
    assert result.code == 0, result.err
    assert {r["thread_id"]: r["status"] for r in manifest_rows(db)} == {t: "done" for t in pending}


def test_keys_are_never_recorded_only_their_variable_names(tmp_path, run_cli):
    db = tmp_path / "run.db"
    secret = "sk-test-4f9d0c2b-never-store-me"
    result = run_cli("generate", "--backend", "scripted", "--n", "1", "--max-turns", "2", "--db", str(db), "--quiet",
                     env={"OPENAI_API_KEY": secret})
    assert result.code == 0, result.err
    conn = sqlite3.connect(db)
    dump = "\n".join(conn.iterdump())
    config = json.loads(conn.execute("SELECT config FROM run_configs").fetchone()[0])
    conn.close()
    assert secret not in dump
    assert config["models"]["default"]["api_key_env"] == "OPENAI_API_KEY"


def test_a_finished_thread_left_running_is_marked_done_without_new_steps(tmp_path, run_cli):
    """Killed between the last checkpoint and the manifest update: resume only records the end."""
    db = tmp_path / "run.db"
    thread = small_run(db, n=1, max_turns=4)[0]
    checkpoints_before = thread_rows(db, thread)[:3]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET status = 'running', stop_reason = NULL, finished_at = NULL WHERE thread_id = ?", (thread,))
    conn.close()
    result = run_cli("resume", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    assert manifest_rows(db)[0]["status"] == "done"
    assert thread_rows(db, thread)[:3] == checkpoints_before


def test_thread_filter(tmp_path, run_cli):
    db = tmp_path / "run.db"
    pending = _record_pending_run(db, "two", ModelsConfig(default=ModelConfig(backend="scripted")))
    result = run_cli("resume", "--db", str(db), "--thread", pending[1], "--quiet")
    assert result.code == 0 and "resumed 1 trajectories" in result.out
    assert {r["thread_id"]: r["status"] for r in manifest_rows(db)} == {pending[0]: "pending", pending[1]: "done"}
    unknown = run_cli("resume", "--db", str(db), "--thread", "nope")
    assert unknown.code == 2 and "no trajectory 'nope'" in unknown.err
