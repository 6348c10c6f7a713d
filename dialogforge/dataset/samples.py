"""From a trajectory to its training samples: the step every export format shares.

A ``Sample`` is the trajectory cut to what a trainer should see, in one
neutral shape that no trainer reads directly; each format module renders it
its own way (``format_openai``, ``format_sharegpt``, ``chat_families`` for the
Hugging Face export). Decisions about *what* is in a sample live here, so a
new rule (say, ending a sample at the last completed task) is one change that
every format picks up; decisions about *how* a trainer spells it live in the
format modules.

**Faithful samples.** A trainer trains each assistant turn on the messages
before it in its sample, so every trained turn must have been generated from
exactly those. The agent's context is held to a token budget
(``dialogforge.context_windows``) and each of its turns records the window it
saw (``Message.context``: the first message, and the request's user message
when the window starts inside a long tool loop). So a trajectory becomes one
sample per window: the run of consecutive turns generated from the same
window shares one sample, which starts where that window starts and ends at
the run's last turn; the turns before the run that the window holds are in
the sample as context only (``context``, never trained there: each turn is
trained in exactly one sample). While the dialogue fits the budget that is
one sample; each time the window slides a new one begins. A slide drops the
window to half its room (``KEEP_AFTER_SLIDE``), so past the budget a sample
covers about half a budget of new dialogue, and the count grows linearly:
about 1 + 2 x (dialogue tokens - budget) / budget. A turn written before
windows were recorded had the last ``Limits.history_window`` messages as its
window, and is cut the same way.

What a sample holds:

- The last sample ends at the assistant's last reply. What follows it (the
  user's closing thanks, or an unfinished tool round) teaches nothing; the
  closing words are kept aside as ``closing``. An earlier one ends at the last
  turn of its window, which may be a tool call.
- The system prompt is the one the agent saw (a conversation that brought
  its own keeps that), separate from the messages.
- Every call carries ``valid``: False when the call could not legally run
  (unknown tool, arguments breaking the schema, arguments that were not a
  JSON object) and was answered with an error. An assistant turn with such a
  call has ``train`` False: the model should learn the recovery, not the
  mistake, and each format masks it by its own means. A context turn has
  ``train`` False too, and so has a turn the agent wrote only after a nudge
  (its first reply was empty: no sample holds the request it answered); the
  context turns are all before the sample's own turns.

The neutral message dicts (keys always present, so renderers never guess)::

    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "reasoning": str | None,
     "tool_calls": [call, ...], "train": bool, "context": bool}
        call = {"id": str, "name": str, "arguments": dict, "raw_arguments": str | None, "valid": bool}
        (raw_arguments: the model's text, when it was not a JSON object; arguments is then {})
    {"role": "tool", "tool_call_id": str | None, "name": str | None, "content": str, "is_error": bool}
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from dialogforge.context_windows import seen_window
from dialogforge.dataset.rules import call_violation
from dialogforge.graphs.state import DialogueState
from dialogforge.nodes.run_agent import agent_system_prompt
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
    closing: str | None = None  # the user's final words after the last reply, if any (the last sample only)
    segment: int = 0  # this sample's place among its trajectory's, from 0
    segments: int = 1  # how many samples the trajectory makes
    first_message: int = 0  # the dialogue position its first message holds

    @property
    def has_parallel_calls(self) -> bool:
        return any(len(m["tool_calls"]) > 1 for m in self.messages if m["role"] == "assistant")


def training_span(state: DialogueState) -> range:
    """Positions of the messages a trainer sees: no leading system message, nothing after the last reply."""
    start = 1 if state.messages and state.messages[0].role == "system" else 0
    replies = [i for i, m in enumerate(state.messages) if m.role == "assistant" and not m.tool_calls]
    return range(start, replies[-1] + 1 if replies else start)


def closing_message(state: DialogueState) -> str | None:
    """The user's final words after the last reply (the completion signal), if any."""
    after = [m for m in state.messages[training_span(state).stop :] if m.role == "user"]
    return after[-1].content if after else None


def build_samples(state: DialogueState) -> list[Sample]:
    """The trajectory's training samples, one per window its turns were generated from (see the
    module docstring); [] when it has no assistant reply to train on."""
    runs = _runs(state)
    if not runs:
        return []
    specs = {tool.name: tool for tool in state.tools}
    system, tools = agent_system_prompt(state), [tool.openai_tool() for tool in state.tools]
    samples = []
    for k, ((start, request), own) in enumerate(runs):
        positions = ([request] if request is not None else []) + list(range(start, own[-1] + 1))
        messages = [_message(state.messages[i], specs, context=i < own[0]) for i in positions]
        samples.append(Sample(system=system, messages=messages, tools=tools, segment=k, segments=len(runs),
                              closing=closing_message(state) if k == len(runs) - 1 else None, first_message=positions[0]))
    return samples


def sample_count(state: DialogueState) -> int:
    """How many samples ``build_samples`` makes of the trajectory, without building them."""
    return len(_runs(state))


def _runs(state: DialogueState) -> list[tuple[tuple[int, int | None], list[int]]]:
    """The assistant turns of the training span grouped by the window they saw, in order."""
    runs: list[tuple[tuple[int, int | None], list[int]]] = []
    for j in training_span(state):
        if state.messages[j].role == "assistant":
            window = seen_window(state.messages, j, state.limits.history_window)
            if runs and runs[-1][0] == window:
                runs[-1][1].append(j)
            else:
                runs.append((window, [j]))
    return runs


def _message(m: Message, specs: dict, *, context: bool) -> Msg:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "name": m.name, "content": m.content, "is_error": m.is_error}
    if m.role != "assistant":
        return {"role": m.role, "content": m.content}
    calls = [_call(c, call_violation(specs, c) is None) for c in m.tool_calls]
    nudged = m.context is not None and m.context.nudged
    return {"role": "assistant", "content": m.content, "reasoning": m.reasoning or None,
            "tool_calls": calls, "train": trained(context or nudged, calls), "context": context}


def trained(context: bool, calls: list[Msg]) -> bool:
    """Whether an assistant turn is trained: not a context turn, and every call of it valid."""
    return not context and all(c["valid"] for c in calls)


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
            m = {**m, "tool_calls": calls, "train": trained(m["context"], calls)}
        kept += [m, *results]
    return kept
