"""``dialogforge show``: a trajectory as a readable conversation."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import TYPE_CHECKING

from dialogforge.cli.options import add_db

if TYPE_CHECKING:
    from dialogforge.graphs.state import DialogueState


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("show", help="print one trajectory", description="Print one trajectory. Example: dialogforge show ab12cd34-00000 --db run.db")
    parser.add_argument("thread_id", metavar="THREAD")
    add_db(parser)
    parser.add_argument("--reasoning", action="store_true", help="also print the agent's reasoning")
    parser.set_defaults(func=run)


def render_dialogue(state: DialogueState, with_reasoning: bool = False, costs: dict[str, float] | None = None) -> str:
    """``costs``: dollars per role (``runs.reading.trajectory_cost``); tokens are shown either way."""
    from dialogforge.pricing import dollars

    lines = [
        f"domain: {state.scenario.domain}   mode: {state.mode.value}   seed: {state.seed}"
        + (f"   language: {state.language}" if state.language else ""),
        *([f"persona: {state.scenario.persona}"] if state.scenario.persona else []),
        f"tools: {', '.join(t.name for t in state.tools) or '-'}",
        f"stop: {state.stop_reason.value if state.stop_reason else 'running'}" + (f" ({state.error})" if state.error else ""),
    ]
    usage = state.counters.usage
    if usage:
        parts = [f"{role} {u.total:,}" + (f" {dollars(costs[role])}" if costs and role in costs else "")
                 for role, u in sorted(usage.items())]
        total = f" = {dollars(sum(costs.values()))}" if costs else ""
        lines.append(f"tokens: {state.counters.total_tokens:,}{total} ({', '.join(parts)})")
    task_seen = None
    for m in state.messages:
        if m.task_index is not None and m.task_index != task_seen and m.task_index < len(state.tasks):
            task_seen = m.task_index
            lines.append(f"\n=== task {m.task_index + 1}: {state.tasks[m.task_index].goal}")
        if m.role == "tool":
            mark = "TOOL ERROR" if m.is_error else "TOOL"
            lines.append(f"  [{mark} {m.name}] {m.content[:300]}")
            continue
        if m.role == "assistant" and with_reasoning and m.reasoning:
            lines.append(textwrap.indent(f"(thinking) {m.reasoning}", "    "))
        for call in m.tool_calls:
            args = call.raw_arguments if call.raw_arguments is not None else json.dumps(call.arguments)
            lines.append(f"  -> {call.name}({args})")
        if m.content:
            lines.append(f"{m.role.upper():>9}: {m.content}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dialogforge.runs.reading import load_state, trajectory_cost

    state = load_state(args.db, args.thread_id)
    print(render_dialogue(state, args.reasoning, trajectory_cost(args.db, args.thread_id, state)))
    return 0
