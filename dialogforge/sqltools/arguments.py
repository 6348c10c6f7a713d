"""Turning a model's tool-call arguments into bound statement parameters.

Arguments are data, never SQL: each becomes the value of one ``:name``
parameter, handed to SQLite separately from the statement text. Before
that they are checked against the tool's JSON Schema (the model sees that
schema, so a mismatch is the model's error to read and fix) and against
what SQLite can bind.
"""

from __future__ import annotations

import json
from functools import lru_cache

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from pydantic import JsonValue

from dialogforge.sqltools import sqltext
from dialogforge.sqltools.errors import ToolArgumentError, one_line
from dialogforge.records import ToolSpec

SqlValue = int | float | str | None
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def bind_arguments(spec: ToolSpec, arguments: dict[str, JsonValue], *, max_value_bytes: int) -> dict[str, SqlValue]:
    """The parameter dict for ``spec``'s statement; ``ToolArgumentError`` if unusable.

    A parameter the call leaves out binds as NULL, which only an optional
    parameter may do: the schema's ``required`` list is enforced first.
    """
    if spec.sql is None:
        raise ToolArgumentError(f"tool {spec.name!r} has no SQL statement")
    if not isinstance(arguments, dict):
        raise ToolArgumentError("arguments must be a JSON object")
    for name, value in arguments.items():
        _check_value(name, value, max_value_bytes)
    _check_schema(spec.function.parameters, arguments)
    names = sqltext.named_parameters(sqltext.tokenize(spec.sql.statement))
    return {name: _sql_value(arguments.get(name)) for name in names}


def _check_value(name: str, value: JsonValue, max_value_bytes: int) -> None:
    if isinstance(value, (dict, list)):
        raise ToolArgumentError(f"argument {name!r} must be a string, number, boolean or null")
    if isinstance(value, str):
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as error:  # a lone surrogate, e.g. from "\ud800"
            raise ToolArgumentError(f"argument {name!r} is not valid Unicode text") from error
        if size > max_value_bytes:
            raise ToolArgumentError(f"argument {name!r} is longer than {max_value_bytes} bytes")
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
        raise ToolArgumentError(f"argument {name!r} is outside the 64-bit integer range")


def _check_schema(schema: dict, arguments: dict[str, JsonValue]) -> None:
    error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(arguments))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        prefix = f"argument {where!r}: " if where else ""
        raise ToolArgumentError(one_line(f"invalid arguments: {prefix}{error.message}", 240))


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    """Validators are reused: a trajectory calls the same few tools many times."""
    schema = json.loads(schema_json)
    return validator_for(schema)(schema)


def _sql_value(value: JsonValue) -> SqlValue:
    if isinstance(value, bool):
        return int(value)  # SQLite has no boolean type; 1/0 is its convention
    return value  # type: ignore[return-value]  # scalars only, checked above
