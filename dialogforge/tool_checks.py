"""Checks and repairs for tool specs an LLM produced, before anything trusts them.

A spec passes only if its parameters are a valid JSON Schema of an object;
result schemas are reconciled so a shared entity (an id, a timestamp) has one
type across all tools.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
import json
from typing import Any, Iterator

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


def harmonize_entity_types(tools: list[ToolSpec]) -> list[ToolSpec]:
    """Give each shared entity the type most tools agree on.

    Seed tools vote but are never rewritten: they describe a real API.
    """
    votes: dict[str, Counter[str]] = {}
    for tool in tools:
        for schema in (tool.result_schema, tool.function.parameters):
            for name, sub in _properties(schema):
                if _is_shared_entity(name) and isinstance(sub.get("type"), str):
                    votes.setdefault(name, Counter())[sub["type"]] += 1
    winners = {name: counts.most_common(1)[0][0] for name, counts in votes.items() if len(counts) > 1}
    if not winners:
        return tools
    fixed = []
    for tool in tools:
        if tool.source == "seed":
            fixed.append(tool)
            continue
        result = json.loads(json.dumps(tool.result_schema))
        params = json.loads(json.dumps(tool.function.parameters))
        for schema in (result, params):
            for name, sub in _properties(schema):
                if name in winners and isinstance(sub.get("type"), str):
                    sub["type"] = winners[name]
        function = tool.function.model_copy(update={"parameters": params})
        fixed.append(tool.model_copy(update={"result_schema": result, "function": function}))
    return fixed
