"""Rule checks: what every trajectory in a training set must satisfy, each with a named reason.

The checks are pure functions of a ``DialogueState``; no model is asked.

Invalid tool calls are kept on purpose. The generator answers a call to an
unknown tool, or one whose arguments break the schema, with a tool *error*
message, and the agent then corrects itself: that recovery is exactly what a
tool-using model must learn, so such a call is not a failure. What fails is
a call that was invalid and still answered as a success (the data would
teach that invalid calls work). Exports give those recovered calls a loss
weight of 0 where the format allows it, so the model learns the recovery,
not the mistake.

A capped trajectory is checked as its cut (``dialogforge.dataset.cut``): the
dialogue up to the agent's reply to its last completed task. It passes the
completion and stop checks when it ends with that reply; everything else is
checked as for any trajectory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dialogforge.dataset.cut import Cut
from dialogforge.dataset.language_check import mismatches
from dialogforge.graphs.state import DialogueState
from dialogforge.records import CAP_STOP_REASONS, Message, Mode, StopReason, TaskStatus, ToolCall, ToolSpec
from dialogforge.tool_checks import first_violation


class Rule(StrEnum):
    UNKNOWN_TOOL = "unknown_tool"  # a call to a tool not in the list was answered as a success
    INVALID_ARGUMENTS = "invalid_arguments"  # a call breaking its schema was answered as a success
    TOOL_RESULT_PAIRING = "tool_result_pairing"  # a call without exactly one result, or a stray result
    MESSAGE_ORDER = "message_order"  # roles in an order no chat model is trained on
    EMPTY_TURN = "empty_turn"
    TASK_NOT_COMPLETED = "task_not_completed"  # the last task did not end with the completion signal
    REASONING_LEAKED = "reasoning_leaked"  # thinking text inside a visible reply
    STOPPED_AT_CAP = "stopped_at_cap"
    STOPPED_BY_ERROR = "stopped_by_error"
    WRONG_LANGUAGE = "wrong_language"  # a user or assistant turn in another language than the trajectory's


@dataclass(frozen=True)
class RuleFailure:
    rule: Rule
    detail: str
    message_index: int | None = None

    def as_dict(self) -> dict:
        return {"rule": self.rule.value, "detail": self.detail, "message_index": self.message_index}


# Thinking markup of common reasoning models (DeepSeek/Qwen, gpt-oss harmony, generic tags).
_THINK_MARKUP = re.compile(
    r"</?think(?:ing)?>|</?reasoning>|<\|channel\|>|<\|start\|>assistant|<\|message\|>|<\|im_start\|>",
    re.IGNORECASE,
)
_LEAK_MIN_CHARS = 40  # a shorter reasoning text can appear in a reply by coincidence


def check_rules(state: DialogueState, cut: Cut | None = None) -> list[RuleFailure]:
    """Every rule failure of one trajectory (``state`` is the cut one when ``cut`` is given);
    an empty list means it passes."""
    return [
        *check_tool_calls(state),
        *check_pairing(state.messages),
        *check_order(state.messages),
        *check_empty_turns(state.messages),
        *check_completion(state, cut),
        *check_reasoning_leaks(state.messages),
        *check_stop_reason(state, cut),
        *check_language(state),
    ]


def call_violation(specs: dict[str, ToolSpec], call: ToolCall) -> tuple[Rule, str] | None:
    """Why a call could not legally run: the same test the generator applies before executing."""
    spec = specs.get(call.name)
    if spec is None:
        return Rule.UNKNOWN_TOOL, f"{call.name!r} is not one of the trajectory's tools"
    if call.raw_arguments is not None:
        return Rule.INVALID_ARGUMENTS, f"arguments for {call.name} are not a JSON object"
    problem = first_violation(spec.function.parameters, call.arguments)
    if problem:
        return Rule.INVALID_ARGUMENTS, f"arguments for {call.name}: {problem}"
    return None


def results_by_call(messages: list[Message]) -> dict[str, list[Message]]:
    results: dict[str, list[Message]] = {}
    for m in messages:
        if m.role == "tool" and m.tool_call_id:
            results.setdefault(m.tool_call_id, []).append(m)
    return results


def check_tool_calls(state: DialogueState) -> list[RuleFailure]:
    """An invalid call must have been answered with an error, never with a result."""
    specs = {tool.name: tool for tool in state.tools}
    results = results_by_call(state.messages)
    failures = []
    for i, m in enumerate(state.messages):
        for call in m.tool_calls:
            violation = call_violation(specs, call)
            answers = results.get(call.id, [])
            if violation and any(not r.is_error for r in answers):
                rule, detail = violation
                failures.append(RuleFailure(rule, f"{detail}, yet answered as a success", i))
    return failures


def check_pairing(messages: list[Message]) -> list[RuleFailure]:
    """Each call id gets exactly one result, right after its call, naming the same tool."""
    failures = []
    seen_ids: set[str] = set()
    pending: dict[str, ToolCall] = {}
    answered: set[str] = set()
    for i, m in enumerate(messages):
        if m.role == "tool":
            call = pending.get(m.tool_call_id or "")
            if call is None:
                failures.append(RuleFailure(Rule.TOOL_RESULT_PAIRING, f"result for unknown call id {m.tool_call_id!r}", i))
            elif m.tool_call_id in answered:
                failures.append(RuleFailure(Rule.TOOL_RESULT_PAIRING, f"second result for call {m.tool_call_id!r}", i))
            elif m.name is not None and m.name != call.name:
                failures.append(RuleFailure(Rule.TOOL_RESULT_PAIRING, f"result names {m.name!r} but call {call.id!r} is {call.name!r}", i))
            answered.add(m.tool_call_id or "")
            continue
        failures += _unanswered(pending, answered, i)
        pending, answered = {}, set()
        for call in m.tool_calls:
            if call.id in seen_ids:
                failures.append(RuleFailure(Rule.TOOL_RESULT_PAIRING, f"call id {call.id!r} used twice", i))
            seen_ids.add(call.id)
            pending[call.id] = call
    return failures + _unanswered(pending, answered, len(messages))


def _unanswered(pending: dict[str, ToolCall], answered: set[str], index: int) -> list[RuleFailure]:
    return [
        RuleFailure(Rule.TOOL_RESULT_PAIRING, f"call {call_id!r} ({call.name}) has no result", index)
        for call_id, call in pending.items() if call_id not in answered
    ]


def check_order(messages: list[Message]) -> list[RuleFailure]:
    """system? then user, and after it assistant (tool batches in between), then user again."""
    failures = []
    previous: Message | None = None
    for i, m in enumerate(messages):
        problem = _order_problem(previous, m, i)
        if problem:
            failures.append(RuleFailure(Rule.MESSAGE_ORDER, problem, i))
        previous = m
    return failures


def _order_problem(previous: Message | None, m: Message, index: int) -> str | None:
    before = "start" if previous is None else previous.role
    if m.role == "system":
        return None if index == 0 else "system message after the start"
    if m.role == "user":
        ok = previous is None or previous.role == "system" or (previous.role == "assistant" and not previous.tool_calls)
        return None if ok else f"user message after {_describe(previous)}"
    if m.role == "assistant":
        ok = previous is not None and previous.role in ("user", "tool")
        return None if ok else f"assistant message after {before if previous is None else _describe(previous)}"
    ok = previous is not None and (previous.role == "tool" or (previous.role == "assistant" and previous.tool_calls))
    return None if ok else f"tool message after {before if previous is None else _describe(previous)}"


def _describe(m: Message) -> str:
    if m.role == "assistant":
        return "an assistant message with tool calls" if m.tool_calls else "an assistant reply"
    return f"a {m.role} message"


def check_empty_turns(messages: list[Message]) -> list[RuleFailure]:
    failures = []
    for i, m in enumerate(messages):
        if m.content.strip():
            continue
        if m.role == "assistant" and m.tool_calls:
            continue  # a pure tool-call turn has no text by design
        failures.append(RuleFailure(Rule.EMPTY_TURN, f"empty {m.role} message", i))
    return failures


def check_completion(state: DialogueState, cut: Cut | None = None) -> list[RuleFailure]:
    """User mode: the user closed every task (a cut one: it ends with the agent's reply to a
    completed task); task mode: the agent gave its final answer."""
    if not state.tasks:
        return [RuleFailure(Rule.TASK_NOT_COMPLETED, "the trajectory has no task")]
    last = state.messages[-1] if state.messages else None
    if state.mode is Mode.USER:
        open_tasks = [i + 1 for i, t in enumerate(state.tasks) if t.status is not TaskStatus.COMPLETED]
        if open_tasks:
            return [RuleFailure(Rule.TASK_NOT_COMPLETED, f"task(s) {open_tasks} not marked completed by the user")]
        if cut is not None:
            if last is None or last.role != "assistant" or last.tool_calls:
                return [RuleFailure(Rule.TASK_NOT_COMPLETED, "the cut conversation does not end with the agent's reply")]
            return []
        if last is None or last.role != "user":
            return [RuleFailure(Rule.TASK_NOT_COMPLETED, "the conversation does not end with the user's closing message")]
        return []
    if state.stop_reason is not StopReason.AGENT_FINISHED:
        return [RuleFailure(Rule.TASK_NOT_COMPLETED, "the agent did not finish the task")]
    if last is None or last.role != "assistant" or last.tool_calls:
        return [RuleFailure(Rule.TASK_NOT_COMPLETED, "the conversation does not end with the agent's answer")]
    return []


def check_reasoning_leaks(messages: list[Message]) -> list[RuleFailure]:
    """Thinking markup in any visible text, or an assistant's own reasoning pasted into its reply."""
    failures = []
    for i, m in enumerate(messages):
        if m.role == "tool":
            continue
        found = _THINK_MARKUP.search(m.content)
        if found:
            failures.append(RuleFailure(Rule.REASONING_LEAKED, f"{m.role} message contains {found.group(0)!r}", i))
            continue
        reasoning = (m.reasoning or "").strip()
        if len(reasoning) >= _LEAK_MIN_CHARS and reasoning[:200] in m.content:
            failures.append(RuleFailure(Rule.REASONING_LEAKED, "assistant reply repeats its own reasoning", i))
    return failures


def check_stop_reason(state: DialogueState, cut: Cut | None = None) -> list[RuleFailure]:
    """A cap fails a trajectory unless it was cut before the cap (what hit it is gone)."""
    reason = state.stop_reason
    if reason in CAP_STOP_REASONS and cut is None:
        return [RuleFailure(Rule.STOPPED_AT_CAP, f"stopped at a cap: {reason.value}")]
    if reason is None:
        return [RuleFailure(Rule.STOPPED_BY_ERROR, "the trajectory never finished")]
    if reason is StopReason.ERROR:
        return [RuleFailure(Rule.STOPPED_BY_ERROR, f"stopped by an error: {(state.error or 'unknown')[:200]}")]
    return []


def check_language(state: DialogueState) -> list[RuleFailure]:
    """Each user or assistant turn in the trajectory's language (``--language``), as
    ``dataset.language_check`` identifies it; a trajectory without one is not checked."""
    return [RuleFailure(Rule.WRONG_LANGUAGE, found.detail(), found.message_index)
            for found in mismatches(state.messages, state.language)]
