"""SQLite values and rows as JSON, as close to verbatim as JSON allows.

Integers, reals, text and NULL pass through unchanged. Only the two things
JSON cannot carry are rendered: a BLOB becomes its SQL literal (``X'0A1B'``)
and an infinite real becomes the string ``"Infinity"``/``"-Infinity"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import JsonValue


def json_value(value: object) -> JsonValue:
    if isinstance(value, bytes):
        return "X'" + value.hex().upper() + "'"
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value  # type: ignore[return-value]  # int, float, str or None


def column_names(description: Sequence[Sequence[object]] | None) -> list[str]:
    """Result column names, made unique (``id``, ``id_2``) so no value is lost
    when two joined tables share a column name."""
    names: list[str] = []
    for column in description or ():
        base = str(column[0])
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def row_objects(columns: list[str], rows: Iterable[Sequence[object]]) -> list[dict[str, JsonValue]]:
    return [{name: json_value(value) for name, value in zip(columns, row)} for row in rows]
