"""The OpenAI chat-completions fine-tuning shape, and a checker for it.

One record per trajectory: ``{"messages": [...], "tools": [...]}``. The
agent's system prompt is rendered from the prompt file the agent ran with
(the state records its inputs: domain and reference time). Assistant tool
calls carry their ids and JSON-string arguments; tool results carry
``tool_call_id``. With reasoning kept, it goes in ``reasoning_content``.

Training shape decisions, shared by every format:
- The conversation ends at the assistant's last reply. What follows it (the
  user's closing thanks, or an unfinished tool round) teaches nothing.
- An assistant turn whose tool call was invalid, and was answered with an
  error, gets ``"weight": 0``: the model learns the recovery, not the mistake.
"""

from __future__ import annotations

import json
from typing import Any

from dialogforge.dataset.rules import call_violation
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message, ToolCall
from dialogforge.nodes.prompting import render


def system_prompt(state: DialogueState) -> str:
    """The system message the agent saw; a conversation that brought its own keeps that."""
    if state.messages and state.messages[0].role == "system":
        return state.messages[0].content
    return render("run_agent", domain=state.scenario.domain, reference_time=state.reference_time).strip()


def training_span(state: DialogueState) -> range:
    """Positions of the messages a trainer sees: no leading system message, nothing after the last reply."""
    start = 1 if state.messages and state.messages[0].role == "system" else 0
    replies = [i for i, m in enumerate(state.messages) if m.role == "assistant" and not m.tool_calls]
    return range(start, replies[-1] + 1 if replies else start)


def closing_message(state: DialogueState) -> str | None:
    """The user's final words after the last reply (the completion signal), if any."""
    after = [m for m in state.messages[training_span(state).stop :] if m.role == "user"]
    return after[-1].content if after else None


def masked_turns(state: DialogueState) -> set[int]:
    """Positions (in ``state.messages``) of assistant turns with an invalid, error-answered call."""
    specs = {tool.name: tool for tool in state.tools}
    return {i for i, m in enumerate(state.messages) if any(call_violation(specs, c) for c in m.tool_calls)}


def arguments_text(call: ToolCall) -> str:
    return call.raw_arguments if call.raw_arguments is not None else json.dumps(call.arguments, ensure_ascii=False)


def openai_message(m: Message, *, with_reasoning: bool, masked: bool) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    if m.role != "assistant":
        return {"role": m.role, "content": m.content}
    out: dict[str, Any] = {"role": "assistant", "content": m.content if (m.content or not m.tool_calls) else None}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments_text(c)}}
            for c in m.tool_calls
        ]
    if with_reasoning and m.reasoning:
        out["reasoning_content"] = m.reasoning
    if masked:
        out["weight"] = 0
    return out


def openai_record(state: DialogueState, *, with_reasoning: bool = False) -> dict[str, Any] | None:
    """The fine-tuning record, or None when the trajectory has no assistant reply to train on."""
    span = training_span(state)
    if not span:
        return None
    masked = masked_turns(state)
    messages = [{"role": "system", "content": system_prompt(state)}]
    messages += [openai_message(state.messages[i], with_reasoning=with_reasoning, masked=i in masked) for i in span]
    return {"messages": messages, "tools": [tool.openai_tool() for tool in state.tools]}


# ------------------------------------------------------------------ the format check

_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "reasoning_content", "weight"},
    "tool": {"role", "content", "tool_call_id"},
}


def check_openai_record(record: Any) -> list[str]:
    """Every way ``record`` breaks the chat fine-tuning shape; empty when it conforms."""
    if not isinstance(record, dict):
        return ["record is not an object"]
    problems = [f"unexpected top-level key {k!r}" for k in record if k not in {"messages", "tools", "parallel_tool_calls"}]
    problems += _check_tools(record.get("tools", []))
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return problems + ["messages must be a non-empty list"]
    pending: set[str] = set()
    for i, m in enumerate(messages):
        problems += [f"messages[{i}]: {p}" for p in _check_message(m, i, pending)]
    if pending:
        problems.append(f"tool calls without a result: {sorted(pending)}")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append("no assistant message")
    return problems


def _check_message(m: Any, index: int, pending: set[str]) -> list[str]:
    if not isinstance(m, dict) or m.get("role") not in _KEYS:
        return ["not a message with a known role"]
    role = m["role"]
    problems = [f"unexpected key {k!r} on a {role} message" for k in m if k not in _KEYS[role]]
    if role != "tool" and pending:
        problems.append(f"{role} message before every tool call was answered")
        pending.clear()
    if role in ("system", "user") and not (isinstance(m.get("content"), str) and m["content"]):
        problems.append(f"{role} content must be a non-empty string")
    if role == "system" and index != 0:
        problems.append("system message not first")
    if role == "tool":
        call_id = m.get("tool_call_id")
        if call_id not in pending:
            problems.append(f"tool_call_id {call_id!r} answers no open call")
        pending.discard(call_id)
        if not isinstance(m.get("content"), str):
            problems.append("tool content must be a string")
    if role == "assistant":
        problems += _check_assistant(m, pending)
    return problems


def _check_assistant(m: dict[str, Any], pending: set[str]) -> list[str]:
    problems = []
    content, calls = m.get("content"), m.get("tool_calls")
    if content is not None and not isinstance(content, str):
        problems.append("assistant content must be a string or null")
    if not content and not calls:
        problems.append("assistant message with neither content nor tool_calls")
    if m.get("weight", 1) not in (0, 1):
        problems.append("weight must be 0 or 1")
    if "reasoning_content" in m and not isinstance(m["reasoning_content"], str):
        problems.append("reasoning_content must be a string")
    for j, call in enumerate(calls or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(call, dict) and isinstance(call.get("id"), str) and call["id"] and call.get("type") == "function"
                and isinstance(fn, dict) and isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str)):
            problems.append(f"tool_calls[{j}] must be {{id, type: function, function: {{name, arguments: string}}}}")
            continue
        if call["id"] in pending:
            problems.append(f"tool call id {call['id']!r} repeated")
        pending.add(call["id"])
    return problems


def _check_tools(tools: Any) -> list[str]:
    if not isinstance(tools, list):
        return ["tools must be a list"]
    problems = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not (isinstance(tool, dict) and tool.get("type") == "function" and isinstance(fn, dict) and isinstance(fn.get("name"), str)):
            problems.append(f"tools[{i}] must be {{type: function, function: {{name, ...}}}}")
        elif not isinstance(fn.get("parameters", {}), dict):
            problems.append(f"tools[{i}].function.parameters must be an object")
    return problems
