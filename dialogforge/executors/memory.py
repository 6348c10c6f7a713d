"""What the tool simulator remembers when it answers a call: the world, earlier calls, the user's words.

A backend that forgets teaches an agent that facts drift, so the simulator
is given the data of every earlier call of the trajectory (arguments and
result, reads and errors included), the world's entities, and everything
the user said (facts and times the user states win), as long as the whole
request fits ``ToolSimulation.context_tokens``. The budget counts the
request the simulator is sent: its instructions plus the context block, each
estimated by ``dialogforge.tokens`` with its per-message overhead. (A server
without ``json_schema`` support is also sent the answer's schema, some 600
tokens more; a retry adds the rejected answer and the reason.)

Past the budget, items are kept in this order, each group newest first:
entities related to the call, earlier calls related to it, the user's
statements, the other entities, the other earlier calls. An item is related
when it shares an identifying value with the call: an entity id, or any
argument value that can name something (a string of 3+ characters that is
not a closed choice of the schema, or a number under an ``*_id`` key). The
context says how many items of each section were left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

from pydantic import JsonValue

from dialogforge.executors.contract import Trajectory
from dialogforge.executors.world import Entity, World
from dialogforge.prompts import context_block
from dialogforge.records import Message, ToolCall, ToolSpec
from dialogforge.tokens import MESSAGE_OVERHEAD, estimate_tokens

_ID_KEY = re.compile(r"(^|_)ids?$|[a-z]Ids?$")
_DECODER = json.JSONDecoder()


@dataclass
class _Item:
    section: str  # "world", "earlier_calls" or "user_statements"
    order: int  # position when rendered (oldest first)
    value: Any
    # Counted only when the whole does not fit:
    related: bool = False
    tokens: int = 0

    def measure(self, values: set[str]) -> None:
        if self.section == "world":
            entity: Entity = self.value
            self.related = entity.id in values or any(leaf in values for leaf in leaves(entity.fields))
            self.tokens = _tokens({entity.id: entity.fields})
        else:
            self.related = self.section == "earlier_calls" and any(leaf in values for leaf in leaves(self.value))
            self.tokens = _tokens(self.value)


def simulator_context(state: Trajectory, spec: ToolSpec, call: ToolCall, world: World, *,
                      instructions: str, budget: int) -> dict[str, Any]:
    """The simulator's context for ``call``: the call itself always, memory as the budget allows."""
    calls = earlier_calls(state.messages, call)
    context: dict[str, Any] = {
        "call_number": len(calls) + 1,
        "tool": spec.name,
        "description": spec.function.description,
        "arguments": call.arguments,
        "result_schema": spec.result_schema,
        "reference_time": state.reference_time,
    }
    if state.world:
        context["background"] = state.world  # a world the conversation started from (e.g. BFCL's initial_config)
    users = [m.content for m in state.messages if m.role == "user" and m.content]
    items = [*(_Item("world", i, entity) for i, entity in enumerate(world.entities.values())),
             *(_Item("earlier_calls", c["n"], c) for c in calls),
             *(_Item("user_statements", i, text) for i, text in enumerate(users))]
    whole = _render(context, items, items)
    if _request_tokens(instructions, whole) <= budget:  # the common case: everything fits, one count
        return whole
    values = identifying_values(call.arguments, spec.function.parameters)
    for item in items:
        item.measure(values)
    fixed = _request_tokens(instructions, _render(context, items, []))
    kept = _fit(items, budget - fixed)
    rendered = _render(context, items, kept)
    excess = _request_tokens(instructions, rendered) - budget
    while kept and excess > 0:  # the per-item sums are estimates of the whole too: drop the lowest-ranked
        while kept and excess > 0:
            excess -= kept.pop().tokens
        rendered = _render(context, items, kept)
        excess = _request_tokens(instructions, rendered) - budget
    return rendered


def earlier_calls(messages: list[Message], current: ToolCall) -> list[dict[str, Any]]:
    """Every answered call before ``current``, numbered from 1 in trajectory order."""
    answers = {m.tool_call_id: m for m in messages if m.role == "tool"}
    out: list[dict[str, Any]] = []
    number = 0
    for message in messages:
        for c in message.tool_calls:
            number += 1
            answer = answers.get(c.id)
            if answer is None:
                if c.id == current.id:
                    return out
                continue
            entry: dict[str, Any] = {"n": number, "tool": c.name,
                                     "arguments": c.arguments if c.raw_arguments is None else c.raw_arguments}
            value, note = parse_content(answer.content)
            entry["error" if answer.is_error else "result"] = value
            if note:
                entry["note"] = note
            out.append(entry)
    return out


def parse_content(text: str) -> tuple[JsonValue, str | None]:
    """A tool message's JSON value, and any marker line after it (a cut result); text that is not JSON as is."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return text, None
    rest = text[end:].strip()
    return value, rest or None


def identifying_values(arguments: dict[str, Any], parameters: dict[str, Any]) -> set[str]:
    """The argument values that can name something (see the module docstring)."""
    closed = {name for name, prop in (parameters.get("properties") or {}).items()
              if isinstance(prop, dict) and ("enum" in prop or "const" in prop or prop.get("type") == "boolean")}
    return {leaf for name, value in arguments.items() if name not in closed for leaf in leaves(value, name)}


def leaves(value: Any, key: str = "") -> Iterator[str]:
    """The identifying scalars inside a JSON value, as text."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, key)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) >= 3 or (text and _ID_KEY.search(key)):
            yield text
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and _ID_KEY.search(key):
        yield str(value)


def _fit(items: list[_Item], room: int) -> list[_Item]:
    """The items that fit in ``room`` tokens, highest priority first."""
    def rank(item: _Item) -> tuple[int, int]:
        group = {"world": 0, "earlier_calls": 1, "user_statements": 2}[item.section]
        tier = group if item.related or item.section == "user_statements" else group + 3
        return tier, -item.order
    kept = []
    for item in sorted(items, key=rank):
        if item.tokens <= room:
            kept.append(item)
            room -= item.tokens
    return kept


def _render(base: dict[str, Any], items: list[_Item], kept: list[_Item]) -> dict[str, Any]:
    context = dict(base)
    by_section: dict[str, list[_Item]] = {}
    for item in kept:
        by_section.setdefault(item.section, []).append(item)
    entities = sorted(by_section.get("world", []), key=lambda i: i.order)
    world: dict[str, dict[str, Any]] = {}
    deleted: dict[str, list[str]] = {}
    for item in entities:
        entity: Entity = item.value
        if entity.deleted:
            deleted.setdefault(entity.kind, []).append(entity.id)
        else:
            world.setdefault(entity.kind, {})[entity.id] = entity.fields
    context["world"] = world
    if deleted:
        context["deleted"] = deleted
    context["earlier_calls"] = [i.value for i in sorted(by_section.get("earlier_calls", []), key=lambda i: i.order)]
    context["user_statements"] = [i.value for i in sorted(by_section.get("user_statements", []), key=lambda i: i.order)]
    omitted = {section: n for section in ("world", "earlier_calls", "user_statements")
               if (n := sum(1 for i in items if i.section == section) - len(by_section.get(section, [])))}
    if omitted:  # the simulator must know its memory is partial: an id it cannot see may still exist
        context["omitted_for_length"] = omitted
    return context


def _tokens(value: Any) -> int:
    return estimate_tokens(json.dumps(value, ensure_ascii=False, indent=1)) + 1


def _request_tokens(instructions: str, context: dict[str, Any]) -> int:
    return estimate_tokens(instructions) + estimate_tokens("Context:\n" + context_block(context)) + 2 * MESSAGE_OVERHEAD
