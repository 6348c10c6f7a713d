"""Size bounds for a JSON Schema that a server turns into a decoding grammar.

llama.cpp constrains generation to the schema sent with ``json_object``: the
answer is always well-formed, but nothing makes a small model stop adding
list items or extending a string, and an answer cut off at ``max_tokens`` is
invalid and costs a retry. Bounding every list and free-text string in the
schema sent to the server makes each answer end within budget; the answer is
still validated against the full pydantic schema, so the bounds may only
narrow what is accepted, never widen it.
"""

from __future__ import annotations

from typing import Any

# Small enough that the largest answer (a ProposedTask: goal, subtasks, rubric, tools) ends within
# the embedded model's max_tokens (local_server.LOCAL_MAX_TOKENS); each token costs ~0.1 s on two cores.
MAX_ITEMS = 3
MAX_STRING_CHARS = 120
# What a field marked ``x-json-schema`` (a JSON Schema carried as data: tool parameters,
# result schemas) may hold in the grammar: an object of flat, described properties.
# Free-form JSON there let the 270M model wander into `$ref`s and nested schemas
# until the token limit; real servers get the full, unconstrained schema.
FLAT_OBJECT_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"const": "object"},
        "properties": {"type": "object", "additionalProperties": {
            "type": "object",
            "properties": {"type": {"enum": ["string", "integer", "number", "boolean"]},
                           "description": {"type": "string", "maxLength": 80}},
            "required": ["type", "description"],
        }},
        "required": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": MAX_ITEMS},
    },
    "required": ["type", "properties", "required"],
}


# llama-server hands a schema to llguidance, whose JSON grammar allows any whitespace between tokens
# by default: a small model unsure what comes next writes newline after newline until max_tokens.
# Compact JSON (llguidance's ``x-guidance`` extension) leaves it only the next token to choose.
COMPACT = {"x-guidance": {"whitespace_flexible": False}}


def embedded_schema(schema: dict) -> dict:
    """What the embedded model's grammar is built from: the bounded schema, as compact JSON."""
    return {**bounded(schema), **COMPACT}


def bounded(schema: Any) -> Any:
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("x-json-schema"):
        return {**FLAT_OBJECT_SCHEMA, **{k: schema[k] for k in ("title", "description") if k in schema}}
    out = {key: bounded(value) for key, value in schema.items()}
    kind = schema.get("type")
    if kind == "object" and "properties" in schema and "additionalProperties" not in schema:
        # JSON Schema lets an object have keys beyond its properties, and llama.cpp's grammar does
        # too: a small model then adds key after key until max_tokens. Its named keys are enough.
        out["additionalProperties"] = False
    if kind == "array":
        out["maxItems"] = _tightest(schema, "maxItems", MAX_ITEMS, schema.get("minItems", 0))
    elif kind == "string" and not {"enum", "const", "pattern", "format"} & schema.keys():
        out["maxLength"] = _tightest(schema, "maxLength", MAX_STRING_CHARS, schema.get("minLength", 0))
    return out


def _tightest(schema: dict, key: str, cap: int, minimum: int) -> int:
    """The schema's own bound or ours, whichever is tighter, but never below its minimum."""
    limit = max(cap, minimum)
    return min(schema.get(key, limit), limit)
