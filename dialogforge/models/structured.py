"""Structured output that works on any server.

Servers differ: vLLM and OpenAI take ``json_schema``; llama.cpp takes
``json_object`` with a ``schema`` field; some only do tool calling. ``auto``
tries them in that order and remembers what worked per role. Whatever the
method, the text is validated with pydantic, and an invalid answer is retried
with the validation error fed back, a bounded number of times.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Callable, TypeVar

import openai
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ValidationError

from dialogforge.config import StructuredMethod
from dialogforge.errors import ContextOverflowError, ModelCallError
from dialogforge.models.call import invoke_chat
from dialogforge.models.convert import Sendable, text_of, usage_of
from dialogforge.models.grammar_bounds import embedded_schema
from dialogforge.models.registry import RoleModel
from dialogforge.records import TokenUsage

T = TypeVar("T", bound=BaseModel)

# A semantic check beyond the pydantic schema; returns an error text or None.
Check = Callable[[BaseModel], str | None]

_FALLBACK_ORDER = [
    StructuredMethod.JSON_SCHEMA,
    StructuredMethod.JSON_OBJECT,
    StructuredMethod.TOOL_CALLING,
]
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class InvalidOutput(ValueError):
    """The model answered, but not with a valid instance of the schema."""


async def generate_structured(
    model: RoleModel,
    schema: type[T],
    messages: list[Sendable],
    *,
    seed: int,
    check: Check | None = None,
    json_schema: dict | None = None,
) -> tuple[T, TokenUsage]:
    """``json_schema`` narrows what is asked for beyond the class (e.g. the agent's tool names)."""
    usage = TokenUsage()
    conversation = list(messages)
    attempts = model.config.max_parse_retries + 1
    error = ""
    for _ in range(attempts):
        try:
            reply = await _ask(model, schema, json_schema or _json_schema(schema), conversation, seed)
        except ModelCallError as exc:
            exc.usage = usage if exc.usage is None else usage.plus(exc.usage)  # the invalid answers before it
            raise
        usage = usage.plus(usage_of(reply))
        try:
            return _parse(schema, reply, check), usage
        except InvalidOutput as exc:
            error = str(exc)
        conversation += [
            AIMessage(text_of(reply) or _tool_args_text(reply)),
            HumanMessage(
                f"That answer was invalid: {error}\n"
                f"Reply again with only a corrected JSON object for {schema.__name__}."
            ),
        ]
    raise ModelCallError(
        f"{model.role}: invalid {schema.__name__} output after {attempts} attempts: {error[:300]}", usage=usage
    )


async def _ask(model: RoleModel, schema: type[BaseModel], json_schema: dict, messages: list[Sendable],
               seed: int) -> AIMessage:
    """Ask once, walking down the method list while the server refuses a method."""
    memory = model.method_memory
    methods = _methods_for(model)
    start = methods.index(memory["method"]) if memory.get("method") in methods else 0
    for method in methods[start:]:
        try:
            reply = await _ask_with(model, method, schema.__name__, schema.__doc__, json_schema, messages, seed)
        except ModelCallError as exc:
            # A request refused as too long is refused by every method: the caller shortens it.
            refused = isinstance(exc.__cause__, openai.BadRequestError) and not isinstance(exc, ContextOverflowError)
            if refused and method is not methods[-1]:
                continue
            raise
        memory["method"] = method
        return reply
    raise ModelCallError(f"{model.role}: no structured-output method was accepted")


def _methods_for(model: RoleModel) -> list[StructuredMethod]:
    configured = model.config.structured_method
    if configured is not StructuredMethod.AUTO:
        return [configured]
    if model.config.plain_chat():  # no native tool calls to fall back on
        return [StructuredMethod.JSON_OBJECT]
    return list(_FALLBACK_ORDER)


async def _ask_with(
    model: RoleModel,
    method: StructuredMethod,
    name: str,
    description: str | None,
    json_schema: dict,
    messages: list[Sendable],
    seed: int,
) -> AIMessage:
    if method is StructuredMethod.JSON_SCHEMA:
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": json_schema, "strict": False},
        }
        return await invoke_chat(model, messages, response_format=response_format, seed=seed)
    if method is StructuredMethod.JSON_OBJECT:
        response_format: dict = {"type": "json_object"}
        if model.config.plain_chat():  # llama.cpp's way to constrain decoding to the schema
            # The embedded model's answers must end within its small max_tokens.
            response_format["schema"] = embedded_schema(json_schema) if model.config.backend == "local" else json_schema
        instruction = SystemMessage(
            f"Respond with only a JSON object for the schema `{name}`:\n"
            f"{json.dumps(json_schema, separators=(',', ':'))}"
        )
        return await invoke_chat(model, [*messages, instruction], response_format=response_format, seed=seed)
    tool = {"type": "function", "function": {"name": name, "description": description or name, "parameters": json_schema}}
    return await invoke_chat(
        model, messages, tools=[tool], tool_choice={"type": "function", "function": {"name": name}}, seed=seed
    )


def _parse(schema: type[T], reply: AIMessage, check: Check | None) -> T:
    if reply.tool_calls:
        payload: object = reply.tool_calls[0].get("args") or {}
    else:
        text = _FENCE.sub("", text_of(reply).strip())
        if not text:
            raise InvalidOutput("the reply was empty")
        try:
            payload = json.loads(text, strict=False)  # small models put raw newlines inside strings
        except json.JSONDecodeError as exc:
            if reply.response_metadata.get("finish_reason") == "length":
                raise InvalidOutput("the answer was cut off at the token limit; give a shorter one") from exc
            raise InvalidOutput(f"not JSON ({exc.msg} at position {exc.pos})") from exc
    try:
        value = schema.model_validate(payload)
    except ValidationError as exc:
        raise InvalidOutput(_summarize(exc)) from exc
    problem = check(value) if check else None
    if problem:
        raise InvalidOutput(problem)
    return value


@cache
def _json_schema(schema: type[BaseModel]) -> dict:
    """A schema class's JSON Schema, built once: pydantic rebuilds it on every call (~6 ms)."""
    return schema.model_json_schema()


def _summarize(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)


def _tool_args_text(reply: AIMessage) -> str:
    if reply.tool_calls:
        return json.dumps(reply.tool_calls[0].get("args") or {})
    return ""
