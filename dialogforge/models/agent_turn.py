"""One agent step: the model with the tools bound, reasoning kept apart.

Reasoning models return their thinking beside the reply; it is stored on the
assistant message (``Message.reasoning``) so exports can keep or drop it.

Under the plain chat protocol (servers without native tool calls, such as the
embedded llama.cpp model) the agent writes its turn as an ``AgentStep`` JSON
object instead, constrained by a schema that lists each tool with its own
parameters, and the step becomes the same assistant message a native tool
call would have produced.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from string import Template

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import Field

from dialogforge.errors import ModelCallError
from dialogforge.models.call import invoke_chat
from dialogforge.models.convert import Sendable, reasoning_of, text_of, tool_calls_of, usage_of
from dialogforge.models.registry import RoleModel
from dialogforge.models.structured import generate_structured
from dialogforge.models.tool_wire import openai_tools
from dialogforge.records import JsonObject, Message, Strict, TokenUsage, ToolCall, ToolSpec

class PlannedToolCall(Strict):
    name: str = Field(min_length=1)
    arguments: JsonObject = Field(default_factory=dict)


class AgentStep(Strict):
    """The agent's turn written as JSON, for servers without native tool calls (plain chat protocol)."""

    reasoning: str = ""
    reply: str = ""
    tool_calls: list[PlannedToolCall] = Field(default_factory=list)



_EMPTY_NUDGE = "Your last reply was empty. Answer the user or call a tool."



@cache
def _plain_instruction() -> Template:
    """The plain protocol's instruction: a prompt file like the nodes' own, read on first use."""
    return Template(Path(__file__).with_name("plain_agent_step.md").read_text(encoding="utf-8"))


async def generate_agent_turn(
    model: RoleModel,
    messages: list[Sendable],
    tools: list[ToolSpec],
    *,
    seed: int,
    task_index: int | None,
) -> tuple[Message, TokenUsage]:
    if model.config.plain_chat():
        return await _plain_agent_turn(model, messages, tools, seed=seed, task_index=task_index)
    usage = TokenUsage()
    wire_tools = openai_tools(tools)
    conversation = list(messages)
    for _ in range(model.config.max_parse_retries + 1):
        kwargs: dict = {"seed": seed}
        if wire_tools:
            kwargs["tools"] = wire_tools
        try:
            reply = await invoke_chat(model, conversation, **kwargs)
        except ModelCallError as exc:
            exc.usage = usage if exc.usage is None else usage.plus(exc.usage)  # the empty replies before it
            raise
        usage = usage.plus(usage_of(reply))
        message = Message(
            role="assistant",
            content=text_of(reply).strip(),
            reasoning=reasoning_of(reply),
            tool_calls=tool_calls_of(reply),
            task_index=task_index,
        )
        if message.content or message.tool_calls:
            return message, usage
        conversation = [*conversation, HumanMessage(_EMPTY_NUDGE)]
    raise ModelCallError(f"{model.role}: empty reply (no text, no tool call) after retries", usage=usage)


async def _plain_agent_turn(
    model: RoleModel, messages: list[Sendable], tools: list[ToolSpec], *, seed: int, task_index: int | None
) -> tuple[Message, TokenUsage]:
    listing = "\n".join(f"- {t.function.name}: {t.function.description}" for t in tools) or "(none)"
    step, usage = await generate_structured(
        model, AgentStep, [*messages, SystemMessage(_plain_instruction().substitute(tools=listing))],
        seed=seed, check=_not_empty, json_schema=agent_step_schema(tools),
    )
    stem = hashlib.sha1(f"{seed} {len(messages)} {step.model_dump_json()}".encode()).hexdigest()[:12]
    calls = [ToolCall(id=f"call_{stem}_{i}", name=c.name, arguments=c.arguments) for i, c in enumerate(step.tool_calls)]
    message = Message(role="assistant", content=step.reply.strip(),
                      reasoning=step.reasoning.strip() or None, tool_calls=calls, task_index=task_index)
    return message, usage


def agent_step_schema(tools: list[ToolSpec]) -> dict:
    """AgentStep's JSON Schema with each tool call tied to one tool's name and parameters.

    A server that constrains decoding to the schema (llama.cpp turns it into a grammar)
    then cannot name a tool that does not exist or leave out a required argument.
    """
    calls = [{"type": "object", "properties": {"name": {"const": t.function.name},
                                               "arguments": t.function.parameters},
              "required": ["name", "arguments"]} for t in tools]
    # A reply is always written (a line for the user while tools run): a model constrained to the schema
    # could otherwise answer with nothing at all, the cheapest valid JSON, again and again.
    properties: dict = {"reasoning": {"type": "string"}, "reply": {"type": "string", "minLength": 1}}
    if calls:  # with no tools there is no tool_calls key at all: llama.cpp ignores an empty array's maxItems
        properties["tool_calls"] = {"type": "array", "items": {"anyOf": calls}}
    return {"title": "AgentStep", "type": "object", "properties": properties,
            "required": list(properties), "additionalProperties": False}


def _not_empty(step: AgentStep) -> str | None:
    if not step.reply.strip() and not step.tool_calls:
        return "both `reply` and `tool_calls` are empty; answer the user or call a tool"
    return None
