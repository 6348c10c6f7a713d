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
from tests.support.wire import context_of, schema_name, stub_models


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


def _sampler_requests(requests: list[dict]) -> list[dict]:
    return [body for body in requests if schema_name(body) == "SampledPersonas"]


def test_the_persona_sampler_request_on_the_wire(tmp_path):
    """What the persona_sampler role sends an OpenAI-compatible server (the stub server, over HTTP): its own
    prompt, the run's domains, how many it still needs, the language, and a seed; then the run uses its answer."""
    from dialogforge.runs.generate import generate
    from dialogforge.testing.scripted_model import ScriptedChatModel
    from dialogforge.testing.stub_server import StubServer

    db = tmp_path / "run.db"
    settings = GenerationSettings(n=3, seed=6, sample_personas=3, language="de", domains=["parcel tracking"])
    with StubServer(lambda body: ScriptedChatModel(), record_requests=True) as server:
        generate(db, settings, stub_models(server.base_url))
    sent = _sampler_requests(server.requests)
    assert len(sent) == 1  # three personas fit in one call
    body = sent[0]
    system = next(m["content"] for m in body["messages"] if m["role"] == "system")
    assert system.startswith("You invent the people who will talk to an AI assistant")
    assert context_of(body) == {"domains": ["parcel tracking"], "count": 3, "language": "de", "already_have": []}
    assert isinstance(body.get("seed"), int)
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["personas"] and schema["properties"]["personas"]["maxItems"] == 20
    recorded = recorded_run_config(db)
    assert len(recorded["settings"]["personas"]) == 3
    assert {r["persona"] for r in manifest_rows(db)} == set(recorded["settings"]["personas"])
    assert recorded["persona_sampling"]["usage"]["calls"] == 1 and recorded["persona_sampling"]["usage"]["prompt"] > 0
    users = [b for b in server.requests if schema_name(b) == "UserTurn"]
    told = {p for b in users for p in recorded["settings"]["personas"]
            if any(f"You are: {p}" in m["content"] for m in b["messages"] if m["role"] == "system")}
    assert users and told == set(recorded["settings"]["personas"])  # each dealt persona reached the user simulator


def test_a_server_that_refuses_the_sampler_stops_the_run_before_anything_is_written(run_cli, tmp_path):
    from dialogforge.testing.faults import FaultKind
    from dialogforge.testing.scripted_model import ScriptedChatModel
    from dialogforge.testing.stub_server import StubServer

    db = tmp_path / "run.db"
    config = tmp_path / "stub.toml"
    with StubServer(lambda body: ScriptedChatModel(), record_requests=True) as server:
        config.write_text(f'[models.default]\nbackend = "openai"\nbase_url = "{server.base_url}"\n'
                          'model = "scripted"\nmax_retries = 1\n')
        server.fail_next(FaultKind.SERVER_ERROR, 10, when=lambda body: schema_name(body) == "SampledPersonas")
        result = run_cli("generate", "--config", str(config), "--personas", "2", "--n", "2", "--db", str(db))
    assert result.code == 2, result.err
    assert result.err.startswith("dialogforge: error: persona sampling failed:") and result.err.count("\n") == 1
    assert len(_sampler_requests(server.requests)) == 2  # the call and its one retry
    assert [b for b in server.requests if schema_name(b) != "SampledPersonas"] == []  # nothing else was asked
    assert not manifest_started(db)
