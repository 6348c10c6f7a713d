"""The scripted agent under the plain chat protocol (test equipment).

Under ``chat_protocol = "plain"`` the agent's turn is an ``AgentStep`` JSON object
and the conversation is user/assistant text only (``models.plain_chat``). This reads
such a conversation back into native form -- assistant JSON turns become tool calls,
``[tool result ...]`` user text becomes tool messages, the tools come from the
schema's per-tool branches -- so the one scripted agent decides for both protocols.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage


Decide = Callable[[list[BaseMessage], list[dict[str, Any]]], AIMessage]


def plain_agent_step(messages: list[BaseMessage], schema: dict[str, Any], decide: Decide) -> dict[str, Any]:
    tools = _tools(schema)
    if not tools:
        return {"reasoning": "", "reply": "Happy to help. Could you tell me a bit more?", "tool_calls": []}
    reply = decide(_native(messages), tools)
    return {
        "reasoning": reply.additional_kwargs.get("reasoning_content", ""),
        "reply": reply.text,
        "tool_calls": [{"name": c["name"], "arguments": c["args"]} for c in reply.tool_calls],
    }


def _tools(schema: dict[str, Any]) -> list[dict[str, Any]]:
    items = ((schema.get("properties") or {}).get("tool_calls") or {}).get("items") or {}
    tools = []
    for branch in items.get("anyOf") or []:
        props = branch.get("properties") or {}
        name = (props.get("name") or {}).get("const")
        if name:
            tools.append({"type": "function", "function": {"name": name, "parameters": props.get("arguments") or {}}})
    return tools


def _native(messages: list[BaseMessage]) -> list[BaseMessage]:
    native: list[BaseMessage] = []
    for i, message in enumerate(messages):
        text = message.text
        if isinstance(message, HumanMessage) and text.startswith("[tool result"):
            native.append(ToolMessage(content=text, tool_call_id=f"plain_{i}"))
        elif isinstance(message, AIMessage) and (calls := _calls(text)):
            native.append(AIMessage(content="", tool_calls=[
                {"id": f"plain_{i}_{k}", "name": c["name"], "args": c.get("arguments") or {}, "type": "tool_call"}
                for k, c in enumerate(calls)]))
        else:
            native.append(message)
    return native


def _calls(text: str) -> list[dict[str, Any]]:
    try:
        step = json.loads(text)
    except json.JSONDecodeError:
        return []
    calls = step.get("tool_calls") if isinstance(step, dict) else None
    return [c for c in calls if isinstance(c, dict) and c.get("name")] if isinstance(calls, list) else []
