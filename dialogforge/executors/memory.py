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

A long dialogue's request is tens of thousands of characters, rebuilt at
every call, so the work is kept to one rendering of what is sent: an earlier
call's or a user statement's token count and identifying values are measured
once per message (``dialogforge.identity``), the whole is rendered and
counted only when the items' own counts leave a chance that it fits, and the
text counted is the text sent (``simulator_request``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

from pydantic import JsonValue

from dialogforge.executors.contract import Trajectory
from dialogforge.executors.world import Entity, World
from dialogforge.identity import ByIdentity
from dialogforge.jsontext import indented, nest
from dialogforge.records import Message, ToolCall, ToolSpec
from dialogforge.tokens import MESSAGE_OVERHEAD, estimate_tokens

_ID_KEY = re.compile(r"(^|_)ids?$|[a-z]Ids?$")
_DECODER = json.JSONDecoder()
# How far below the sum of its items' own counts the whole's count can be, per item and in all
# (nesting, separators, the omitted-items note): a sum past the budget by more cannot fit.
_SLACK_PER_ITEM, _SLACK = 8, 64
_SEP = "\x1f"  # between the identifying values of an item (``_Values``)


class _Values:
    """An earlier result's identifying values, kept for as long as its message as one string.

    A set of them held each value as a string of its own plus its slot in a hash table: over a
    kilobyte per earlier result, the largest part of what a dialogue in flight held for the tool
    simulator (issue 23). Joined between separators, a value is among them exactly when it
    occurs with a separator either side; values of which one holds the separator keep the set.
    """

    __slots__ = ("joined", "exact")

    def __init__(self, values: Iterator[str]) -> None:
        distinct = set(values)
        self.exact: frozenset[str] | None = None
        self.joined = ""
        if any(_SEP in v for v in distinct):
            self.exact = frozenset(distinct)
        elif distinct:
            self.joined = _SEP + _SEP.join(distinct) + _SEP

    def meets(self, values: set[str]) -> bool:
        """Whether any of ``values`` is among these."""
        if self.exact is not None:
            return not self.exact.isdisjoint(values)
        joined = self.joined
        # No value of these holds the separator, so one that does is not among them (and would
        # otherwise match across two of them).
        return bool(joined) and any(f"{_SEP}{v}{_SEP}" in joined for v in values if _SEP not in v)


_NO_VALUES = _Values(iter(()))
# What was measured of the message an item comes from: (section, order) -> (tokens, identifying values, text).
_measured: ByIdentity[Message, dict[tuple[str, int], tuple[int, _Values, str]]] = ByIdentity(lambda _message: {})


@dataclass
class _Item:
    section: str  # "world", "earlier_calls" or "user_statements"
    order: int  # position when rendered (oldest first)
    value: Any  # an earlier call's entry without its result until ``full`` adds it
    source: Message | None = None  # the message the item comes from (an earlier call's answer, a user's)
    # Counted only when the whole may not fit:
    related: bool = False
    tokens: int = 0
    text: str = ""  # a memory item's JSON as the context block holds it (two levels deep)

    def measure(self, values: set[str]) -> None:
        if self.section == "world":
            entity: Entity = self.value
            self.related = entity.id in values or any(leaf in values for leaf in leaves(entity.fields))
            self.tokens = _tokens({entity.id: entity.fields})
            return
        memo = _measured(self.source) if self.source is not None else {}
        found = memo.get((self.section, self.order))
        if found is None:
            value = self.full()
            own = _Values(leaves(value)) if self.section == "earlier_calls" else _NO_VALUES
            text = _json(value)
            found = memo[(self.section, self.order)] = (estimate_tokens(text) + 1, own, nest(text, 2))
        self.tokens, self.text = found[0], found[2]
        self.related = found[1].meets(values)

    def full(self) -> Any:
        """The item as the simulator reads it: an earlier call with its result (parsed here, not
        kept: a parsed result is several times its text, and the text is measured once)."""
        return _answered(self.value, self.source) if self.section == "earlier_calls" else self.value


def simulator_context(state: Trajectory, spec: ToolSpec, call: ToolCall, world: World, *,
                      instructions: str, budget: int) -> dict[str, Any]:
    """The simulator's context for ``call``: the call itself always, memory as the budget allows."""
    return simulator_request(state, spec, call, world, instructions=instructions, budget=budget)[0]


def simulator_request(state: Trajectory, spec: ToolSpec, call: ToolCall, world: World, *,
                      instructions: str, budget: int) -> tuple[dict[str, Any], str]:
    """``simulator_context`` and its context block (``dialogforge.prompts.context_block``), the text
    the budget was counted on and the request sends."""
    context, items, kept, text = _request(state, spec, call, world, instructions=instructions, budget=budget)
    return _render(context, items, kept, values=True), text


def simulator_block(state: Trajectory, spec: ToolSpec, call: ToolCall, world: World, *,
                    instructions: str, budget: int) -> str:
    """``simulator_request``'s text alone, what the tool simulator is sent: without the context as a
    value, which would mean every earlier result parsed again at every call."""
    return _request(state, spec, call, world, instructions=instructions, budget=budget)[3]


def _request(state: Trajectory, spec: ToolSpec, call: ToolCall, world: World, *,
             instructions: str, budget: int) -> tuple[dict[str, Any], list[_Item], list[_Item], str]:
    """The fixed part of the context, its memory items, those kept and the block's text."""
    calls = _calls(state.messages, call)
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
    users = [m for m in state.messages if m.role == "user" and m.content]
    items = [*(_Item("world", i, entity) for i, entity in enumerate(world.entities.values())),
             *(_Item("earlier_calls", c["n"], c, answer) for c, answer in calls),
             *(_Item("user_statements", i, m.content, m) for i, m in enumerate(users))]
    values = identifying_values(call.arguments, spec.function.parameters)
    memory = [item for item in items if item.section != "world"]
    for item in memory:  # measured once per message: cheap after the first call
        item.measure(values)
    fixed = _request_tokens(instructions, _block(_render(context, items, []), spec, []))
    if fixed + sum(i.tokens for i in memory) - _SLACK_PER_ITEM * len(memory) - _SLACK <= budget:
        whole = _render(context, items, items)  # may fit: count it (everything fits: one count)
        text = _block(whole, spec, memory)
        if _request_tokens(instructions, text) <= budget:
            return context, items, items, text
    for item in items:
        if item.section == "world":
            item.measure(values)
    kept = _fit(items, budget - fixed)
    rendered = _render(context, items, kept)
    text = _block(rendered, spec, kept)
    excess = _request_tokens(instructions, text) - budget
    while kept and excess > 0:  # the per-item sums are estimates of the whole too: drop the lowest-ranked
        while kept and excess > 0:
            excess -= kept.pop().tokens
        rendered = _render(context, items, kept)
        text = _block(rendered, spec, kept)
        excess = _request_tokens(instructions, text) - budget
    return context, items, kept, text


def earlier_calls(messages: list[Message], current: ToolCall) -> list[dict[str, Any]]:
    """Every answered call before ``current``, numbered from 1 in trajectory order."""
    return [entry for entry, _ in answered_calls(messages, current)]


def answered_calls(messages: list[Message], current: ToolCall) -> list[tuple[dict[str, Any], Message]]:
    """``earlier_calls``, each with the tool message that answered it."""
    return [(_answered(head, answer), answer) for head, answer in _calls(messages, current)]


def _calls(messages: list[Message], current: ToolCall) -> list[tuple[dict[str, Any], Message]]:
    """``answered_calls`` without the results: each call's number, tool and arguments."""
    answers = {m.tool_call_id: m for m in messages if m.role == "tool"}
    out: list[tuple[dict[str, Any], Message]] = []
    number = 0
    for message in messages:
        for c in message.tool_calls:
            number += 1
            answer = answers.get(c.id)
            if answer is None:
                if c.id == current.id:
                    return out
                continue
            out.append(({"n": number, "tool": c.name,
                         "arguments": c.arguments if c.raw_arguments is None else c.raw_arguments}, answer))
    return out


def _answered(head: dict[str, Any], answer: Message) -> dict[str, Any]:
    """An earlier call's entry: its head (``_calls``) and the answer's parsed content."""
    value, note = parse_content(answer.content)
    entry = {**head, "error" if answer.is_error else "result": value}
    if note:
        entry["note"] = note
    return entry


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


def _render(base: dict[str, Any], items: list[_Item], kept: list[_Item], *, values: bool = False) -> dict[str, Any]:
    """The context with the kept items; memory items as heads unless ``values`` (``_block`` reads
    their measured texts, and only the sections' lengths from here)."""
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
    context["earlier_calls"] = [i.full() if values else i.value
                                for i in sorted(by_section.get("earlier_calls", []), key=lambda i: i.order)]
    context["user_statements"] = [i.value for i in sorted(by_section.get("user_statements", []), key=lambda i: i.order)]
    omitted = {section: n for section in ("world", "earlier_calls", "user_statements")
               if (n := sum(1 for i in items if i.section == section) - len(by_section.get(section, [])))}
    if omitted:  # the simulator must know its memory is partial: an id it cannot see may still exist
        context["omitted_for_length"] = omitted
    return context


def _json(value: Any) -> str:
    return indented(value)


def _tokens(value: Any) -> int:
    return estimate_tokens(_json(value)) + 1


# The result schema's JSON one level deep, once per spec (the largest fixed part of every request).
_schema_text: ByIdentity[ToolSpec, str] = ByIdentity(lambda spec: nest(_json(spec.result_schema)))


def _block(context: dict[str, Any], spec: ToolSpec, kept: list[_Item]) -> str:
    """``context_block(context)``, exactly, from the texts made once: the memory items' (as measured)
    and the result schema's. The indented JSON encoder is pure Python, and the memory is most of
    the text: rendering it whole on every call was the simulator's largest cost. A value nested
    ``d`` levels deep renders as on its own with ``d`` more spaces after each newline (JSON
    strings hold no raw newline), which is how the parts join."""
    memory = {section: [i.text for i in sorted(kept, key=lambda i: i.order) if i.section == section]
              for section in ("earlier_calls", "user_statements")}  # measured, every one (``_request``)
    parts = []
    for key, value in context.items():
        if key in memory:  # the items' texts: the context holds only their heads (``_render``)
            body = "[\n  " + ",\n  ".join(memory[key]) + "\n ]" if memory[key] else "[]"
        elif key == "result_schema" and value is spec.result_schema:
            body = _schema_text(spec)
        else:
            body = nest(_json(value))
        parts.append(f" {json.dumps(key, ensure_ascii=False)}: {body}")
    return "```json\n{\n" + ",\n".join(parts) + "\n}\n```"


def _request_tokens(instructions: str, block: str) -> int:
    return _instruction_tokens(instructions) + estimate_tokens("Context:\n" + block) + 2 * MESSAGE_OVERHEAD


@lru_cache(maxsize=16)
def _instruction_tokens(instructions: str) -> int:
    return estimate_tokens(instructions)
