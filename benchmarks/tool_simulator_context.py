"""What the tool simulator is sent, at call 10, 50 and 200 of one long trajectory.

Drives the real dialogue graph with the scripted model behind the stub
OpenAI-compatible server (real HTTP), records every request the server gets,
and picks the tool simulator's (``response_format`` named ``ToolResult``).
For the simulator request that answers call N of the trajectory (N counts
every tool call the agent made, invalid ones too) it prints:

* ``tokens (est)``: the request's messages by ``dialogforge.tokens`` (the
  estimate the context budget is counted with);
* ``tokens (cl100k)``: the exact cl100k_base count, when a tokenizer with
  that vocabulary is installed (``pip install bpe-openai``), else ``-``;
* ``chars``: characters of the messages' text;
* ``earlier calls carried``: how many of calls 1..N-1 have all their data
  (every argument and result value of 4+ characters, every number) in the
  request's text.

    python benchmarks/tool_simulator_context.py                 # calls 10 50 200
    python benchmarks/tool_simulator_context.py --calls 10 40 --seed 5 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dialogforge.config import ModelConfig, ModelsConfig, Role  # noqa: E402
from dialogforge.executors.simulated import SimulatedToolExecutor  # noqa: E402
from dialogforge.graphs.builder import compile_graph  # noqa: E402
from dialogforge.graphs.context import GraphContext  # noqa: E402
from dialogforge.graphs.state import DialogueState  # noqa: E402
from dialogforge.models import ModelSet  # noqa: E402
from dialogforge.records import Limits, Message, Mode, Scenario  # noqa: E402
from dialogforge.runs.engine import RECURSION_LIMIT  # noqa: E402
from dialogforge.runs.planning import graph_input  # noqa: E402
from dialogforge.testing.scripted_model import ScriptedChatModel  # noqa: E402
from dialogforge.testing.stub_server import StubServer  # noqa: E402
from dialogforge.tokens import estimate_messages_tokens  # noqa: E402

_CONTEXT_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)


def exact_counter():
    """An exact cl100k_base counter, if a tokenizer that ships the vocabulary is installed."""
    try:
        import bpe_openai
    except ImportError:
        return None
    encoding = bpe_openai.get_encoding("cl100k_base")
    return lambda texts: sum(len(encoding.encode(t)) + 4 for t in texts)


def simulator_requests(requests: list[dict]) -> list[dict]:
    def is_simulator(body: dict) -> bool:
        fmt = body.get("response_format") or {}
        return (fmt.get("json_schema") or {}).get("name") == "ToolResult"
    return [body for body in requests if is_simulator(body)]


def texts_of(body: dict) -> list[str]:
    return [m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content")) for m in body["messages"]]


def context_of(body: dict) -> dict[str, Any]:
    for text in reversed(texts_of(body)):
        blocks = _CONTEXT_BLOCK.findall(text)
        if blocks:
            return json.loads(blocks[-1])
    return {}


def calls_of(messages: list[Message]) -> list[tuple[str, dict, str]]:
    """Every tool call of the trajectory in order: (name, arguments, what the tool message said)."""
    answers = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    return [(c.name, c.arguments, answers.get(c.id, "")) for m in messages for c in m.tool_calls]


def leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [json.dumps(value)]
    return [value] if len(value) >= 4 else []


def call_data(name: str, arguments: dict, answer: str) -> list[str]:
    try:
        result: Any = json.loads(answer)
    except ValueError:
        result = answer
    return leaves(arguments) + leaves(result)


def match_requests(calls: list[tuple[str, dict, str]], requests: list[dict]) -> dict[int, dict]:
    """Call number (1-based) -> the simulator request that answered it."""
    matched: dict[int, dict] = {}
    position = 0
    for body in requests:
        context = context_of(body)
        while position < len(calls):
            name, arguments, _ = calls[position]
            position += 1
            if name == context.get("tool") and arguments == context.get("arguments"):
                matched[position] = body
                break
    return matched


def long_dialogue(seed: int) -> DialogueState:
    return DialogueState(
        seed=seed, scenario=Scenario(domain="customer support for an online store", target_tasks=100_000),
        limits=Limits(max_user_turns=2_000, max_tasks=100_000, max_tool_steps=8),
    )


async def run(seed: int, calls_needed: int) -> tuple[list[dict], DialogueState]:
    recorded: list[dict] = []

    def factory(body: dict) -> ScriptedChatModel:
        recorded.append(body)
        return ScriptedChatModel()

    with StubServer(factory) as server:
        models = ModelSet.from_config(ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url, model="scripted")))
        context = GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))
        graph = compile_graph(Mode.USER)
        values: dict[str, Any] = {}
        async for values in graph.astream(graph_input(long_dialogue(seed)), {"recursion_limit": RECURSION_LIMIT},
                                          context=context, stream_mode="values"):
            if sum(len(m.tool_calls) for m in values.get("messages", [])) > calls_needed + 10:  # past N, and N answered
                break
        await models.aclose()
    return recorded, DialogueState.model_validate(values)


def measure(seed: int, points: list[int]) -> list[dict[str, Any]]:
    recorded, state = asyncio.run(run(seed, max(points)))
    calls = calls_of(state.messages)
    by_call = match_requests(calls, simulator_requests(recorded))
    exact = exact_counter()
    rows = []
    for n in points:
        # The first call at or after N that the simulator answered (invalid calls never reach it).
        at = next((k for k in sorted(by_call) if k >= n), None)
        if at is None:
            rows.append({"call": n, "missing": f"the trajectory has {len(calls)} calls, {len(by_call)} simulated"})
            continue
        body = by_call[at]
        texts = texts_of(body)
        text = "\n".join(texts)
        earlier = [call_data(*c) for c in calls[: at - 1]]
        with_data = [d for d in earlier if d]
        carried = sum(1 for d in with_data if all(leaf in text for leaf in d))
        rows.append({
            "call": at, "tokens_est": estimate_messages_tokens(texts), "tokens_cl100k": exact(texts) if exact else None,
            "chars": sum(len(t) for t in texts), "earlier_with_data": len(with_data), "earlier_carried": carried,
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = measure(args.seed, sorted(args.calls))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'call':>5} {'tokens (est)':>13} {'tokens (cl100k)':>16} {'chars':>8}  earlier calls carried")
    for row in rows:
        if "missing" in row:
            print(f"{row['call']:>5}  {row['missing']}")
            continue
        exact = "-" if row["tokens_cl100k"] is None else row["tokens_cl100k"]
        share = row["earlier_carried"] / row["earlier_with_data"] if row["earlier_with_data"] else 1.0
        print(f"{row['call']:>5} {row['tokens_est']:>13} {exact:>16} {row['chars']:>8}  "
              f"{row['earlier_carried']}/{row['earlier_with_data']} ({share:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
