"""Every fault the stub server injects, through the whole graph.

Two levels. Per fault kind, a one-trajectory run with the fault aimed at a
chosen call: once (it must be absorbed -- retried, or turned into a tool
error -- and the trajectory finishes), and persistently (it must fail the
trajectory with a reason naming the role and the fault, or end at a cap).
Then a CLI run of 200 trajectories against a stub that faults 20% of all
calls at random: it completes, every trajectory ends done or failed with a
precise reason, the counts add up, and a hard timeout catches any hang.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import dialogforge.models.call as call
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, ToolPrep
from dialogforge.testing.faults import TRANSPORT_FAULTS, FaultConfig, FaultKind
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.runs.generate import generate
from dialogforge.records import Limits
from tests.support.checkpoints import counters_problem, dialogue_problem, integrity, manifest_rows, states

# What a trajectory that a fault finally defeats records, per kind (after "<role>: ").
FAILURE_REASONS = {
    FaultKind.TIMEOUT: r"timeout after \d+ attempts",
    FaultKind.RATE_LIMIT: r"HTTP 429: .*rate limit",
    FaultKind.SERVER_ERROR: r"HTTP 500: .*internal server error",
    FaultKind.UNAVAILABLE: r"HTTP 503: .*unavailable",
    FaultKind.CONNECTION_RESET: r"connection error after \d+ attempts: .*reset by peer",
    FaultKind.TRUNCATED_BODY: r"connection error after \d+ attempts: .*(not completed|incomplete|complete message body)",
    FaultKind.MALFORMED_JSON: r"JSONDecodeError after \d+ attempts",
    FaultKind.SCHEMA_INVALID: r"invalid \w+ output after \d+ attempts: .*Field required",
    FaultKind.EMPTY: r"(invalid \w+ output after \d+ attempts: the reply was empty|empty reply)",
    FaultKind.UNKNOWN_TOOL: r"invalid \w+ output after \d+ attempts",
}
ROLES = "task_proposer|tool_synthesizer|user_simulator|agent|tool_simulator|judge"
PRECISE_REASON = re.compile(rf"^({ROLES}): ({'|'.join(FAILURE_REASONS.values())})")
LIMITS = Limits(max_tasks=1, max_user_turns=3, max_tool_steps=8)  # the tool-step cap test counts on 8


def is_agent_call(body: dict) -> bool:
    """The agent's request: it offers tools and asks for no structured output."""
    return bool(body.get("tools")) and not body.get("response_format") and not body.get("tool_choice")


def is_structured_call(body: dict) -> bool:
    """A structured-output role's request (task proposer, user simulator, tool simulator...)."""
    return bool(body.get("response_format"))


@pytest.fixture
def fast_backoff(monkeypatch):
    monkeypatch.setattr(call, "BASE_DELAY_S", 0.01)


def _one_trajectory(tmp_path: Path, server: StubServer | None, tool_prep: ToolPrep = ToolPrep.LIBRARY) -> tuple[dict, object]:
    models = ModelsConfig(default=ModelConfig(backend="scripted")) if server is None else ModelsConfig(
        default=ModelConfig(backend="openai", base_url=server.base_url, timeout_s=0.5, max_retries=1, max_parse_retries=1))
    db = tmp_path / f"run{time.monotonic_ns()}.db"
    generate(db, GenerationSettings(n=1, seed=1, concurrency=1, limits=LIMITS, tool_prep=tool_prep), models)
    (row,) = manifest_rows(db)
    (state,) = states(db, [row["thread_id"]])
    assert integrity(db) == "ok"
    assert dialogue_problem(state.messages, finished=row["status"] == "done") is None
    assert counters_problem(state) is None
    return row, state


def _stub(**faults) -> StubServer:
    return StubServer(lambda r: ScriptedChatModel(), faults=FaultConfig(timeout_hold_s=2.0, retry_after_s=0.01, **faults))


