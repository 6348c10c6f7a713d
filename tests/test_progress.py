"""The progress display in both modes, checked against what the manifest recorded."""

from __future__ import annotations

import io
import re

from rich.console import Console

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.config import GenerationSettings
from dialogforge.progress import PlainProgress, ProgressTally, RichProgress, make_progress, summary_line
from dialogforge.runs.generate import generate
from dialogforge.records import Counters, Message, TokenUsage, ToolCall

LINE = re.compile(
    r"^\[(?P<clock>\d\d:\d\d:\d\d)\] done (?P<done>\d+)/(?P<total>\d+) failed (?P<failed>\d+) in_flight (?P<in_flight>\d+) "
    r"queued (?P<queued>\d+) interrupted (?P<interrupted>\d+) \| user_turns (?P<user_turns>\d+) tool_calls (?P<tool_calls>\d+) "
    r"llm_calls (?P<llm_calls>\d+) tokens (?P<tokens>\d+) \| calls/s (?P<cps>[\d.]+) tokens/s (?P<tps>\d+) \| eta (?P<eta>[\d:-]+)$"
)


def _totals(db) -> dict[str, int]:
    manifest = Manifest(db)
    try:
        rows = manifest.rows()
    finally:
        manifest.close()
    return {"user_turns": sum(r["user_turns"] for r in rows), "tool_calls": sum(r["tool_calls"] for r in rows),
            "tokens": sum(r["tokens"] for r in rows), "done": sum(r["status"] == "done" for r in rows)}


def test_plain_mode_prints_parseable_lines_that_add_up(tmp_path, run_cli):
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--n", "10", "--seed", "4", "--concurrency", "3",
                     "--db", str(db), "--progress", "plain", "--progress-interval", "0.2")
    assert result.code == 0, result.err
    err = result.err.splitlines()
    notes = [line for line in err if not line.startswith("[")]  # planning says what it prepares, before the run
    assert err[: len(notes)] == notes and all(n.startswith(("tool libraries: ", "planning: ")) for n in notes), result.err
    lines = [LINE.match(line) for line in err[len(notes):]]
    assert lines and all(lines), result.err  # then summary lines and nothing else
    assert len(lines) >= 2  # periodic lines, then the closing one
    values = [{k: v for k, v in m.groupdict().items()} for m in lines]
    for earlier, later in zip(values, values[1:]):
        for key in ("done", "user_turns", "tool_calls", "llm_calls", "tokens"):
            assert int(later[key]) >= int(earlier[key])  # counters only grow
    assert all(int(v["in_flight"]) <= 3 for v in values)
    last = values[-1]
    totals = _totals(db)
    assert (int(last["done"]), int(last["total"]), int(last["in_flight"]), int(last["queued"])) == (10, 10, 0, 0)
    assert int(last["user_turns"]) == totals["user_turns"]
    assert int(last["tool_calls"]) == totals["tool_calls"]
    assert int(last["tokens"]) == totals["tokens"]
    assert int(last["llm_calls"]) > int(last["user_turns"])
    assert "run " in result.out and "10 done" in result.out  # stdout keeps the result summary


def test_quiet_prints_no_progress(tmp_path, run_cli):
    result = run_cli("generate", "--backend", "scripted", "--n", "2", "--seed", "1", "--db", str(tmp_path / "q.db"),
                     "--quiet", "--progress", "plain", "--progress-interval", "0.05")
    assert result.code == 0 and result.err == "", result.err


def test_rich_mode_renders_the_live_panel(tmp_path):
    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=True, width=120, color_system=None), refresh_per_second=20)
    generate(tmp_path / "run.db", GenerationSettings(n=6, seed=2, concurrency=2), _scripted(), progress=progress)
    text = out.getvalue()
    totals = _totals(tmp_path / "run.db")
    final = text[text.rindex("6/6"):]  # the last frame drawn
    assert "100%" in final
    assert "done 6  failed 0  in flight 0  queued 0" in final
    assert f"user turns {totals['user_turns']}  tool calls {totals['tool_calls']}" in final
    assert re.search(r"LLM calls \d+ \([\d.]+/s\)", final)
    assert text.count("trajectories") >= 2  # redrawn live, not printed once


def test_auto_mode_picks_by_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(make_progress("auto", io.StringIO()), PlainProgress)
    assert isinstance(make_progress("auto", Tty()), RichProgress)
    assert make_progress("none") is None


def test_tally_counts_from_updates_without_double_counting_resumed_usage():
    tally = ProgressTally(clock=iter(range(100)).__next__)
    tally.run_started(2)
    tally.trajectory_started("a", resumed=False)
    tally.trajectory_started("b", resumed=True)
    user = Message(role="user", content="hi")
    calls = Message(role="assistant", tool_calls=[ToolCall(id="1", name="f"), ToolCall(id="2", name="g")])
    usage = lambda n: Counters(usage={"agent": TokenUsage(prompt=10 * n, completion=n, calls=n)})  # noqa: E731
    tally.step("a", "simulate_user", {"messages": [user], "counters": usage(1)})
    tally.step("a", "run_agent", {"messages": [calls], "counters": usage(3)})
    tally.step("b", "run_agent", {"counters": usage(50)})  # history from before the resume: a baseline only
    tally.step("b", "run_agent", {"counters": usage(52)})
    tally.step("b", "noop", None)
    tally.trajectory_finished("a", "done")
    tally.trajectory_finished("b", "interrupted")
    s = tally.snapshot()
    assert (s.user_turns, s.tool_calls, s.llm_calls, s.tokens) == (1, 2, 3 + 2, 33 + 22)
    assert (s.done, s.failed, s.interrupted, s.in_flight, s.queued) == (1, 0, 1, 0, 0)
    assert LINE.match(summary_line(s))


def _scripted():
    from dialogforge.config import ModelConfig, ModelsConfig

    return ModelsConfig(default=ModelConfig(backend="scripted"))
