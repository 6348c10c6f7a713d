"""The OpenAI chat-completions wire format, both ways, for the stub server.

A request's JSON messages become LangChain messages for the model that
answers; the model's AIMessage goes back as the exact OpenAI response (or
server-sent events when streamed), with ``reasoning_content`` and usage.
Kept apart from the server so each has one job.
"""

from __future__ import annotations

import json
import math
import uuid

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from dialogforge.testing.faults import Rejected

CHARS_PER_TOKEN = 3  # the emulated tokenizer (``prompt_tokens``)
# Request fields handed to ``model.ainvoke`` as keyword arguments when present.
PASSED_FIELDS = ("tools", "tool_choice", "response_format", "seed", "temperature", "max_tokens")


# --- request -> LangChain --------------------------------------------------


def _text(content: object) -> str:
    """Flatten OpenAI content (a string or a list of parts) to its text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    raise Rejected(f"message content must be a string or a list of parts, got {type(content).__name__}")


def _assistant(m: dict) -> AIMessage:
    calls, invalid = [], []
    for tc in m.get("tool_calls") or []:
        fn = tc.get("function") or {}
        raw = fn.get("arguments") or "{}"
        try:
            args = json.loads(raw)
        except json.JSONDecodeError:
            args = None
        if isinstance(args, dict):
            calls.append({"name": fn.get("name", ""), "args": args, "id": tc.get("id")})
        else:  # the client echoes what a model said, even unparsable arguments
            invalid.append({"name": fn.get("name"), "args": raw, "id": tc.get("id"), "error": None})
    extra = {k: m[k] for k in ("reasoning_content", "reasoning") if m.get(k)}
    return AIMessage(content=_text(m.get("content")), tool_calls=calls, invalid_tool_calls=invalid, additional_kwargs=extra)


def to_langchain_messages(messages: object) -> list[BaseMessage]:
    """OpenAI ``messages`` to LangChain messages; raises Rejected on what OpenAI would refuse."""
    if not isinstance(messages, list) or not messages:
        raise Rejected("'messages' must be a non-empty list")
    out: list[BaseMessage] = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role in ("system", "developer"):
            out.append(SystemMessage(_text(m.get("content"))))
        elif role == "user":
            out.append(HumanMessage(_text(m.get("content"))))
        elif role == "assistant":
            out.append(_assistant(m))
        elif role == "tool":
            if not m.get("tool_call_id"):
                raise Rejected(f"messages[{i}]: a tool message needs 'tool_call_id'")
            out.append(ToolMessage(_text(m.get("content")), tool_call_id=m["tool_call_id"]))
        else:
            raise Rejected(f"messages[{i}]: unsupported role {role!r}")
    return out


def model_kwargs(body: dict) -> dict:
    """The request fields the scripted model reads, as ``ainvoke`` keyword arguments."""
    kwargs = {k: body[k] for k in PASSED_FIELDS if body.get(k) is not None}
    # ChatOpenAI sends max_completion_tokens; the model sees one name.
    if "max_tokens" not in kwargs and body.get("max_completion_tokens") is not None:
        kwargs["max_tokens"] = body["max_completion_tokens"]
    return kwargs


def prompt_tokens(body: dict) -> int:
    """The emulated server's own count of a request's prompt, for its context limit and its usage.

    Its "tokenizer" is not dialogforge's estimate: characters, ``CHARS_PER_TOKEN`` to a
    token (denser than the estimate on prose, sparser on JSON), so a client must calibrate
    its count with the usage the server reports, as with a real model's tokenizer.
    """
    total = 0
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        text = _text(m.get("content")) + "".join(str(m.get(k) or "") for k in ("reasoning_content", "reasoning"))
        for tc in (c for c in m.get("tool_calls") or [] if isinstance(c, dict)):
            fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
            text += str(fn.get("name") or "") + str(fn.get("arguments") or "") + str(tc.get("id") or "")
        total += math.ceil(len(text) / CHARS_PER_TOKEN) + 4
    if body.get("tools"):
        total += math.ceil(len(json.dumps(body["tools"])) / CHARS_PER_TOKEN)
    return total


# --- LangChain -> response ---------------------------------------------------


def _estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def openai_message(ai: AIMessage, reasoning_field: str) -> dict:
    """The ``choices[0].message`` of an AIMessage (tool-call ids filled in when missing)."""
    message: dict = {"role": "assistant", "content": _text(ai.content) if ai.content or not ai.tool_calls else None}
    reasoning = ai.additional_kwargs.get("reasoning_content") or ai.additional_kwargs.get("reasoning")
    if reasoning:
        message[reasoning_field] = reasoning
    if ai.tool_calls:
        message["tool_calls"] = [
            {"id": tc.get("id") or f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": tc["name"], "arguments": json.dumps(tc["args"])}}
            for tc in ai.tool_calls
        ]  # fmt: skip
    return message


def usage_of(ai: AIMessage, message: dict, request_messages: list[BaseMessage]) -> dict:
    """Usage from the model's ``usage_metadata``, else a characters/4 estimate."""
    meta = ai.usage_metadata
    if meta:
        prompt, completion = meta["input_tokens"], meta["output_tokens"]
        reasoning = (meta.get("output_token_details") or {}).get("reasoning", 0)
    else:
        prompt = sum(_estimate_tokens(_text(m.content)) + 4 for m in request_messages)
        calls = "".join(tc["function"]["name"] + tc["function"]["arguments"] for tc in message.get("tool_calls", []))
        reasoning = _estimate_tokens(ai.additional_kwargs.get("reasoning_content") or "")
        completion = _estimate_tokens((message.get("content") or "") + calls) + reasoning
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "completion_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip


def _sse(obj: dict | str) -> bytes:
    return b"data: " + (obj if isinstance(obj, str) else json.dumps(obj)).encode() + b"\n\n"


def stream_events(head: dict, message: dict, finish: str, usage: dict | None, reasoning_field: str) -> bytes:
    """The SSE byte stream of one reply, chunked the way OpenAI-compatible servers do."""

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        return _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    parts = [chunk({"role": "assistant", "content": ""})]
    if message.get(reasoning_field):
        parts.append(chunk({reasoning_field: message[reasoning_field]}))
    content = message.get("content") or ""
    step = max(1, math.ceil(len(content) / 3))  # a few pieces: the client must concatenate
    parts += [chunk({"content": content[i : i + step]}) for i in range(0, len(content), step)]
    for i, tc in enumerate(message.get("tool_calls", [])):
        first = {"index": i, "id": tc["id"], "type": "function", "function": {"name": tc["function"]["name"], "arguments": ""}}
        parts.append(chunk({"tool_calls": [first]}))
        parts.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": tc["function"]["arguments"]}}]}))
    parts.append(chunk({}, finish))
    if usage is not None:
        parts.append(_sse({**head, "choices": [], "usage": usage}))
    parts.append(_sse("[DONE]"))
    return b"".join(parts)
