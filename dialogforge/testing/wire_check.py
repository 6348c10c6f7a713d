"""Whether exported samples hold exactly what the agent was sent: the check tests and benchmarks share.

The agent's requests, as the stub server recorded them, against a trajectory's samples in
the Hugging Face message convention (arguments as objects, reasoning in
``reasoning_content``), each with how many of its first assistant turns are context only
(trained in an earlier sample). The other assistant turns, sample after sample, are the
agent's turns in order, so the k-th is the answer to the k-th request, and the messages
before it in its sample -- with reasoning where the agent is sent it, on its turns after
the last user message (the turn's own tool loop) -- must be exactly that request's
messages after the system prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def agent_requests(requests: list[dict]) -> list[dict]:
    """The agent's requests: tools offered, no structured output asked for."""
    return [body for body in requests if body.get("tools") and not body.get("response_format") and not body.get("tool_choice")]


def wire_message(m: dict) -> dict[str, Any]:
    """A request message as the agent sent it, in one comparable shape (arguments decoded)."""
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
    if m["role"] == "assistant":
        out["tool_calls"] = [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                             for c in m.get("tool_calls") or []]
        out["reasoning"] = m.get("reasoning_content")
    if m["role"] == "tool":
        out["tool_call_id"] = m["tool_call_id"]
    return out


def sample_context(messages: list[dict]) -> list[dict[str, Any]]:
    """Sample messages (the HF convention) before a turn, in ``wire_message``'s shape, reasoning
    kept on the assistant turns after the last user message only."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    out = []
    for i, m in enumerate(messages):
        entry: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        if m["role"] == "assistant":
            entry["tool_calls"] = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in m.get("tool_calls") or []]
            entry["reasoning"] = m.get("reasoning_content") if i > last_user else None
        if m["role"] == "tool":
            entry["tool_call_id"] = m["tool_call_id"]
        out.append(entry)
    return out


Sample = tuple[list[dict], int]  # a sample's messages (its system prompt first), and its context-only turns


def sample_turns(samples: list[Sample]) -> list[tuple[int, list[dict], dict]]:
    """(sample number, the messages before the turn, the turn) for every assistant turn a sample
    holds as its own (trained, or masked for an invalid call), in order."""
    out = []
    for k, (messages, context_turns) in enumerate(samples):
        assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        out += [(k, messages[:i], messages[i]) for i in assistant[context_turns:]]
    return out


@dataclass
class Faithfulness:
    turns: int  # assistant turns the samples hold as their own
    identical: int  # of them, exactly their request (system prompt, tools, messages, reasoning)
    in_loop: int  # agent requests inside a tool loop (an earlier turn of the loop in them)
    with_reasoning: int  # of them, carrying every earlier turn's reasoning of the loop


def faithfulness(samples: list[Sample], tools: list[dict], requests: list[dict]) -> Faithfulness:
    """The check over one trajectory: its samples, their tools, and every request the server answered."""
    agent = agent_requests(requests)
    turns = sample_turns(samples)
    identical = sum(
        1 for (_, before, _), body in zip(turns, agent)
        if body["messages"][0] == {"role": "system", "content": before[0]["content"]} and body["tools"] == tools
        and [wire_message(m) for m in body["messages"][1:]] == sample_context(before[1:]))
    in_loop = with_reasoning = 0
    for body in agent:
        messages = body["messages"]
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=0)
        loop = [m for m in messages[last_user + 1:] if m["role"] == "assistant"]
        if loop:
            in_loop += 1
            with_reasoning += all(m.get("reasoning_content") for m in loop)
    return Faithfulness(len(turns), identical, in_loop, with_reasoning)
