"""--personas N: sampled once by the persona_sampler role, stored with the run, dealt evenly, recorded per
trajectory, reported by stats, and reused (never sampled again) when a killed run is resumed."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from dialogforge.config import GenerationSettings, ModelConfig, Role
from dialogforge.models import RoleModel
from dialogforge.runs.personas import PersonaSamplingError, max_calls, sample_personas
from tests.support.builders import scripted_set
from tests.support.checkpoints import manifest_rows, recorded_run_config
from tests.support.kills import kill_at_random, manifest_started
from tests.support.paths import REPO


def test_personas_are_sampled_once_stored_and_dealt_evenly(run_cli, tmp_path):
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--personas", "3", "--n", "7", "--seed", "4",
                     "--max-turns", "4", "--max-tasks", "1", "--db", str(db), "--quiet", "--no-show")
    assert result.code == 0, result.err
    config = recorded_run_config(db)
    personas = config["settings"]["personas"]
    assert len(personas) == 3 == len({p.lower() for p in personas}) and config["settings"]["sample_personas"] == 3
    assert config["persona_sampling"]["count"] == 3 and config["persona_sampling"]["usage"]["calls"] >= 1
    rows = manifest_rows(db)
    used = [r["persona"] for r in rows]
    assert set(used) == set(personas)
    assert sorted(used.count(p) for p in personas) == [2, 2, 3]  # 7 dealt over 3: never 1 before all have 2
    for row in rows:  # each trajectory's own state records the persona it got
        assert json.loads(row["initial_state"])["scenario"]["persona"] == row["persona"]

    usage = run_cli("stats", "--db", str(db), "--json").json()["persona_usage"]
    assert usage["personas"] == 3 and usage["used"] == 3 and usage["sampled_runs"] == 1
    assert usage["min"] >= 1 and usage["evenness"] > 0.95
    assert "personas: 3 of 3 used" in run_cli("stats", "--db", str(db)).out


def test_sampled_and_given_personas_do_not_mix(run_cli, tmp_path):
    result = run_cli("generate", "--backend", "scripted", "--personas", "2", "--persona", "a chef", "--db", str(tmp_path / "r.db"))
    assert result.code == 2 and "not both" in result.err and not (tmp_path / "r.db").exists()


def _command(db) -> list[str]:
    if manifest_started(db):
        return [sys.executable, "-m", "dialogforge.cli", "resume", "--db", str(db), "--quiet"]
    return [sys.executable, "-m", "dialogforge.cli", "generate", "--backend", "scripted", "--personas", "4",
            "--db", str(db), "--quiet", "--no-show", "--n", "10", "--seed", "8", "--concurrency", "3",
            "--max-turns", "10", "--max-tasks", "2"]


def test_a_killed_run_resumes_with_the_personas_it_sampled(tmp_path):
    db = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(3)
    recorded = None
    for _ in range(3):
        proc = subprocess.Popen(_command(db), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        kill_at_random(proc, db, rng, by_time=0.0, checkpoints=30)
        if manifest_started(db):
            config = recorded_run_config(db)
            recorded = recorded or config
            assert config == recorded  # sampled once: a resume never samples or records again
            assert {r["persona"] for r in manifest_rows(db)} <= set(recorded["settings"]["personas"])
    final = subprocess.run(_command(db), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert recorded_run_config(db) == recorded
    rows = manifest_rows(db)
    assert {r["status"] for r in rows} <= {"done", "failed"} and len(rows) == 10
    personas = recorded["settings"]["personas"]
    assert sorted([r["persona"] for r in rows].count(p) for p in personas) == [2, 2, 3, 3]  # 10 dealt over 4


def repeating(text: str) -> RoleModel:
    """A persona sampler that keeps proposing the same persona."""
    reply = AIMessage(json.dumps({"personas": [text, text.upper()]}))
    chat = GenericFakeChatModel(messages=iter([reply] * 50))
    return RoleModel(role=Role.PERSONA_SAMPLER, config=ModelConfig(backend="scripted", max_parse_retries=0), chat=chat)


def test_a_sampler_that_repeats_itself_fails_in_one_line_within_its_calls():
    models = scripted_set()
    models.models[Role.PERSONA_SAMPLER] = repeating("a baker who writes short messages")
    with pytest.raises(PersonaSamplingError) as caught:
        asyncio.run(sample_personas(GenerationSettings(n=2), models, 3))
    message = str(caught.value)
    assert f"gave 1 distinct personas of the 3 asked for in {max_calls(3)} calls" in message and "\n" not in message


def test_a_failed_sampling_writes_nothing(run_cli, tmp_path, monkeypatch):
    from dialogforge.runs import personas

    async def broken(*args, **kwargs):
        raise PersonaSamplingError("persona sampling failed: persona_sampler: server said no")

    monkeypatch.setattr(personas, "sample_personas", broken)
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--personas", "2", "--db", str(db))
    assert result.code == 2 and "persona sampling failed" in result.err
    assert not manifest_started(db)
