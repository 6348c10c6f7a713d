"""A seeded, role-aware chat model for tests, benchmarks and demos.

It answers from the request alone (messages, tools, response_format, seed),
exactly like a server would, so the same model drives the graph in-process
(``--backend scripted``) and behind the stub OpenAI-compatible server. Its
randomness is keyed on the seed and a digest of the conversation, so a
trajectory is reproducible whatever else runs concurrently.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from dialogforge.testing.json_instances import break_arguments, instance_of
from dialogforge.testing.scripted_plain import plain_agent_step
from dialogforge.testing.scripted_roles import ROLE_BY_SCHEMA, humanize
from dialogforge.tool_checks import first_violation

_CONTEXT_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.DOTALL)
_SCHEMA_NAME = re.compile(r"JSON object for the schema `(\w+)`")


class ScriptedChatModel(BaseChatModel):
    role: str = "any"
    invalid_argument_rate: float = 0.1

    @property
    def _llm_type(self) -> str:
        return "dialogforge-scripted"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        bound: dict[str, Any] = {"tools": [convert_to_openai_tool(t) for t in tools], **kwargs}
        if tool_choice is not None:
            bound["tool_choice"] = tool_choice
        return self.bind(**bound)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        rng = random.Random(_digest(kwargs.get("seed", 0), messages))
        forced = _forced_function(kwargs.get("tool_choice"))
        schema_name = forced or _schema_name(kwargs.get("response_format"), messages)
        if schema_name:
            payload = self._structured(schema_name, kwargs, messages, rng)
            if forced:
                reply = AIMessage(content="", tool_calls=[{"id": f"call_{rng.randrange(16**8):08x}", "name": forced, "args": payload, "type": "tool_call"}])
            else:
                reply = AIMessage(content=json.dumps(payload))
        elif kwargs.get("tools"):
            reply = _agent_step(messages, kwargs["tools"], rng, self.invalid_argument_rate, kwargs.get("seed", 0))
        else:
            reply = AIMessage(content="Happy to help. Could you tell me a bit more?")
        reply.usage_metadata = _usage(messages, reply)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)

    def _structured(self, name: str, kwargs: dict[str, Any], messages: list[BaseMessage], rng: random.Random) -> dict[str, Any]:
        if name == "AgentStep":
            return plain_agent_step(messages, _requested_schema(kwargs) or {}, lambda native, tools: _agent_step(
                native, tools, rng, self.invalid_argument_rate, kwargs.get("seed", 0)))
        context = _context(messages)
        produce = ROLE_BY_SCHEMA.get(name)
        if produce is not None:
            return produce(context, rng)
        schema = _requested_schema(kwargs) or {"type": "object"}
        return instance_of(schema, rng)


def _digest(seed: Any, messages: list[BaseMessage]) -> int:
    h = hashlib.blake2b(str(seed).encode(), digest_size=8)
    for m in messages:
        h.update(m.type.encode())
        h.update(str(m.content).encode())
    return int.from_bytes(h.digest(), "big")


def _forced_function(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict):
        return (tool_choice.get("function") or {}).get("name")
    return None


def _schema_name(response_format: Any, messages: list[BaseMessage]) -> str | None:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("name")
    if response_format.get("type") == "json_object":
        schema = response_format.get("schema") or {}
        if schema.get("title"):
            return schema["title"]
        for message in reversed(messages):
            found = _SCHEMA_NAME.search(str(message.content))
            if found:
                return found.group(1)
        return "object"
    return None


def _requested_schema(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    fmt = kwargs.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    return fmt.get("schema")


def _context(messages: list[BaseMessage]) -> dict[str, Any]:
    """The last JSON context block a node put in its prompt."""
    for message in reversed(messages):
        blocks = _CONTEXT_BLOCK.findall(str(message.content))
        if blocks:
            return json.loads(blocks[-1])
    return {}


def _agent_step(messages: list[BaseMessage], tools: list[dict[str, Any]], rng: random.Random, invalid_rate: float, seed: Any) -> AIMessage:
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    request = str(messages[last_user].content) if last_user >= 0 else ""
    since = messages[last_user + 1 :]
    rounds_done = sum(1 for m in since if isinstance(m, AIMessage) and m.tool_calls)
    bullets = request.count("\n- ")
    stable = random.Random(f"{seed}|{request}")  # the plan must not change between rounds
    target = bullets + stable.randint(0, 1) if bullets else stable.choice([0, 1, 1, 2, 2, 3])
    if rounds_done < target:
        return _call_tools(request, tools, rng, invalid_rate, messages)
    results = [str(m.content)[:160] for m in since if isinstance(m, ToolMessage)]
    summary = f" Here is what I found: {results[-1]}" if results else ""
    reasoning = f"The user asked: {request[:120]!r}. I made {rounds_done} tool round(s); time to answer."
    return AIMessage(
        content=f"Done.{summary} Is there anything else I can help with?",
        additional_kwargs={"reasoning_content": reasoning},
    )


def _call_tools(request: str, tools: list[dict[str, Any]], rng: random.Random, invalid_rate: float,
                messages: list[BaseMessage]) -> AIMessage:
    """Calls for the request. Like a real agent it mostly uses ids that earlier results showed,
    invents one now and then (which an honest backend does not find), and once in a while
    repeats an earlier call (a re-check, or a double submit)."""
    functions = [t["function"] for t in tools if isinstance(t, dict) and "function" in t]
    relevant = [f for f in functions if humanize(f["name"]) in request] or functions
    seen = _seen_values(messages)
    earlier = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls
               if any(f["name"] == c["name"] for f in functions)]
    calls = []
    for _ in range(2 if rng.random() < 0.2 else 1):
        if earlier and rng.random() < 0.05:
            again = rng.choice(earlier)
            calls.append({"id": f"call_{rng.randrange(16**8):08x}", "name": again["name"], "args": again["args"], "type": "tool_call"})
            continue
        fn = _look_first(rng.choice(relevant), functions, seen, rng)
        schema = fn.get("parameters") or {"type": "object"}
        hints = {}
        for name, prop in (schema.get("properties") or {}).items():
            fitting = [v for v in seen.get(name, []) if first_violation(prop, v) is None] if name.endswith("_id") else []
            if fitting and rng.random() < 0.8:
                hints[name] = rng.choice(fitting)
        args = instance_of(schema, rng, hints=hints)
        if rng.random() < invalid_rate:
            args = break_arguments(args, schema, rng)
        calls.append({"id": f"call_{rng.randrange(16**8):08x}", "name": fn["name"], "args": args, "type": "tool_call"})
    names = ", ".join(c["name"] for c in calls)
    return AIMessage(content="", tool_calls=calls, additional_kwargs={"reasoning_content": f"I should call {names} to make progress on: {request[:100]!r}."})


def _look_first(fn: dict[str, Any], functions: list[dict[str, Any]], seen: dict[str, list[Any]], rng: random.Random) -> dict[str, Any]:
    """A call that needs an id nothing has shown yet becomes, mostly, a search or create of that kind."""
    required = (fn.get("parameters") or {}).get("required") or []
    missing = [name for name in required if name.endswith("_id") and not seen.get(name)]
    if not missing or rng.random() >= 0.7:
        return fn
    noun = missing[0][: -len("_id")]
    finders = [f for f in functions if f["name"] in (f"search_{noun}", f"create_{noun}")]
    return rng.choice(finders) if finders else fn


def _seen_values(messages: list[BaseMessage]) -> dict[str, list[Any]]:
    """Values by key in the JSON of earlier tool results (ids to reuse), oldest first."""
    seen: dict[str, list[Any]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, (str, int)) and not isinstance(item, bool) and item not in seen.setdefault(key, []):
                    seen[key].append(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for message in messages:
        if isinstance(message, ToolMessage):
            text = str(message.content)
            start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
            if start >= 0:
                try:
                    walk(json.JSONDecoder().raw_decode(text[start:])[0])
                except ValueError:
                    pass
    return seen


def _usage(messages: list[BaseMessage], reply: AIMessage) -> dict[str, Any]:
    prompt = sum(len(str(m.content)) for m in messages) // 4 + 1
    cached = sum(len(str(m.content)) for m in messages[:-1]) // 4  # what a prefix cache would hold: all but the newest
    reasoning = len(reply.additional_kwargs.get("reasoning_content", "")) // 4
    completion = len(str(reply.content)) // 4 + len(json.dumps([c["args"] for c in reply.tool_calls])) // 4 + reasoning + 1
    return {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
        "output_token_details": {"reasoning": reasoning},
        "input_token_details": {"cache_read": cached},
    }
