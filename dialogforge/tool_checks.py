"""Checks and repairs for tool specs an LLM produced, before anything trusts them.

A spec passes only if its parameters are a valid JSON Schema of an object;
a synthesized tool must also follow the paper's rules: a get_/search_/
create_/update_/delete_ name and no trivial helpers (``tool_rule_problem``,
each refusal with its reason). Result schemas are reconciled so a shared
entity (an id, a timestamp) has one type across all tools; a seed tool's own
schemas describe a real API, so they vote first and are never rewritten.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
import json
import re
from typing import Any, Iterable, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from dialogforge.records import JsonObject, ToolSpec


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot be a tool's parameters schema, or None."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return 'parameters must be a JSON Schema with "type": "object"'
    undefined = _undefined_required(schema)
    if undefined:
        return undefined
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return _metaschema_problem_uncached(schema)
    return _metaschema_problem(key)


def result_schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot describe what a tool returns (any JSON Schema can: arrays too), or None."""
    if not isinstance(schema, dict):
        return "the result schema must be a JSON Schema object"
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return _metaschema_problem_uncached(schema)
    return _metaschema_problem(key)


def _undefined_required(schema: dict[str, Any]) -> str | None:
    """A required parameter the schema never defines: legal JSON Schema, but no agent can
    learn its type or meaning, and a grammar-constrained model cannot produce it at all."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    required = schema.get("required")
    missing = [name for name in required if name not in properties] if isinstance(required, list) else []
    return f"required parameter {missing[0]!r} is not among its properties" if missing else None


@lru_cache(maxsize=8192)
def _metaschema_problem(schema_json: str) -> str | None:
    """Checking against the 2020-12 metaschema costs ~1 ms; tool sets repeat schemas, so remember verdicts."""
    return _metaschema_problem_uncached(json.loads(schema_json))


def _metaschema_problem_uncached(schema: Any) -> str | None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"invalid JSON Schema: {exc.message[:200]}"
    return None


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def first_violation(schema: JsonObject, value: Any) -> str | None:
    """The first way ``value`` breaks ``schema``, as one line, or None."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    return f"{where}: {error.message[:200]}"


def _is_shared_entity(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_at", "_time", "_date"))


def _properties(schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield name, sub
            yield from _properties(sub)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _properties(items)


# What a result schema is when nobody said what the tool returns (the ToolSpec default):
# such a schema is predicted; any other, arrays included, is the tool's own and kept.
UNSPECIFIED_RESULT: JsonObject = {"type": "object"}


def needs_result_schema(tool: ToolSpec) -> bool:
    return tool.sql is None and tool.result_schema == UNSPECIFIED_RESULT


def entity_types_in(schema: Any) -> Iterator[tuple[str, str]]:
    """(entity, type) for every shared entity a schema types with one JSON type."""
    for name, sub in _properties(schema):
        if _is_shared_entity(name) and isinstance(sub.get("type"), str):
            yield name, sub["type"]


def harmonize(tools: list[ToolSpec], own_results: Iterable[str] = ()) -> tuple[list[ToolSpec], dict[str, str]]:
    """Give each shared entity one type across ``tools``; return them and the entity -> type map.

    A seed tool's parameters, and the result schemas named in ``own_results``
    (a seed tool's real ones), describe a real API: they vote first (the
    majority among them wins) and are never rewritten. Everything else
    (synthesized tools, predicted results) takes the winning type.
    """
    own = set(own_results)
    fixed_votes: dict[str, Counter[str]] = {}
    votes: dict[str, Counter[str]] = {}
    for tool in tools:
        for schema, is_own in _schemas(tool, own):
            for name, kind in entity_types_in(schema):
                votes.setdefault(name, Counter())[kind] += 1
                if is_own:
                    fixed_votes.setdefault(name, Counter())[kind] += 1
    winners = {name: (fixed_votes.get(name) or counts).most_common(1)[0][0] for name, counts in votes.items()}
    fixed = []
    for tool in tools:
        result = json.loads(json.dumps(tool.result_schema))
        params = json.loads(json.dumps(tool.function.parameters))
        for schema, is_own in zip((params, result), (tool.source == "seed", tool.source == "seed" and tool.name in own)):
            if is_own:
                continue
            for name, sub in _properties(schema):
                if name in winners and isinstance(sub.get("type"), str):
                    sub["type"] = winners[name]
        function = tool.function.model_copy(update={"parameters": params})
        fixed.append(tool.model_copy(update={"result_schema": result, "function": function}))
    return fixed, dict(sorted(winners.items()))


def _schemas(tool: ToolSpec, own_results: set[str]) -> list[tuple[Any, bool]]:
    seed = tool.source == "seed"
    return [(tool.function.parameters, seed), (tool.result_schema, seed and tool.name in own_results)]


def harmonize_entity_types(tools: list[ToolSpec]) -> list[ToolSpec]:
    """``harmonize`` where every seed tool's result schema is its own."""
    return harmonize(tools, own_results=[t.name for t in tools if t.source == "seed" and not needs_result_schema(t)])[0]


# ------------------------------------------------------------ the paper's naming and "no trivial helpers"

VERBS = ("get", "search", "create", "update", "delete")
_NAME = re.compile(r"^(get|search|create|update|delete)_[a-z0-9]+(_[a-z0-9]+)*$")
# Words that make a tool a helper the agent does itself, by what kind of helper it is.
_TRIVIAL = {
    "formatting": {"format", "formatted", "formatter", "prettify"},
    "arithmetic": {"add", "sum", "subtract", "multiply", "divide", "calculate", "calculation", "calculator",
                   "arithmetic", "math", "round"},
    "a greeting": {"greet", "greeting", "greetings", "hello", "welcome", "goodbye", "farewell"},
    "text manipulation": {"uppercase", "lowercase", "capitalize", "concat", "concatenate", "echo"},
    "a clock or random value": {"now", "today", "uuid", "random", "timestamp", "current_time", "current_date"},
}


def tool_rule_problem(name: str) -> str | None:
    """Why a synthesized tool's name breaks the paper's rules, or None.

    Seed tools are exempt: they describe a real API, whatever its naming."""
    if not _NAME.match(name) or len(name) > 64:
        if not name.startswith(tuple(f"{v}_" for v in VERBS)):
            return "the name must start with get_, search_, create_, update_ or delete_"
        return "the name must be snake_case after its verb (lowercase letters, digits, single underscores)"
    words = name.split("_")[1:]
    terms = set(words) | {f"{a}_{b}" for a, b in zip(words, words[1:])}
    for kind, trivial in _TRIVIAL.items():
        hit = sorted(terms & trivial)
        if hit:
            return f"a trivial helper ({kind}: {hit[0]!r}), which the agent does itself; not a tool"
    return None
