"""What the agent is sent, and how many training samples a dialogue makes, at 50, 200 and 800 messages.

Drives the real dialogue graph with the scripted model behind the stub
OpenAI-compatible server (real HTTP), which holds a model's context
(``--model-context`` of its own tokens, counted at 3 characters a token:
not our estimate, so the budget is calibrated with its usage figures) and
records every request. For each length N it prints:

* ``samples``: how many samples the dialogue's first N messages export as
  (one per window the agent's turns were generated from);
* ``request (est)`` / ``request (server)``: the agent's request for its first
  turn at or after message N, by ``dialogforge.tokens`` (what the budget is
  counted with) and by the server (the prompt tokens it reported);
* ``whole history``: what that request would be without a window;
* ``window from``: the first message it shows.

Then, over the whole dialogue, the two faithfulness figures
(``dialogforge.testing.wire_check``): exported assistant turns whose sample is
exactly their request, and in-loop agent requests that carry the loop's
earlier reasoning.

    python benchmarks/context_windows.py                          # 50 200 800 messages, the default budgets
    python benchmarks/context_windows.py --agent-context-tokens 8000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dialogforge.config import ModelConfig, ModelsConfig, Role  # noqa: E402
from dialogforge.context_windows import agent_tokens  # noqa: E402
from dialogforge.dataset.chat_families import HF_CONVENTION, context_turns, family_messages  # noqa: E402
from dialogforge.dataset.samples import build_samples  # noqa: E402
from dialogforge.executors.simulated import SimulatedToolExecutor  # noqa: E402
from dialogforge.graphs.builder import compile_graph  # noqa: E402
from dialogforge.graphs.context import GraphContext  # noqa: E402
from dialogforge.graphs.state import DialogueState  # noqa: E402
from dialogforge.models import ModelSet  # noqa: E402
from dialogforge.records import Limits, Mode, Scenario, ToolSimulation  # noqa: E402
from dialogforge.runs.engine import RECURSION_LIMIT  # noqa: E402
from dialogforge.runs.planning import graph_input  # noqa: E402
from dialogforge.testing.openai_wire import prompt_tokens  # noqa: E402
from dialogforge.testing.scripted_model import ScriptedChatModel  # noqa: E402
from dialogforge.testing.stub_server import StubServer  # noqa: E402
from dialogforge.testing.wire_check import agent_requests, faithfulness  # noqa: E402


def long_dialogue(seed: int, limits: Limits) -> DialogueState:
    return DialogueState(seed=seed, scenario=Scenario(domain="customer support for an online store", target_tasks=100_000),
                         limits=limits, simulation=ToolSimulation(tool_error_rate=0.02))


async def run(seed: int, limits: Limits, messages_needed: int, model_context: int) -> tuple[list[dict], DialogueState]:
    with StubServer(lambda body: ScriptedChatModel(), record_requests=True, max_context_tokens=model_context) as server:
        models = ModelSet.from_config(ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url, model="scripted")))
        context = GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))
        values: dict[str, Any] = {}
        try:
            async for values in compile_graph(Mode.USER).astream(
                    graph_input(long_dialogue(seed, limits)), {"recursion_limit": RECURSION_LIMIT}, context=context,
                    stream_mode="values"):
                if len(values.get("messages", [])) > messages_needed + 10:
                    break
        finally:
            await models.aclose()
        requests = list(server.requests)
    return requests, DialogueState.model_validate(values)


def measure(seed: int, limits: Limits, lengths: list[int], model_context: int) -> dict[str, Any]:
    requests, state = asyncio.run(run(seed, limits, max(lengths), model_context))
    if state.error:
        raise SystemExit(f"the dialogue failed: {state.error}")
    agent = [body for body in agent_requests(requests) if prompt_tokens(body) <= model_context]  # answered ones
    turns = [i for i, m in enumerate(state.messages) if m.role == "assistant"]
    fixed = turns and state.messages[turns[0]].context.estimated - state.messages[turns[0]].context.tokens
    rows = []
    for n in lengths:
        k = next((k for k, i in enumerate(turns) if i >= n), None)
        if k is None:
            rows.append({"messages": n, "missing": f"the dialogue has {len(state.messages)} messages"})
            continue
        at, window = turns[k], state.messages[turns[k]].context
        rows.append({
            "messages": n, "samples": len(build_samples(state.model_copy(update={"messages": state.messages[:n]}))),
            "turn_at": at, "request_est": window.estimated, "request_server": prompt_tokens(agent[k]),
            "reported": window.prompt_tokens,
            "whole_history": fixed + sum(agent_tokens(m) for m in state.messages[:at]) + window.loop_reasoning,
            "window_from": window.start,
        })
    samples = build_samples(state)
    tally: Counter = Counter()
    rendered = [(family_messages(sample, HF_CONVENTION, with_reasoning=True, tally=tally), context_turns(sample, HF_CONVENTION))
                for sample in samples]
    found = faithfulness(rendered, samples[0].tools if samples else [], requests)
    return {"seed": seed, "agent_context_tokens": limits.agent_context_tokens, "user_context_tokens": limits.user_context_tokens,
            "model_context": model_context, "dialogue_messages": len(state.messages), "samples": len(samples),
            "lengths": rows, "faithfulness": found.__dict__}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--agent-context-tokens", type=int, default=Limits().agent_context_tokens)
    parser.add_argument("--user-context-tokens", type=int, default=Limits().user_context_tokens)
    parser.add_argument("--model-context", type=int, default=32_768, help="the emulated model's context, in its tokens")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    limits = Limits(max_user_turns=2_000, max_tasks=100_000, token_budget=None, agent_context_tokens=args.agent_context_tokens,
                    user_context_tokens=args.user_context_tokens)
    result = measure(args.seed, limits, sorted(args.lengths), args.model_context)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"agent budget {result['agent_context_tokens']}, user simulator {result['user_context_tokens']}, "
          f"model context {result['model_context']} (server tokens); seed {result['seed']}")
    print(f"{'messages':>9} {'samples':>8} {'request (est)':>14} {'request (server)':>17} {'whole history':>14} {'window from':>12}")
    for row in result["lengths"]:
        if "missing" in row:
            print(f"{row['messages']:>9}  {row['missing']}")
            continue
        print(f"{row['messages']:>9} {row['samples']:>8} {row['request_est']:>14} {row['request_server']:>17} "
              f"{row['whole_history']:>14} {row['window_from']:>12}")
    f = result["faithfulness"]
    print(f"over {result['dialogue_messages']} messages, {result['samples']} samples: {f['identical']}/{f['turns']} exported "
          f"assistant turns identical to their request; {f['with_reasoning']}/{f['in_loop']} in-loop requests carry the loop's reasoning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