@pytest.fixture(scope="module")
def clean_dialogue(tmp_path_factory) -> str:
    """The trajectory as made through the stub with no fault at all."""
    with _stub() as server:
        row, state = _one_trajectory(tmp_path_factory.mktemp("clean"), server)
    assert row["status"] == "done"
    return state.model_dump_json(include={"messages", "tasks", "tools"})


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_one_fault_on_the_agent_call_is_absorbed(tmp_path, fast_backoff, clean_dialogue, kind):
    with _stub() as server:
        server.fail_next(kind, 1, when=is_agent_call)
        row, state = _one_trajectory(tmp_path, server)
        stats = server.stats()
    assert stats["faults"][kind.value] == 1 and stats["forced_pending"] == 0, stats
    assert row["status"] == "done", row["error"]
    dialogue = state.model_dump_json(include={"messages", "tasks", "tools"})
    if kind in TRANSPORT_FAULTS:
        assert dialogue == clean_dialogue  # retried: nothing of the fault is left in the data
    elif kind is FaultKind.EMPTY:  # asked again (with a nudge): no empty turn is kept
        assert all(m.content or m.tool_calls for m in state.messages if m.role == "assistant")
    else:  # the agent's bad call became a tool error in the dialogue, which went on
        errors = [m for m in state.messages if m.role == "tool" and m.is_error]
        assert errors and state.counters.tool_errors == len(errors)
        if kind is FaultKind.UNKNOWN_TOOL:
            assert "get_unknown_thing" in errors[0].content


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_a_persistent_fault_fails_the_trajectory_with_its_reason(tmp_path, fast_backoff, kind):
    with _stub() as server:
        server.fail_next(kind, 50, when=is_structured_call)  # the tool library's first call (planning), and its retries
        started = time.monotonic()
        row, state = _one_trajectory(tmp_path, server)
        elapsed = time.monotonic() - started
    assert row["status"] == "failed" and row["stop_reason"] == "error"
    assert re.match(rf"tool_synthesizer: ({FAILURE_REASONS[kind]})", row["error"]), row["error"]
    assert "building the tool library for" in row["error"]
    assert PRECISE_REASON.match(row["error"])
    assert state.error == row["error"]
    assert elapsed < 10, "bounded retries, short timeouts: a failure is quick"


@pytest.mark.parametrize("kind", [FaultKind.SERVER_ERROR, FaultKind.SCHEMA_INVALID], ids=lambda k: k.value)
def test_a_persistent_fault_on_per_trajectory_tools_fails_at_the_task_proposer(tmp_path, fast_backoff, kind):
    with _stub() as server:
        server.fail_next(kind, 50, when=is_structured_call)  # the task proposer's first call, and its retries
        started = time.monotonic()
        row, state = _one_trajectory(tmp_path, server, ToolPrep.PER_TRAJECTORY)
        elapsed = time.monotonic() - started
    assert row["status"] == "failed" and row["stop_reason"] == "error"
    assert re.match(rf"task_proposer: ({FAILURE_REASONS[kind]})", row["error"]), row["error"]
    assert PRECISE_REASON.match(row["error"])
    assert state.error == row["error"]
    assert elapsed < 10, "bounded retries, short timeouts: a failure is quick"


@pytest.mark.parametrize("kind", sorted(TRANSPORT_FAULTS | {FaultKind.EMPTY}, key=lambda k: k.value), ids=lambda k: k.value)
def test_a_persistent_fault_on_the_agent_fails_with_the_agents_reason(tmp_path, fast_backoff, kind):
    with _stub() as server:
        server.fail_next(kind, 50, when=is_agent_call)
        row, _ = _one_trajectory(tmp_path, server)
    assert row["status"] == "failed"
    assert re.match(rf"agent: ({FAILURE_REASONS[kind]})", row["error"]), row["error"]


@pytest.mark.parametrize("kind", [FaultKind.UNKNOWN_TOOL, FaultKind.SCHEMA_INVALID], ids=lambda k: k.value)
def test_an_agent_that_keeps_calling_badly_stops_at_the_tool_step_cap(tmp_path, fast_backoff, kind):
    with _stub() as server:
        server.fail_next(kind, 50, when=is_agent_call)
        row, state = _one_trajectory(tmp_path, server)
    assert row["status"] == "done" and row["stop_reason"] == "max_tool_steps"
    assert state.counters.tool_errors == state.counters.tool_calls == LIMITS.max_tool_steps


def fault_run(run_cli, tmp_path: Path, *, n: int, concurrency: int, rate: float = 0.2, seed: int = 3,
              timeout: float = 300) -> dict:
    """``generate --base-url <stub>`` with random faults at ``rate``; returns figures for the checks and the soak report."""
    config = tmp_path / "faulty.toml"
    config.write_text("[models.default]\nbackend = \"openai\"\ntimeout_s = 1.0\nmax_retries = 3\nmax_parse_retries = 2\n")
    db = tmp_path / "faulty.db"
    with _stub(rate=rate, seed=seed) as server:
        started = time.monotonic()
        result = run_cli("generate", "--config", str(config), "--base-url", server.base_url, "--db", str(db), "--quiet",
                         "--n", str(n), "--seed", str(seed), "--concurrency", str(concurrency),
                         "--max-turns", "4", "--max-tasks", "1", timeout=timeout)
        elapsed = time.monotonic() - started
        stats = server.stats()
    assert result.code == 0, result.err
    rows = manifest_rows(db)
    return {"db": db, "rows": rows, "stdout": result.out, "stats": stats, "elapsed_s": round(elapsed, 1), "outcomes": outcomes_of(rows)}


