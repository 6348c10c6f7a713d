"""Statistics match hand-computed values on a fixed small run; the report renders."""

from __future__ import annotations

import pytest

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from tests.support.dataset import ORDER_TOOL, calls, good_state, reply, result, stopped_mid_task, store_states, task, task_mode_state, user
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.dataset.report import write_report
from dialogforge.dataset.stats import collect_stats
from dialogforge.dataset.validate import validate
from dialogforge.runs.generate import generate
from dialogforge.records import SqlBinding, SqlKind, TokenUsage, ToolCall

approx = lambda value: pytest.approx(value, abs=0.005)  # noqa: E731 -- stats round to two decimals


def two_task_state():
    """User mode, two tasks, 15 turns, steps [0, 3, 1], 2500 tokens."""
    base = good_state(seed=2)
    lookup = ToolCall(id="call_b2", name="get_order", arguments={"order_id": "B2"})
    messages = [*base.messages[:-1], user("Also, where is order B2?", 1), calls(lookup, task_index=1),
                result(lookup, {"order_id": "B2", "status": "packed"}, task_index=1), reply("B2 is packed.", task_index=1),
                user("Thanks!", 1)]
    counters = base.counters.model_copy(update={"step_counts": [0, 3, 1], "usage": {"agent": TokenUsage(prompt=2000, completion=500)}})
    return base.model_copy(update={"messages": messages, "tasks": [task(), task("Check order B2.")], "counters": counters})


def sql_state():
    """User mode over SQL tools, stopped at a cap before its task completed: steps [1, 2], 10 turns, 1450 tokens."""
    base = stopped_mid_task(good_state(seed=4))
    sql_tool = ORDER_TOOL.model_copy(update={"sql": SqlBinding(kind=SqlKind.SELECT, statement="SELECT * FROM orders WHERE id = :order_id")})
    return base.model_copy(update={"tools": [sql_tool, base.tools[1]]})


@pytest.fixture
def fixed_db(tmp_path):
    db = tmp_path / "fixed.db"
    store_states(db, {"a": good_state(), "b": two_task_state(), "c": task_mode_state(), "d": sql_state()},
                 run_config={"settings": {"seed": 1, "tools_file": "/data/bfcl_tools.json"}, "models": {}})
    return db


def test_table_one_matches_hand_computed_values(fixed_db):
    stats = collect_stats(fixed_db)
    groups = {(g.mode, g.source): g.as_dict() for g in stats.groups}
    assert set(groups) == {("user", "synthesized"), ("user", "sql"), ("task", "bfcl_tools.json")}
    synthesized = groups[("user", "synthesized")]  # a and b
    assert synthesized["samples"] == 2
    assert synthesized["step"] == {"mean": approx(7 / 5), "max": 3, "n": 5}  # [1, 2] + [0, 3, 1]
    assert synthesized["turn"] == {"mean": approx(13.0), "max": 15, "n": 2}  # 11 and 15 messages
    assert synthesized["task"] == {"mean": approx(1.5), "max": 2, "n": 2}
    assert synthesized["tokens"] == {"mean": approx(1975.0), "max": 2500, "n": 2}  # 1450 and 2500
    assert synthesized["pipeline"] == "user-oriented"
    task_mode = groups[("task", "bfcl_tools.json")]
    assert (task_mode["pipeline"], task_mode["step"]["mean"], task_mode["turn"]["max"], task_mode["tokens"]["max"]) == ("task-oriented", 1.0, 4, 340)
    sql = groups[("user", "sql")]
    assert (sql["step"]["mean"], sql["step"]["max"], sql["turn"]["mean"], sql["task"]["mean"]) == (1.5, 2, 10.0, 1.0)
    overall = stats.overall.as_dict()
    assert overall["samples"] == 4
    assert overall["step"] == {"mean": approx(11 / 8), "max": 3, "n": 8}
    assert overall["turn"] == {"mean": approx(40 / 4), "max": 15, "n": 4}
    assert overall["task"] == {"mean": approx(5 / 4), "max": 2, "n": 4}
    assert overall["tokens"] == {"mean": approx(5740 / 4), "max": 2500, "n": 4}
    assert stats.tokens_by_role == {"agent": approx((1000 + 2500 + 340 + 1000) / 4), "user_simulator": approx(450 * 2 / 4)}


