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


def to_langchain(messages: list[Message], *, reasoning_from: int | None = None) -> list[BaseMessage]:
    """LangChain messages for a request. Assistant turns from position ``reasoning_from`` of the
    list on carry their reasoning (``additional_kwargs["reasoning_content"]``, which the client
    sends in the field its endpoint reads): the current tool loop's, for interleaved thinking.
    A call whose arguments were not a JSON object goes back as the model wrote it."""
    return [
        _with_reasoning(m) if m.reasoning and reasoning_from is not None and k >= reasoning_from else _plain(m)
        for k, m in enumerate(messages)
    ]


def _convert(message: Message, reasoning: bool) -> BaseMessage:
    if message.role == "system":
        return SystemMessage(message.content)
    if message.role == "user":
        return HumanMessage(message.content)
    if message.role == "assistant":
        return AIMessage(
            content=message.content,
            tool_calls=[
                {"id": c.id, "name": c.name, "args": c.arguments, "type": "tool_call"}
                for c in message.tool_calls if c.raw_arguments is None
            ],
            invalid_tool_calls=[
                {"id": c.id, "name": c.name, "args": c.raw_arguments, "error": None, "type": "invalid_tool_call"}
                for c in message.tool_calls if c.raw_arguments is not None
            ],
            additional_kwargs={"reasoning_content": message.reasoning} if reasoning and message.reasoning else {},
        )
    return ToolMessage(
        content=message.content,
        tool_call_id=message.tool_call_id or "",
        name=message.name,
    )


# Shared by every call that sends the message (nothing mutates either side); an assistant turn
# inside the current tool loop goes with its reasoning, earlier ones without: two forms.
_plain: ByIdentity[Message, BaseMessage] = ByIdentity(lambda m: _convert(m, reasoning=False))
_with_reasoning: ByIdentity[Message, BaseMessage] = ByIdentity(lambda m: _convert(m, reasoning=True))


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
    prompt = int(meta.get("input_tokens") or 0)
    cached = int((meta.get("input_token_details") or {}).get("cache_read") or 0)  # prompt_tokens_details.cached_tokens
    return TokenUsage(
        prompt=prompt,
        completion=int(meta.get("output_tokens") or 0),
        reasoning=int(details.get("reasoning") or 0),
        calls=1,
        cached=min(max(cached, 0), prompt),
    )
