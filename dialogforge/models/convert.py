"""Translation between our message records and LangChain's message types.

Our ``Message`` is what a checkpoint and an export hold; LangChain messages
exist only to make calls. A message's LangChain form is made once in its life
(the history is the same objects from call to call), not once per call.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from dialogforge.identity import ByIdentity
from dialogforge.records import Message, TokenUsage, ToolCall


def to_langchain(messages: list[Message]) -> list[BaseMessage]:
    return [_langchain_message(message) for message in messages]


def _convert(message: Message) -> BaseMessage:
    if message.role == "system":
        return SystemMessage(message.content)
    if message.role == "user":
        return HumanMessage(message.content)
    if message.role == "assistant":
        return AIMessage(
            content=message.content,
            tool_calls=[
                {"id": c.id, "name": c.name, "args": c.arguments, "type": "tool_call"}
                for c in message.tool_calls
            ],
        )
    return ToolMessage(
        content=message.content,
        tool_call_id=message.tool_call_id or "",
        name=message.name,
    )


# Shared by every call that sends the message (nothing mutates either side).
_langchain_message: ByIdentity[Message, BaseMessage] = ByIdentity(_convert)


def reasoning_of(reply: AIMessage) -> str | None:
    """Reasoning text, wherever the server put it (vLLM, SGLang, DeepSeek, OpenRouter)."""
    extra = reply.additional_kwargs
    text = extra.get("reasoning_content") or extra.get("reasoning")
    if not text:
        blocks = [
            b.get("reasoning") or b.get("text") or ""
            for b in (reply.content if isinstance(reply.content, list) else [])
            if isinstance(b, dict) and b.get("type") in {"reasoning", "thinking"}
        ]
        text = "\n".join(b for b in blocks if b)
    return text or None


def text_of(reply: AIMessage) -> str:
    if isinstance(reply.content, str):
        return reply.content
    return "".join(
        b.get("text", "") if isinstance(b, dict) and b.get("type") == "text" else
        (b if isinstance(b, str) else "")
        for b in reply.content
    )


def tool_calls_of(reply: AIMessage) -> list[ToolCall]:
    calls = [_tool_call(c.get("id") or f"call_{i}", c["name"], dict(c.get("args") or {})) for i, c in enumerate(reply.tool_calls)]
    for i, bad in enumerate(reply.invalid_tool_calls):
        calls.append(
            ToolCall(
                id=bad.get("id") or f"call_invalid_{i}",
                name=bad.get("name") or "",
                raw_arguments=bad.get("args") if isinstance(bad.get("args"), str) else json.dumps(bad.get("args")),
            )
        )
    return calls


def _tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> ToolCall:
    """A call whose arguments hold a lone surrogate (JSON ``"\\ud800"``) is not valid text:
    stored as its exact JSON (ASCII-escaped, so nothing is lost -- the checkpoint encoder
    would silently turn the surrogate into "?") and refused like malformed arguments."""
    if _has_lone_surrogate(arguments):
        return ToolCall(id=call_id, name=name, raw_arguments=json.dumps(arguments))
    return ToolCall(id=call_id, name=name, arguments=arguments)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def usage_of(reply: AIMessage) -> TokenUsage:
    meta = reply.usage_metadata or {}
    details = meta.get("output_token_details") or {}
    return TokenUsage(
        prompt=int(meta.get("input_tokens") or 0),
        completion=int(meta.get("output_tokens") or 0),
        reasoning=int(details.get("reasoning") or 0),
        calls=1,
    )