def test_validity_rate_and_failure_reasons(fixed_db):
    assert collect_stats(fixed_db).validity["validated"] == 0
    validate(fixed_db)
    stats = collect_stats(fixed_db)
    assert stats.validity["validated"] == 4 and stats.validity["valid"] == 3
    assert stats.validity["validity_rate"] == 0.75 and stats.validity["usable_rate"] == 0.75
    assert stats.failure_reasons == {"stopped_at_cap": 1, "task_not_completed": 1}
    only_valid = collect_stats(fixed_db, valid_only=True)
    assert only_valid.overall.samples == 3 and {g.source for g in only_valid.groups} == {"synthesized", "bfcl_tools.json"}


def test_cli_stats_agree_with_a_recount_of_a_scripted_run(tmp_path, run_cli):
    db = tmp_path / "s.db"
    generate(db, GenerationSettings(n=4, seed=9), ModelsConfig(default=ModelConfig(backend="scripted")))
    result = run_cli("stats", "--db", str(db), "--json")
    assert result.code == 0, result.err
    overall = result.json()["overall"]
    manifest = Manifest(db)
    states = [load_state(db, row["thread_id"]) for row in manifest.rows()]
    manifest.close()
    steps = [n for s in states for n in s.counters.step_counts]
    turns = [sum(1 for m in s.messages if m.role != "system") for s in states]
    assert overall["step"] == {"mean": approx(sum(steps) / len(steps)), "max": max(steps), "n": len(steps)}
    assert overall["turn"] == {"mean": approx(sum(turns) / len(turns)), "max": max(turns), "n": 4}
    assert overall["task"]["max"] == max(len(s.tasks) for s in states)
    assert result.json()["trajectories"]["done"] == 4


def test_the_report_renders(fixed_db, tmp_path):
    from PIL import Image

    validate(fixed_db)
    report = write_report(collect_stats(fixed_db), tmp_path / "report")
    text = report.read_text()
    assert "| user-oriented | synthesized | 1.40 (3) | 13.00 (15) | 1.50 (2) | 2 |" in text
    assert "stopped_at_cap" in text
    for name in ("step", "turn", "task", "tokens"):
        png = tmp_path / "report" / f"{name}_hist.png"
        assert f"]({png.name})" in text
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG" and image.size == (700, 400)


def test_stats_cli_errors(fixed_db, tmp_path, run_cli):
    missing = run_cli("stats", "--db", str(tmp_path / "nope.db"))
    assert missing.code == 2 and missing.err.count("\n") == 1 and "no such database" in missing.err
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    bad_report = run_cli("stats", "--db", str(fixed_db), "--report", str(blocker))
    assert bad_report.code == 2 and "not a directory" in bad_report.err and bad_report.out == ""
    ok = run_cli("stats", "--db", str(fixed_db), "--report", str(tmp_path / "r"))
    assert ok.code == 0 and "user-oriented" in ok.out and (tmp_path / "r" / "report.md").exists()


def test_tool_errors_are_counted_by_kind_from_the_cli_flag_to_the_stats(tmp_path, run_cli):
    db = tmp_path / "e.db"
    made = run_cli("generate", "--backend", "scripted", "--n", "6", "--seed", "4", "--tool-error-rate", "0.3",
                   "--max-result-chars", "4000", "--db", str(db), "--quiet")
    assert made.code == 0, made.err
    stats = run_cli("stats", "--db", str(db), "--json")
    assert stats.code == 0, stats.err
    errors = stats.json()["tool_errors"]
    manifest = Manifest(db)
    states = [load_state(db, row["thread_id"]) for row in manifest.rows()]
    manifest.close()
    assert all(s.simulation.tool_error_rate == 0.3 and s.simulation.max_result_chars == 4000 for s in states)
    flagged = [m for s in states for m in s.messages if m.role == "tool" and m.is_error]
    assert errors["errors"] == len(flagged) and errors["calls"] == sum(s.counters.tool_calls for s in states)
    assert sum(errors["by_kind"].values()) == len(flagged) and errors["by_kind"]["unavailable"] > 0
    assert "tool errors:" in run_cli("stats", "--db", str(db)).out
    bad = run_cli("generate", "--backend", "scripted", "--tool-error-rate", "0.8", "--db", str(tmp_path / "bad.db"))
    assert bad.code == 2 and "tool_error_rate" in bad.err and not (tmp_path / "bad.db").exists()
