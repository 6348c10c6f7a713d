"""Seeded generation of JSON values that match (or deliberately break) a JSON Schema.

Used by the scripted model to fill tool arguments and tool results for any
tool spec, including BFCL's and synthesized ones.
"""

from __future__ import annotations

import random
from typing import Any

_WORDS = ["alpha", "harbor", "cedar", "maple", "orbit", "delta", "summit", "river", "nova", "atlas"]


def instance_of(schema: Any, rng: random.Random, hints: dict[str, Any] | None = None, *, root: Any = None, depth: int = 0) -> Any:
    """A value valid for ``schema``; ``hints`` supply values for properties by name."""
    root = schema if root is None else root
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return instance_of(_resolve(schema["$ref"], root), rng, hints, root=root, depth=depth)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema and schema[key]:
            options = [s for s in schema[key] if isinstance(s, dict) and s.get("type") != "null"] or schema[key]
            return instance_of(options[0], rng, hints, root=root, depth=depth)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _BY_TYPE.get(kind, _string)(schema, rng, hints or {}, root, depth)


def _object(schema, rng, hints, root, depth):
    if depth > 4:
        return {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    out = {}
    for name, sub in props.items():
        if name in hints:
            out[name] = hints[name]
        elif name in required or rng.random() < 0.7:
            out[name] = instance_of(sub, rng, {}, root=root, depth=depth + 1)
    return out


def _array(schema, rng, hints, root, depth):
    if depth > 4:
        return []
    low = int(schema.get("minItems", 1))
    high = max(low, min(int(schema.get("maxItems", 3)), 3))
    return [instance_of(schema.get("items", {"type": "string"}), rng, {}, root=root, depth=depth + 1) for _ in range(rng.randint(low, high))]


def _string(schema, rng, hints, root, depth):
    fmt = schema.get("format")
    if fmt == "date-time":
        return f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T{rng.randint(10, 20)}:00:00Z"
    if fmt == "date":
        return f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
    text = f"{rng.choice(_WORDS)}-{rng.randint(100, 999)}"
    low = int(schema.get("minLength", 0))
    return text.ljust(low, "x")


def _integer(schema, rng, hints, root, depth):
    low = int(schema.get("minimum", 1))
    high = int(schema.get("maximum", max(low, 500)))
    return rng.randint(low, max(low, high))


def _number(schema, rng, hints, root, depth):
    low = float(schema.get("minimum", 0.0))
    high = float(schema.get("maximum", low + 1000.0))
    return round(rng.uniform(low, high), 2)


_BY_TYPE = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda s, rng, h, r, d: rng.random() < 0.5,
    "null": lambda s, rng, h, r, d: None,
}


def _resolve(ref: str, root: Any) -> Any:
    node = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node


def break_arguments(arguments: dict[str, Any], schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Make arguments invalid the way models do: a required field missing, or a wrong type."""
    broken = dict(arguments)
    required = [r for r in schema.get("required") or [] if r in broken]
    if required and rng.random() < 0.5:
        del broken[rng.choice(required)]
        return broken
    props = schema.get("properties") or {}
    for name, sub in props.items():
        if isinstance(sub, dict) and sub.get("type") in {"integer", "number", "boolean"}:
            broken[name] = "not-a-number"
            return broken
    if props:
        broken[next(iter(props))] = {"unexpected": ["nested"]}
    else:
        broken["unexpected_argument"] = True
    return broken
