"""A checker for one line of an OpenAI chat fine-tuning file, written from the API's schema.

``FineTuneChatRequestInput`` (the per-line training example, supervised method):
``messages`` (system, user, assistant, tool, or the deprecated function
messages), ``tools`` (``ChatCompletionTool``), ``parallel_tool_calls`` (bool) and
the deprecated ``functions``. The assistant message is
``FineTuneChatCompletionRequestAssistantMessage``: role, content (string, parts
or null), refusal, name, audio, tool_calls, function_call, weight (0 or 1);
nothing else, so no reasoning. Function names are ``^[a-zA-Z0-9_-]{1,64}$``; a
tool call is ``{id, type: "function", function: {name, arguments: string}}``.
On top of the schema, what training on it needs: every call answered by a tool
message before the conversation goes on, and at least one assistant message.
"""

from __future__ import annotations

import re
from typing import Any

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOP_LEVEL = {"messages", "tools", "parallel_tool_calls", "functions"}
KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "refusal", "name", "audio", "tool_calls", "function_call", "weight"},
    "tool": {"role", "content", "tool_call_id"},
}


def check_finetune_line(record: Any) -> list[str]:
    """Every way ``record`` breaks the fine-tuning input schema; empty when it conforms."""
    if not isinstance(record, dict):
        return ["record is not an object"]
    problems = [f"unexpected top-level key {k!r}" for k in record if k not in TOP_LEVEL]
    if "parallel_tool_calls" in record and not isinstance(record["parallel_tool_calls"], bool):
        problems.append("parallel_tool_calls must be a boolean")
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
    parallel = any(isinstance(m, dict) and len(m.get("tool_calls") or []) > 1 for m in messages)
    if parallel and record.get("parallel_tool_calls") is not True:
        problems.append("parallel calls without parallel_tool_calls: true")
    return problems


def _check_message(m: Any, index: int, pending: set[str]) -> list[str]:
    if not isinstance(m, dict) or m.get("role") not in KEYS:
        return ["not a message with a known role"]
    role = m["role"]
    problems = [f"unexpected key {k!r} on a {role} message" for k in m if k not in KEYS[role]]
    if role != "tool" and pending:
        problems.append(f"{role} message before every tool call was answered")
        pending.clear()
    if role in ("system", "user") and not (isinstance(m.get("content"), str) and m["content"]):
        problems.append(f"{role} content must be a non-empty string")
    if role == "system" and index != 0:
        problems.append("system message not first")
    if "name" in m and not isinstance(m["name"], str):
        problems.append("name must be a string")
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
    if "weight" in m and m["weight"] not in (0, 1):
        problems.append("weight must be 0 or 1")
    if calls is not None and not (isinstance(calls, list) and calls):
        problems.append("tool_calls must be a non-empty list")
        calls = []
    for j, call in enumerate(calls or []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(call, dict) and set(call) == {"id", "type", "function"} and isinstance(call["id"], str)
                and call["id"] and call["type"] == "function" and isinstance(fn, dict) and set(fn) == {"name", "arguments"}
                and isinstance(fn["name"], str) and isinstance(fn["arguments"], str)):
            problems.append(f"tool_calls[{j}] must be {{id, type: function, function: {{name, arguments: string}}}}")
            continue
        if not NAME.match(fn["name"]):
            problems.append(f"tool_calls[{j}] function name {fn['name']!r} does not match {NAME.pattern}")
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
        if not (isinstance(tool, dict) and set(tool) == {"type", "function"} and tool["type"] == "function"
                and isinstance(fn, dict) and isinstance(fn.get("name"), str)):
            problems.append(f"tools[{i}] must be {{type: function, function: {{name, ...}}}}")
            continue
        if set(fn) - {"name", "description", "parameters", "strict"}:
            problems.append(f"tools[{i}].function has unexpected keys {sorted(set(fn) - {'name', 'description', 'parameters', 'strict'})}")
        if not NAME.match(fn["name"]):
            problems.append(f"tools[{i}] name {fn['name']!r} does not match {NAME.pattern}")
        if not isinstance(fn.get("parameters", {}), dict):
            problems.append(f"tools[{i}].function.parameters must be an object")
    return problems
