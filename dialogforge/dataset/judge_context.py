"""What the judge sees when it grades one task: all it needs, within a token budget.

For task *k* the judge gets the task's goal, subtasks and rubric; the tool
specs the agent had; the agent's system prompt and reference time; and the
conversation from its start to the end of task *k*. Earlier tasks are there
as context because later tasks build on them: a fact the agent quotes from a
first-task tool result is not a hallucination in the second task. Every
transcript entry carries its position ``n`` and its ``task``; an assistant
turn whose context window (``Message.context``, ``dialogforge.context_windows``)
hid the start of the conversation carries ``saw_from``, the first position it
could see (and ``saw_request``, its request's user message, when the window
started inside that request's tool loop), so a claim is judged against the
tool results the agent actually had -- the same window the export trains it on.

The bound is a token budget, not a message count. Sizes are estimated at
``CHARS_PER_TOKEN`` characters a token (conservative for JSON; tokenizers
differ by model). Everything is shown verbatim when it fits. When it does
not, these steps are taken in order until it does, and ``transcript_note``
tells the judge which were:

1. tool results of earlier tasks longer than ``CONDENSED_CHARS`` (2,000)
   characters keep their first 2,000 characters and say how much was left out;
2. the oldest exchanges of earlier tasks (a user message up to the next one,
   so no tool result loses its call) are left out;
3. tool results of the judged task itself are condensed the same way.

If the judged task still does not fit, it is not judged at all:
``JudgeContextError`` says how large it is, and the trajectory is recorded
as unjudged with that reason rather than graded on a part of its evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dialogforge.context_windows import conversation_base, seen_window
from dialogforge.dataset.cut import Cut
from dialogforge.dataset.errors import JudgeContextError
from dialogforge.graphs.state import DialogueState
from dialogforge.nodes.prompting import render
from dialogforge.prompts import context_block
from dialogforge.records import Message

CHARS_PER_TOKEN = 3
CONDENSED_CHARS = 2_000


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


@dataclass
class _Entry:
    n: int
    data: dict[str, Any]
    condensed: bool = False

    @property
    def size(self) -> int:
        """Characters this entry adds to the context block (nested two levels deep, indent 1)."""
        text = json.dumps(self.data, ensure_ascii=False, indent=1)
        return len(text) + 2 * text.count("\n") + 4


def judge_context(state: DialogueState, index: int, *, cut: Cut | None, budget_chars: int) -> dict[str, Any]:
    """The context for task ``index`` whose JSON block fits ``budget_chars`` characters."""
    fixed = _fixed_context(state, index, cut)
    room = budget_chars - len(context_block({**fixed, "transcript_note": "x" * 400, "transcript": []}))
    if room <= 0:
        raise JudgeContextError(
            f"task {index + 1}: the tool specs and rubric alone need about {estimate_tokens(context_block(fixed))} "
            f"tokens, over the judge's context budget; raise --judge-context-tokens")
    messages = state.messages[: task_end(state, index)]
    entries = [_Entry(i, _entry(i, m, _view(state, i))) for i, m in enumerate(messages)]
    start = _task_start(messages, index)
    entries, notes = _fit(entries, start, room, index)
    return {**fixed, "transcript_note": " ".join(notes), "transcript": [e.data for e in entries]}


def task_end(state: DialogueState, index: int) -> int:
    """Position just after the last message of task ``index`` (all messages when none is tagged)."""
    tagged = [i for i, m in enumerate(state.messages) if m.task_index == index]
    if tagged:
        return tagged[-1] + 1
    if all(m.task_index is None for m in state.messages):
        return len(state.messages)
    return next((i for i, m in enumerate(state.messages) if m.task_index is not None and m.task_index > index), len(state.messages))


def _task_start(messages: list[Message], index: int) -> int:
    return next((i for i, m in enumerate(messages) if m.task_index is not None and m.task_index >= index), 0)


def _fixed_context(state: DialogueState, index: int, cut: Cut | None) -> dict[str, Any]:
    task = state.tasks[index]
    return {
        "domain": state.scenario.domain,
        "mode": state.mode.value,
        "reference_time": state.reference_time,
        "agent_system_prompt": render("run_agent", domain=state.scenario.domain, reference_time=state.reference_time).strip(),
        "tools": [tool.openai_tool()["function"] for tool in state.tools],
        "task_number": index + 1,
        "tasks_in_conversation": len(state.tasks),
        "goal": task.goal,
        "subtasks": task.subtasks,
        "rubric": [{"index": i, "criterion": r.criterion, "category": r.category.value} for i, r in enumerate(task.rubric)],
        "task_status": task.status.value,
        "stop_reason": state.stop_reason.value if state.stop_reason else None,
        "cut": cut.describe() if cut else None,
    }


def _view(state: DialogueState, j: int) -> tuple[int, int | None] | None:
    """For an assistant turn whose window hid part of what came before: (first position, request)."""
    if state.messages[j].role != "assistant":
        return None
    start, request = seen_window(state.messages, j, state.limits.history_window)
    return (start, request) if start > conversation_base(state.messages) else None


def _entry(n: int, m: Message, view: tuple[int, int | None] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"n": n, "task": None if m.task_index is None else m.task_index + 1, "role": m.role, "content": m.content}
    if m.tool_calls:
        entry["tool_calls"] = [
            {"name": c.name, "arguments": c.raw_arguments if c.raw_arguments is not None else c.arguments}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        entry["tool"] = m.name
        entry["error"] = m.is_error
    if view is not None:
        entry["saw_from"] = view[0]
        if view[1] is not None:
            entry["saw_request"] = view[1]
    return entry


def _fit(entries: list[_Entry], start: int, room: int, index: int) -> tuple[list[_Entry], list[str]]:
    """The entries, condensed and shortened in the documented order until they fit ``room``."""
    total = lambda: sum(e.size for e in entries)  # noqa: E731 -- re-measured after each step
    if total() <= room:
        return entries, [f"Complete: every message up to the end of task {index + 1}, verbatim."]
    earliest = entries[0].n
    _condense([e for e in entries if e.n < start])
    if total() > room:
        entries = _omit_oldest(entries, start, room)
    if total() > room:
        _condense(entries)
    if total() > room:
        raise JudgeContextError(
            f"task {index + 1}: its own transcript needs about {estimate_tokens('x' * total())} tokens even condensed, "
            "over the judge's context budget; raise --judge-context-tokens")
    notes = []
    if entries[0].n > earliest:
        notes.append(f"Messages {earliest}-{entries[0].n - 1} (the start of the conversation) are left out for length; "
                     "facts that may come from them cannot be checked here.")
    for label, part in (("earlier tasks", [e for e in entries if e.n < start]), ("this task", [e for e in entries if e.n >= start])):
        if any(e.condensed for e in part):
            notes.append(f"Tool results of {label} longer than {CONDENSED_CHARS} characters show only their first {CONDENSED_CHARS}.")
    return entries, notes


def _condense(entries: list[_Entry]) -> None:
    for e in entries:
        content = e.data.get("content", "")
        if e.data["role"] == "tool" and not e.condensed and len(content) > CONDENSED_CHARS:
            e.data["content"] = f"{content[:CONDENSED_CHARS]} [... {len(content) - CONDENSED_CHARS} more characters condensed out]"
            e.condensed = True


def _omit_oldest(entries: list[_Entry], start: int, room: int) -> list[_Entry]:
    """Leave out as few whole exchanges of earlier tasks as fit, oldest first, cutting only at
    a user message (or where the judged task starts), so no tool result loses its call."""
    sizes = [e.size for e in entries]
    remaining = sum(sizes)
    cuts = [i for i, e in enumerate(entries) if 0 < i and e.n <= start and (e.n == start or e.data["role"] == "user")]
    dropped = 0
    for cut_at in cuts:
        if remaining <= room:
            break
        remaining -= sum(sizes[dropped:cut_at])
        dropped = cut_at
    return entries[dropped:]