def outcomes_of(rows: list[dict]) -> dict[str, int]:
    """Done by stop reason, failed by role and kind of failure ("failed: agent: HTTP 500")."""
    outcomes: dict[str, int] = {}
    for row in rows:
        if row["status"] == "done":
            key = f"done: {row['stop_reason']}"
        else:
            role, _, rest = row["error"].partition(": ")
            key = f"failed: {role}: {re.split(r' after |: ', rest)[0]}"
        outcomes[key] = outcomes.get(key, 0) + 1
    return dict(sorted(outcomes.items()))


def check_fault_run(run: dict, n: int) -> None:
    rows, stats = run["rows"], run["stats"]
    done = sum(r["status"] == "done" for r in rows)
    failed = sum(r["status"] == "failed" for r in rows)
    assert len(rows) == n and len({r["thread_id"] for r in rows}) == n
    assert done + failed == n, {r["status"] for r in rows}
    assert f": {done} done, {failed} failed" in run["stdout"]
    for row in rows:
        if row["status"] == "failed":
            assert row["stop_reason"] == "error" and PRECISE_REASON.match(row["error"]), row["error"]
        else:
            assert row["stop_reason"] and not row["error"]
    assert all(stats["faults"][k.value] > 0 for k in FaultKind), stats["faults"]
    assert 0.15 <= stats["faults_total"] / stats["calls"] <= 0.25, stats
    assert stats["in_flight"] == 0
    assert integrity(run["db"]) == "ok"
    for row, state in zip(rows, states(run["db"], [r["thread_id"] for r in rows])):
        assert dialogue_problem(state.messages, finished=row["status"] == "done") is None, row["thread_id"]
        assert counters_problem(state) is None, row["thread_id"]


def test_200_trajectories_under_20_percent_faults_all_end_with_a_reason(run_cli, tmp_path, fast_backoff):
    run = fault_run(run_cli, tmp_path, n=200, concurrency=100)
    check_fault_run(run, 200)
    assert run["outcomes"].get("done: completed", 0) > 100, run["outcomes"]  # retries carry most through


@pytest.mark.soak
def test_soak_1000_trajectories_under_20_percent_faults(run_cli, tmp_path):
    run = fault_run(run_cli, tmp_path, n=1000, concurrency=200, seed=17, timeout=1800)
    check_fault_run(run, 1000)
    stats = run["stats"]
    print(f"\nSOAK faults: {1000} trajectories in {run['elapsed_s']} s; {stats['calls']} calls, "
          f"{stats['faults_total']} faults injected: {json.dumps(stats['faults'])}")
    print(f"SOAK faults outcomes: {json.dumps(run['outcomes'])}")


@pytest.mark.soak
def test_soak_kill_nine_under_faults_then_resume(tmp_path):
    """Flaky endpoint and crashes together: kill -9 a faulty run again and again, resume each time."""
    import random
    import subprocess
    import sys

    from tests.support.kills import kill_at_random
    from tests.support.paths import REPO

    n, kills = 120, 10
    config = tmp_path / "faulty.toml"
    config.write_text("[models.default]\nbackend = \"openai\"\ntimeout_s = 1.0\nmax_retries = 3\nmax_parse_retries = 2\n")
    db = tmp_path / "faulty.db"
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(9)
    landed = {"mid-run": 0, "by time": 0, "finished": 0}
    with _stub(rate=0.2, seed=5) as server:
        def command() -> list[str]:
            started = db.exists() and manifest_rows(db)
            verb = ["resume"] if started else ["generate", "--n", str(n), "--seed", "5", "--concurrency", "40",
                                               "--max-turns", "4", "--max-tasks", "1"]
            return [sys.executable, "-m", "dialogforge.cli", *verb, "--config", str(config), "--base-url", server.base_url,
                    "--db", str(db), "--quiet"]

        for _ in range(kills):
            proc = subprocess.Popen(command(), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            landed[kill_at_random(proc, db, rng)] += 1
            assert integrity(db) == "ok"
        final = subprocess.run(command(), cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        stats = server.stats()
    assert final.returncode == 0, final.stderr
    rows = manifest_rows(db)
    assert len(rows) == len({r["thread_id"] for r in rows}) == n
    assert {r["status"] for r in rows} <= {"done", "failed"}
    for row in rows:
        assert row["status"] == "done" or PRECISE_REASON.match(row["error"]), row["error"]
    for row, state in zip(rows, states(db, [r["thread_id"] for r in rows])):
        assert dialogue_problem(state.messages, finished=row["status"] == "done") is None, row["thread_id"]
    outcomes = outcomes_of(rows)
    print(f"\nSOAK kill under faults: {n} trajectories, kills {landed}, {stats['faults_total']} faults "
          f"{json.dumps(stats['faults'])}, outcomes {json.dumps(outcomes)}")
    assert landed["mid-run"] + landed["by time"] >= 6, landed
