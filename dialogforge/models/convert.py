"""Translation between our message records and what a chat request carries.

Our ``Message`` is what a checkpoint and an export hold. A request is a list
of ``Sendable``: a record (sent without its reasoning), a record to send with
its reasoning (``WithReasoning``: the current tool loop's assistant turns), a
wire dict (an OpenAI message, as the user simulator's transcript lines are
kept) or a LangChain message (a prompt made for this call). Our OpenAI client
is sent each record's wire form, made once in the record's life
(``wire_of``): the history is the same records from call to call, and a
LangChain object kept beside each wire dict was a kilobyte per message of
every dialogue in flight (issue 23). Other chat models (the embedded one, the
scripted test model) are given LangChain messages made for the call
(``langchain_of``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)

from dialogforge.compat.openai_chat import to_wire
from dialogforge.identity import ByIdentity
from dialogforge.records import Message, TokenUsage, ToolCall


class WithReasoning(NamedTuple):
    """An assistant record sent with its reasoning (interleaved thinking, inside its tool loop)."""

    message: Message


Sendable = BaseMessage | Message | WithReasoning | dict[str, Any]


def history(messages: Sequence[Message], *, reasoning_from: int | None = None) -> list[Message | WithReasoning]:
    """A request's history: assistant turns from position ``reasoning_from`` of the list on carry
    their reasoning (which the client sends in the field its endpoint reads)."""
    if reasoning_from is None:
        return list(messages)
    return [WithReasoning(m) if m.reasoning and k >= reasoning_from and m.role == "assistant" else m
            for k, m in enumerate(messages)]


def to_langchain(messages: list[Message], *, reasoning_from: int | None = None) -> list[BaseMessage]:
    """LangChain messages for a request (``history`` made for a LangChain chat model). A call
    whose arguments were not a JSON object goes back as the model wrote it."""
    return langchain_of(history(messages, reasoning_from=reasoning_from))


def langchain_of(items: Sequence[Sendable]) -> list[BaseMessage]:
    """The request as LangChain messages, made for this call."""
    out: list[BaseMessage] = []
    for item in items:
        if isinstance(item, Message):
            out.append(_convert(item, reasoning=False))
        elif isinstance(item, WithReasoning):
            out.append(_convert(item.message, reasoning=True))
        elif isinstance(item, dict):
            out.extend(convert_to_messages([item]))
        else:
            out.append(item)
    return out


def wire_of(items: Sequence[Sendable], field: str | None) -> list[BaseMessage | dict[str, Any]]:
    """The request for our OpenAI client (``ReasoningChatOpenAI.acomplete``): records as their wire
    dicts, reasoning in ``field`` (None: reasoning is not sent); the rest as it is."""
    out: list[BaseMessage | dict[str, Any]] = []
    for item in items:
        if isinstance(item, Message):
            out.append(_wire(item))
        elif isinstance(item, WithReasoning):
            out.append(_reasoned_wire(item.message, field) if field else _wire(item.message))
        else:
            out.append(item)
    return out


def wire_text(role: Literal["user", "assistant"], text: str) -> dict[str, Any]:
    """A plain text message (``user`` or ``assistant``) as a wire dict, the exact form ChatOpenAI
    sends: for a request line derived from a record and kept with it (the user simulator's)."""
    return to_wire(HumanMessage(text) if role == "user" else AIMessage(text))


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


# A record's wire dict, the LangChain message it is made from dropped at once. Shared by every call
# that sends the record: never mutate.
_wire: ByIdentity[Message, dict[str, Any]] = ByIdentity(lambda m: to_wire(_convert(m, reasoning=False)))
# An assistant turn's wire dict with its reasoning, by field: made while its tool loop goes on.
_reasoned: ByIdentity[Message, dict[str, dict[str, Any]]] = ByIdentity(lambda _m: {})


def _reasoned_wire(message: Message, field: str) -> dict[str, Any]:
    made = _reasoned(message)
    found = made.get(field)
    if found is None:
        found = made[field] = {**_wire(message), field: message.reasoning}
    return found


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
