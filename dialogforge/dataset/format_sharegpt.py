"""The ShareGPT shape with tool turns, as LLaMA-Factory and similar trainers read it.

``{"conversations": [{"from", "value"}...], "system": str, "tools": "<JSON string>"}``
with ``from`` one of human, gpt, function_call, observation, so turns
alternate human/observation with gpt/function_call. Parallel tool calls are
one function_call turn whose value is a JSON list, and their results one
observation turn whose value is a JSON list of the result strings.

Turns carry two optional extra keys that trainers ignore unless told to
read them: ``reasoning`` (with ``--with-reasoning``) and ``text`` (words
the assistant said alongside its tool calls, which ``value`` has no room for).
"""

from __future__ import annotations

import json
from typing import Any

from dialogforge.dataset.format_openai import system_prompt, training_span
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message


def sharegpt_record(state: DialogueState, *, with_reasoning: bool = False) -> dict[str, Any] | None:
    span = training_span(state)
    if not span:
        return None
    turns: list[dict[str, Any]] = []
    results: list[str] = []
    for i in span:
        m = state.messages[i]
        if m.role == "tool":
            results.append(m.content)
            continue
        if results:
            turns.append(_observation(results))
            results = []
        turns.append(_turn(m, with_reasoning))
    if results:
        turns.append(_observation(results))
    tools = [tool.openai_tool()["function"] for tool in state.tools]
    return {"conversations": turns, "system": system_prompt(state), "tools": json.dumps(tools, ensure_ascii=False)}


def _turn(m: Message, with_reasoning: bool) -> dict[str, Any]:
    if m.role == "user":
        return {"from": "human", "value": m.content}
    if m.tool_calls:
        calls = [
            {"name": c.name, "arguments": c.raw_arguments if c.raw_arguments is not None else c.arguments}
            for c in m.tool_calls
        ]
        turn: dict[str, Any] = {"from": "function_call", "value": json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)}
        if m.content:
            turn["text"] = m.content
    else:
        turn = {"from": "gpt", "value": m.content}
    if with_reasoning and m.reasoning:
        turn["reasoning"] = m.reasoning
    return turn


def _observation(results: list[str]) -> dict[str, Any]:
    value = results[0] if len(results) == 1 else json.dumps(results, ensure_ascii=False)
    return {"from": "observation", "value": value}
