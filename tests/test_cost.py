"""Cost: token counts times the configured prices, per trajectory and role, the same before and after a
kill -9 and resume; --budget-usd stops starting new trajectories and lets in-flight ones finish."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, Price
from dialogforge.pricing import Pricing, usage_cost
from dialogforge.records import Limits, TokenUsage
from dialogforge.runs.generate import generate
from dialogforge.runs.reading import load_state
from tests.support.checkpoints import manifest_rows, recorded_run_config
from tests.support.kills import kill_at_random, manifest_started
from tests.support.paths import REPO

PRICE = Price(input=3.0, cached_input=0.75, output=15.0)
CONFIG = """
[models.default]
backend = "scripted"
[models.roles.judge]
model = "judge-model"
[models.prices.default]
input = 3.0
cached_input = 0.75
output = 15.0
[models.prices.judge-model]
input = 1.0
output = 2.0
"""


@pytest.fixture
def priced(tmp_path) -> Path:
    path = tmp_path / "priced.toml"
    path.write_text(CONFIG)
    return path


def priced_models() -> ModelsConfig:
    return ModelsConfig(default=ModelConfig(backend="scripted"), roles={"judge": {"model": "judge-model"}},
                        prices={"default": PRICE, "judge-model": Price(input=1.0, output=2.0)})


def by_hand(usage: dict[str, TokenUsage]) -> float:
    """Token counts times prices, written out: uncached prompt, cached prompt, completion."""
    return sum(((u.prompt - u.cached) * 3.0 + u.cached * 0.75 + u.completion * 15.0) / 1e6 for u in usage.values())


def test_a_price_covers_uncached_and_cached_prompt_tokens_and_output():
    usage = TokenUsage(prompt=1_000_000, cached=400_000, completion=200_000, reasoning=50_000)
    assert usage_cost(usage, PRICE) == pytest.approx(0.6 * 3.0 + 0.4 * 0.75 + 0.2 * 15.0)
    assert usage_cost(usage, Price(input=3.0, output=15.0)) == pytest.approx(3.0 + 3.0)  # cached at the input price
    pricing = Pricing.from_models(priced_models())
    assert pricing.by_role["judge"].input == 1.0 and pricing.by_role["agent"] == PRICE


def test_an_unpriced_model_is_refused_in_one_line(run_cli, tmp_path):
    config = tmp_path / "half.toml"
    config.write_text(CONFIG.replace("[models.prices.judge-model]\ninput = 1.0\noutput = 2.0\n", ""))
    db = tmp_path / "run.db"
    result = run_cli("generate", "--config", str(config), "--n", "1", "--db", str(db))
    assert result.code == 2 and "no price for model 'judge-model' (used by judge)" in result.err
    assert not db.exists()


def test_a_budget_without_prices_is_refused_before_anything_is_written(run_cli, tmp_path):
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--n", "2", "--budget-usd", "1", "--db", str(db))
    assert result.code == 2 and "--budget-usd needs the price of every model" in result.err
    assert not db.exists()


def check_costs(db: Path) -> dict[str, tuple[dict, float]]:
    """Every finished row's cost equals its final checkpoint's token counts times the prices; per thread
    (tokens per role, cost)."""
    seen = {}
    for row in manifest_rows(db):
        if row["status"] not in ("done", "failed"):
            continue
        state = load_state(db, row["thread_id"])
        usage = state.counters.usage
        recorded = json.loads(row["usage"])
        assert {role: {k: v for k, v in r.items() if k != "cost_usd"} for role, r in recorded.items()} == \
            {role: u.model_dump() for role, u in usage.items()}, row["thread_id"]
        assert row["cost_usd"] == pytest.approx(by_hand(usage), rel=1e-9), row["thread_id"]
        assert sum(r["cost_usd"] for r in recorded.values()) == pytest.approx(row["cost_usd"], rel=1e-9)
        assert row["tokens"] == sum(u.total for u in usage.values())
        seen[row["thread_id"]] = ({role: u.model_dump() for role, u in usage.items()}, row["cost_usd"])
    return seen


def test_cost_per_trajectory_and_role_in_the_manifest_list_show_and_stats(run_cli, priced, tmp_path):
    db = tmp_path / "run.db"
    result = run_cli("generate", "--config", str(priced), "--n", "4", "--seed", "3", "--max-turns", "6",
                     "--max-tasks", "2", "--personas", "2", "--db", str(db), "--quiet", "--no-show")
    assert result.code == 0, result.err
    costs = check_costs(db)
    assert len(costs) == 4 and all(cost > 0 for _, cost in costs.values())
    assert any(u["cached"] for usage, _ in costs.values() for u in usage.values())  # cached tokens priced apart

    listed = run_cli("list", "--db", str(db), "--json").json()
    assert all(r["cost_usd"] == costs[r["thread_id"]][1] and r["usage"]["agent"]["cost_usd"] > 0 for r in listed)
    table = run_cli("list", "--db", str(db)).out
    assert f"${costs[listed[0]['thread_id']][1]:.4f}" in table

    shown = run_cli("show", listed[0]["thread_id"], "--db", str(db)).out
    assert f"= ${costs[listed[0]['thread_id']][1]:.4f} (agent" in shown

    stats = run_cli("stats", "--db", str(db), "--json").json()["cost"]
    config = recorded_run_config(db)
    sampling = config["persona_sampling"]["usage"]
    sampling_cost = by_hand({"persona_sampler": TokenUsage.model_validate(sampling)})
    assert sampling["calls"] >= 1 and stats["persona_sampling_usd"] == pytest.approx(sampling_cost, abs=1e-6)
    assert stats["spent_usd"] == pytest.approx(sum(c for _, c in costs.values()) + sampling_cost, abs=1e-5)
    assert stats["per_trajectory_usd"]["max"] == pytest.approx(max(c for _, c in costs.values()), abs=1e-6)
    assert "cost: $" in run_cli("stats", "--db", str(db)).out


def _command(db: Path, config: Path) -> list[str]:
    if manifest_started(db):
        return [sys.executable, "-m", "dialogforge.cli", "resume", "--db", str(db), "--quiet"]
    return [sys.executable, "-m", "dialogforge.cli", "generate", "--config", str(config), "--db", str(db), "--quiet",
            "--no-show", "--n", "8", "--seed", "5", "--concurrency", "3", "--max-turns", "12", "--max-tasks", "3"]


def test_cost_sums_survive_kill_nine_and_resume_without_double_counting(priced, tmp_path):
    reference = tmp_path / "reference.db"
    settings = GenerationSettings(n=8, seed=5, concurrency=3, limits=Limits(max_user_turns=12, max_tasks=3))
    generate(reference, settings, priced_models())
    clean = check_costs(reference)

    db = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(22)
    landed = []
    for _ in range(5):
        proc = subprocess.Popen(_command(db, priced), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        landed.append(kill_at_random(proc, db, rng, by_time=0.0, checkpoints=40))
        if manifest_started(db):
            check_costs(db)  # before the resume: what finished is already priced right
    final = subprocess.run(_command(db, priced), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert landed.count("mid-run") >= 3, landed
    after = check_costs(db)
    assert len(after) == 8
    # the scripted model is deterministic: a call counted twice, or lost, would show as a difference
    assert sorted(after.values(), key=repr) == sorted(clean.values(), key=repr)


def test_budget_stops_new_trajectories_and_resume_raises_it(run_cli, priced, tmp_path):
    db = tmp_path / "run.db"
    probe = tmp_path / "probe.db"
    assert run_cli("generate", "--config", str(priced), "--n", "1", "--seed", "9", "--max-turns", "4", "--max-tasks", "1",
                   "--db", str(probe), "--quiet", "--no-show").code == 0
    one = next(iter(check_costs(probe).values()))[1]
    budget = f"{one * 1.5:.6f}"  # reached during the second trajectory
    args = ("--n", "6", "--seed", "9", "--max-turns", "4", "--max-tasks", "1", "--concurrency", "1", "--quiet", "--no-show")
    result = run_cli("generate", "--config", str(priced), "--budget-usd", budget, "--db", str(db), *args)
    assert result.code == 0, result.err
    assert "budget reached: " in result.out and "not started (still pending)" in result.out
    statuses = [r["status"] for r in manifest_rows(db)]
    finished = [s for s in statuses if s in ("done", "failed")]
    assert 2 <= len(finished) < 6 and statuses.count("pending") == 6 - len(finished)
    spent = sum(c for _, c in check_costs(db).values())
    assert spent >= float(budget)  # it stopped only once the budget was reached ...
    assert spent - max(c for _, c in check_costs(db).values()) < float(budget)  # ... and started nothing after

    again = run_cli("resume", "--db", str(db), "--quiet")
    assert again.code == 0 and [r["status"] for r in manifest_rows(db)].count("pending") == 6 - len(finished)
    raised = run_cli("resume", "--db", str(db), "--quiet", "--budget-usd", "100")
    assert raised.code == 0, raised.err
    assert {r["status"] for r in manifest_rows(db)} <= {"done", "failed"}
    assert "spent $" in raised.out


def wire_models(base_url: str) -> ModelsConfig:
    return ModelsConfig(default=ModelConfig(backend="openai", base_url=base_url, model="scripted", max_retries=1),
                        prices={"scripted": PRICE})


def test_prices_apply_to_the_counts_a_server_reports_and_a_budget_lets_in_flight_trajectories_finish(tmp_path):
    """Over HTTP (the stub server): usage.prompt_tokens_details.cached_tokens is read and priced apart; with
    three trajectories in flight when the budget is reached, each of them finishes and no new one starts."""
    from dialogforge.testing.scripted_model import ScriptedChatModel
    from dialogforge.testing.stub_server import StubServer

    limits = Limits(max_user_turns=4, max_tasks=1)
    with StubServer(lambda body: ScriptedChatModel()) as server:
        probe = tmp_path / "probe.db"
        generate(probe, GenerationSettings(n=1, seed=9, limits=limits), wire_models(server.base_url))
        (usage, one), = check_costs(probe).values()
        assert all(0 < u["cached"] < u["prompt"] for u in usage.values())  # the server's cache count, priced apart
        db = tmp_path / "run.db"
        settings = GenerationSettings(n=9, seed=9, concurrency=3, limits=limits, budget_usd=round(one * 1.2, 6))
        result = generate(db, settings, wire_models(server.base_url))
    statuses = [r["status"] for r in manifest_rows(db)]
    assert "running" not in statuses  # what was in flight when the budget was reached ran to its end
    finished = [s for s in statuses if s in ("done", "failed")]
    assert len(finished) >= 3 and statuses.count("pending") == 9 - len(finished) >= 1
    assert result.summary.not_started == statuses.count("pending")
    spent = sum(c for _, c in check_costs(db).values())
    assert spent >= settings.budget_usd and result.summary.spent_usd == pytest.approx(spent, rel=1e-9)


def test_the_answers_of_a_call_that_failed_for_good_are_charged(tmp_path):
    """A task proposer whose every answer is invalid (the stub server answers "{}" over HTTP): the trajectory
    fails, and the answers it was sent (and paid for) are in its tokens and its cost, those of the
    first-task proposal at planning too."""
    from dialogforge.testing.faults import FaultKind
    from dialogforge.testing.scripted_model import ScriptedChatModel
    from dialogforge.testing.stub_server import StubServer
    from tests.support.wire import schema_name

    db = tmp_path / "run.db"
    with StubServer(lambda body: ScriptedChatModel(), record_requests=True) as server:
        server.fail_next(FaultKind.SCHEMA_INVALID, 10, when=lambda body: schema_name(body) == "ProposedTask")
        generate(db, GenerationSettings(n=1, seed=2, limits=Limits(max_user_turns=4, max_tasks=1)),
                 wire_models(server.base_url))
    asked = [b for b in server.requests if schema_name(b) == "ProposedTask"]
    assert len(asked) == 6  # three while planning (the first task of a library), three in the run: 1 + 2 retries each
    (row,) = manifest_rows(db)
    assert row["status"] == "failed" and "invalid ProposedTask output after 3 attempts" in row["error"]
    (usage, cost), = check_costs(db).values()  # the row's tokens and cost are its checkpoint's, priced
    assert usage["task_proposer"]["calls"] == 6 and usage["task_proposer"]["prompt"] > 0 and cost > 0
