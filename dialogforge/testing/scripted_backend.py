"""The scripted tool simulator: an honest backend by a few rules (test equipment).

It plays what ``executors/prompts/simulate_tool.md`` asks of a model, from
the context block alone, so tests can check the world model end to end:

- a get, update or delete of an id that the world does not hold, no earlier
  result showed and the user never said is ``not_found``, and so is anything
  deleted;
- creating a record with the name of an existing one is a ``conflict``;
- changing the status of a ``closed`` record is an ``invalid_transition``;
- otherwise the result is built from the world's record and the arguments
  (so a repeated lookup reads the same), and ``entities`` reports it: a read
  for a get (each item for a search), the full record for a create, only
  the changed fields for an update.

Tool names are ``verb_noun`` (the scripted synthesizer's shape); the noun is
the entity kind and ``<noun>_id`` its id.
"""

from __future__ import annotations

import json
import random
from typing import Any

from dialogforge.testing.json_instances import instance_of
from dialogforge.tool_checks import first_violation


def tool_result(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    arguments = ctx.get("arguments") if isinstance(ctx.get("arguments"), dict) else {}
    schema = ctx.get("result_schema") or {"type": "object"}
    name = str(ctx.get("tool", "tool"))
    verb, _, noun = name.partition("_")
    kind = noun or name
    records: dict[str, Any] = (ctx.get("world") or {}).get(kind) or {}
    gone = {str(i) for i in (ctx.get("deleted") or {}).get(kind) or []}
    key = _id_argument(arguments, kind)
    ident = str(arguments[key]) if key else None
    record = records.get(ident) or {} if ident else {}
    if verb in ("get", "update", "delete") and ident is not None:
        if ident in gone or (ident not in records and ident not in _implied(ctx)):
            return _failure("not_found", f"No {kind.replace('_', ' ')} with id {ident!r} exists.")
    if verb == "update" and record.get("status") == "closed" and arguments.get("status") not in (None, "closed"):
        return _failure("invalid_transition", f"{kind} {ident!r} is closed; its status cannot change to {arguments['status']!r}.")
    if verb == "create" and arguments.get("name") and any(
            isinstance(r, dict) and r.get("name") == arguments["name"] for r in records.values()):
        return _failure("conflict", f"a {kind.replace('_', ' ')} named {arguments['name']!r} already exists.")
    done = {"deleted": True} if verb == "delete" else {}
    result = _consistent_instance(schema, rng, [{**record, **arguments, **done}, {**arguments, **done}, {}])
    if record and isinstance(result, dict):  # a known record shows the fields it has, no new optional ones
        required = set(schema.get("required") or [])
        result = {k: v for k, v in result.items() if k in record or k in arguments or k in required}
    if verb == "search" and isinstance(result, dict):
        result = _with_known_records(result, schema, records)
    return {"result": result, "entities": _entities(verb, kind, key, ident, arguments, result, rng)}


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"result": None, "error": {"code": code, "message": message}, "entities": []}


def _id_argument(arguments: dict[str, Any], kind: str) -> str | None:
    if f"{kind}_id" in arguments:
        return f"{kind}_id"
    return next((k for k in arguments if k == "id" or k.endswith("_id")), None)


def _implied(ctx: dict[str, Any]) -> set[str]:
    """Every value an earlier successful result, the background or the user put in the dialogue."""
    values: set[str] = set()
    for call in ctx.get("earlier_calls") or []:
        if isinstance(call, dict) and "result" in call:
            values |= _scalars(call["result"])
    values |= _scalars(ctx.get("background"))
    for text in ctx.get("user_statements") or []:
        values |= set(str(text).replace("?", " ").replace(",", " ").replace(".", " ").split())
    return values


def _scalars(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {s for v in value.values() for s in _scalars(v)}
    if isinstance(value, list):
        return {s for v in value for s in _scalars(v)}
    return {str(value)} if isinstance(value, (str, int)) and not isinstance(value, bool) else set()


def _consistent_instance(schema: Any, rng: random.Random, hint_sets: list[dict[str, Any]]) -> Any:
    """A result built from the first hints that keep it valid (a world record may predate a schema fix)."""
    result = None
    for hints in hint_sets:
        result = instance_of(schema, rng, hints=hints)
        if first_violation(schema, result) is None:
            return result
    return result


def _with_known_records(result: dict[str, Any], schema: dict[str, Any], records: dict[str, Any]) -> dict[str, Any]:
    """A search shows the matching records the world holds (here: all of the kind), then new ones."""
    items = (schema.get("properties") or {}).get("results") or {}
    if not isinstance(result.get("results"), list) or not records:
        return result
    known = [r for r in records.values() if first_violation(items.get("items") or {}, r) is None][:3]
    merged = {**result, "results": [*known, *result["results"]][: max(3, len(known))]}
    if "total" in merged:
        merged["total"] = len(merged["results"])
    return merged if first_violation(schema, merged) is None else result


def _entities(verb: str, kind: str, key: str | None, ident: str | None, arguments: dict[str, Any],
              result: Any, rng: random.Random) -> list[dict[str, Any]]:
    if verb == "get" and ident and isinstance(result, dict):
        return [{"op": "read", "kind": kind, "id": ident, "fields": result}]
    if verb == "search" and isinstance(result, dict):
        return [{"op": "read", "kind": kind, "id": str(item[f"{kind}_id"]), "fields": item}
                for item in result.get("results") or [] if isinstance(item, dict) and item.get(f"{kind}_id") is not None]
    if verb == "create":
        new_id = result.get(f"{kind}_id") if isinstance(result, dict) else None
        new_id = new_id if new_id is not None else f"{kind}-{rng.randrange(10**6):06d}"
        fields = {**arguments, **(result if isinstance(result, dict) else {})}
        return [{"op": "create", "kind": kind, "id": str(new_id), "fields": json.loads(json.dumps(fields))}]
    if verb == "update" and ident:
        return [{"op": "update", "kind": kind, "id": ident, "fields": {k: v for k, v in arguments.items() if k != key}}]
    if verb == "delete" and ident:
        return [{"op": "delete", "kind": kind, "id": ident}]
    return []
