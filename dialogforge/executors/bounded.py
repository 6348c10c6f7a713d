"""A simulated result as the agent reads it: JSON text within the per-result size limit.

An oversized result is cut, never silently: its largest lists lose their
tail items and its longest strings their ends until the JSON fits
``ToolSimulation.max_result_chars``, so what remains is still valid JSON of
the promised shape, and a marker line after it says what was left out (a
real backend's paging note, which an agent must learn to act on).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import JsonValue

_MIN_STRING = 40  # strings are cut down to no fewer characters than this


def bounded_result(value: JsonValue, limit: int) -> str:
    """``value`` as JSON text of at most ``limit`` characters plus, when cut, a marker line."""
    text = _dumps(value)
    if len(text) <= limit:
        return text
    shrunk = _copy(value)
    notes: dict[int, list] = {}  # id of each cut list -> [path, shown, total]
    while len(text) > limit and (_cut_list(shrunk, notes, len(text) - limit) or _cut_string(shrunk)):
        text = _dumps(shrunk)
    if len(text) > limit:  # nothing left to shorten structurally: cut the text itself
        return f"{text[:limit]}\n[result truncated: {limit} of {len(_dumps(value))} characters shown]"
    counts: dict[str, list[int]] = {}
    for path, shown, total in notes.values():
        pair = counts.setdefault(path, [0, 0])
        pair[0], pair[1] = pair[0] + shown, pair[1] + total
    cut = ", ".join(f"{path or 'the list'}: {shown} of {total} items" for path, (shown, total) in counts.items())
    return f"{text}\n[result truncated to {limit} characters: {cut or 'long text values shortened'}]"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _copy(value: Any) -> Any:
    return json.loads(_dumps(value))


def _lists(value: Any, path: str = "") -> list[tuple[str, list]]:
    found: list[tuple[str, list]] = []
    if isinstance(value, list):
        found.append((path, value))
        for item in value:
            found += _lists(item, f"{path}[]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += _lists(item, f"{path}.{key}" if path else str(key))
    return found


def _cut_list(value: Any, notes: dict[int, list], excess: int) -> bool:
    """Drop tail items of the largest list with more than one item: enough to cover ``excess``, at most half."""
    candidates = [(len(_dumps(items)), path, items) for path, items in _lists(value) if len(items) > 1]
    if not candidates:
        return False
    size, path, items = max(candidates, key=lambda c: c[0])
    per_item = size / len(items)
    drop = min(len(items) // 2, max(1, int(excess / per_item) + 1))
    note = notes.setdefault(id(items), [path, len(items), len(items)])
    del items[len(items) - drop:]
    note[1] -= drop
    return True


def _cut_string(value: Any) -> bool:
    """Halve the longest string longer than the minimum; False when there is none."""
    best: tuple[int, Any, Any] | None = None
    stack = [value]
    while stack:
        node = stack.pop()
        slots = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, item in slots:
            if isinstance(item, str) and len(item) > _MIN_STRING and (best is None or len(item) > best[0]):
                best = (len(item), node, key)
            elif isinstance(item, (dict, list)):
                stack.append(item)
    if best is None:
        return False
    length, node, key = best
    node[key] = node[key][: max(_MIN_STRING, length // 2)] + "…"
    return True
