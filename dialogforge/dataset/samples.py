"""From a trajectory to one training sample: the step every export format shares.

A ``Sample`` is the trajectory cut to what a trainer should see, in one
neutral shape that no trainer reads directly; each format module renders it
its own way (``format_openai``, ``format_sharegpt``, ``chat_families`` for the
Hugging Face export). Decisions about *what* is in a sample live here, so a
new rule (say, ending a sample at the last completed task) is one change that
every format picks up; decisions about *how* a trainer spells it live in the
format modules.

What a sample holds:

- The conversation ends at the assistant's last reply. What follows it (the
  user's closing thanks, or an unfinished tool round) teaches nothing; the
  closing words are kept aside as ``closing``.
- The system prompt is the one the agent saw (a conversation that brought
  its own keeps that), separate from the messages.
- Every call carries ``valid``: False when the call could not legally run
  (unknown tool, arguments breaking the schema, arguments that were not a
  JSON object) and was answered with an error. An assistant turn with such a
  call has ``train`` False: the model should learn the recovery, not the
  mistake, and each format masks it by its own means.

The neutral message dicts (keys always present, so renderers never guess)::

    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "reasoning": str | None,
     "tool_calls": [call, ...], "train": bool}
        call = {"id": str, "name": str, "arguments": dict, "raw_arguments": str | None, "valid": bool}
        (raw_arguments: the model's text, when it was not a JSON object; arguments is then {})
    {"role": "tool", "tool_call_id": str | None, "name": str | None, "content": str, "is_error": bool}
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from dialogforge.dataset.rules import call_violation
from dialogforge.graphs.state import DialogueState
from dialogforge.nodes.prompting import agent_system_prompt
from dialogforge.records import Message, ToolCall

Msg = dict[str, Any]


class SampleSkipped(Exception):
    """A format cannot write this sample; ``reason`` names why, for the manifest's skipped counts."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Sample:
    system: str
    messages: list[Msg]
    tools: list[dict[str, Any]]  # OpenAI function tools: {"type": "function", "function": {...}}
    closing: str | None = None  # the user's final words after the last reply, if any

    @property
    def has_parallel_calls(self) -> bool:
        return any(len(m["tool_calls"]) > 1 for m in self.messages if m["role"] == "assistant")


def system_prompt(state: DialogueState) -> str:
    """The system message the agent saw; a conversation that brought its own keeps that."""
    if state.messages and state.messages[0].role == "system":
        return state.messages[0].content
    return agent_system_prompt(state).strip()


def training_span(state: DialogueState) -> range:
    """Positions of the messages a trainer sees: no leading system message, nothing after the last reply."""
    start = 1 if state.messages and state.messages[0].role == "system" else 0
    replies = [i for i, m in enumerate(state.messages) if m.role == "assistant" and not m.tool_calls]
    return range(start, replies[-1] + 1 if replies else start)


def closing_message(state: DialogueState) -> str | None:
    """The user's final words after the last reply (the completion signal), if any."""
    after = [m for m in state.messages[training_span(state).stop :] if m.role == "user"]
    return after[-1].content if after else None


def build_sample(state: DialogueState) -> Sample | None:
    """The training sample of a trajectory, or None when it has no assistant reply to train on."""
    span = training_span(state)
    if not span:
        return None
    specs = {tool.name: tool for tool in state.tools}
    messages = [_message(state.messages[i], specs) for i in span]
    return Sample(
        system=system_prompt(state), messages=messages,
        tools=[tool.openai_tool() for tool in state.tools], closing=closing_message(state),
    )


def _message(m: Message, specs: dict) -> Msg:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "name": m.name, "content": m.content, "is_error": m.is_error}
    if m.role != "assistant":
        return {"role": m.role, "content": m.content}
    calls = [_call(c, call_violation(specs, c) is None) for c in m.tool_calls]
    return {"role": "assistant", "content": m.content, "reasoning": m.reasoning or None,
            "tool_calls": calls, "train": all(c["valid"] for c in calls)}


def _call(c: ToolCall, valid: bool) -> Msg:
    return {"id": c.id, "name": c.name, "arguments": c.arguments, "raw_arguments": c.raw_arguments, "valid": valid}


def arguments_text(call: Msg) -> str:
    """A call's arguments as one JSON string (the model's own text when it was not a JSON object)."""
    if call["raw_arguments"] is not None:
        return call["raw_arguments"]
    return json.dumps(call["arguments"], ensure_ascii=False)


def rounds(messages: list[Msg]) -> list[tuple[Msg, list[Msg]]]:
    """Each message with the tool results right after it (its round's answers; [] for most)."""
    out: list[tuple[Msg, list[Msg]]] = []
    for m in messages:
        if m["role"] == "tool" and out:
            out[-1][1].append(m)
        else:
            out.append((m, []))
    return out


def without_calls(messages: list[Msg], drop: Callable[[Msg], bool], tally: Counter, reason: str) -> list[Msg]:
    """The messages without the calls ``drop`` picks and the results answering them, counted
    under ``reason`` in ``tally``. A turn left with no call goes too (its words and reasoning
    were about the dropped calls); a turn keeping some calls is trained if they all are valid."""
    kept: list[Msg] = []
    for m, results in rounds(messages):
        dropped = {c["id"] for c in m.get("tool_calls") or [] if drop(c)}
        if dropped:
            tally[reason] += len(dropped)
            calls = [c for c in m["tool_calls"] if c["id"] not in dropped]
            results = [r for r in results if r["tool_call_id"] not in dropped]
            if not calls:
                continue
            m = {**m, "tool_calls": calls, "train": all(c["valid"] for c in calls)}
        kept += [m, *results]
    return kept
