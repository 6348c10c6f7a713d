"""Structural patches: a new channel value stored as its difference from the previous one.

LangGraph rewrites a last-value channel whole on every update. For a
dialogue that means the task list, the tool list and the counters are
re-stored at every step although only their tail changed, which makes
storage quadratic in dialogue length. A patch keeps what the new value
shares with the old one by reference and carries only what changed:

* ``["s"]``: the same value;
* ``["r", value]``: replaced;
* ``["l", keep, head, tail]``: a list whose first ``keep`` items are the old
  ones, then (if ``head`` is not None) the old item ``keep`` patched by
  ``head``, then the new items ``tail``;
* ``["d", {key: patch}, [removed keys]]``: a dict with string keys, kept keys in their old
  order and new ones after them; ``["d", {key: patch}, [removed keys], [key order]]`` when the
  new dict orders its keys otherwise (order is data: it shows in every JSON a prompt is built from);
* ``["m", {field: patch}]``: a pydantic model of the same class, some fields changed.

Patches are plain lists and dicts with the changed values as leaves, so the
strict checkpoint serializer stores and revives them like any other value.
``apply`` never mutates the old value: stored values are shared.
"""

from __future__ import annotations

import operator
from itertools import repeat
from typing import Any

from pydantic import BaseModel

SAME = ["s"]
# Values whose == is ``same`` when their types match (no nested order to compare).
_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
_ABSENT = object()  # a field an instance does not hold (``model_construct`` without it)


def diff(old: Any, new: Any) -> list:
    """A patch turning ``old`` into ``new`` (``apply(old, diff(old, new)) == new``)."""
    if old is new:
        return SAME
    if type(old) is not type(new):
        return ["r", new]
    if isinstance(new, list):
        return _diff_list(old, new)
    if isinstance(new, dict) and all(map(isinstance, new, repeat(str))) and all(map(isinstance, old, repeat(str))):
        return _diff_dict(old, new)
    if isinstance(new, BaseModel):
        return _diff_model(old, new)
    return SAME if same(old, new) else ["r", new]


def is_replacement(patch: list) -> bool:
    return patch[0] == "r"


def apply(old: Any, patch: list) -> Any:
    op = patch[0]
    if op == "s":
        return old
    if op == "r":
        return patch[1]
    if op == "l":
        _, keep, head, tail = patch
        merged = list(old[:keep])
        if head is not None:
            merged.append(apply(old[keep], head))
        merged.extend(tail)
        return merged
    if op == "d":
        changed, removed = patch[1], patch[2]
        merged = {k: v for k, v in old.items() if k not in removed}
        for key, sub in changed.items():
            merged[key] = apply(old[key], sub) if key in old else _replacement(sub)
        if len(patch) > 3:
            merged = {key: merged[key] for key in patch[3]}
        return merged
    if op == "m":
        return old.model_copy(update={name: apply(getattr(old, name), sub) for name, sub in patch[1].items()})
    raise ValueError(f"unknown patch operation {op!r}")


def _replacement(patch: list) -> Any:
    if patch[0] != "r":
        raise ValueError("a patch for a new dict key must be a replacement")
    return patch[1]


def same(a: Any, b: Any) -> bool:
    """Equal, and ordered alike: dict key order counts, ``==`` would ignore it."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind in _SCALARS:
        return a == b
    if isinstance(a, dict):
        if list(a) != list(b):
            return False
        kinds = list(map(type, a.values()))
        if _SCALARS.issuperset(kinds) and kinds == list(map(type, b.values())):
            return a == b  # flat and typed alike (a checkpoint's version maps): one C-level compare
        return all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        if len(a) != len(b):
            return False
        start = _shared_prefix(a, b)
        return all(same(x, y) for x, y in zip(a[start:], b[start:]))
    if isinstance(a, BaseModel):
        if a.__pydantic_extra__ != b.__pydantic_extra__:
            return False
        # Field values straight from the instances' dicts (where pydantic keeps them): this runs
        # for every model of every step's state, and ``getattr`` costs a descriptor lookup each.
        fields_a, fields_b = a.__dict__, b.__dict__
        for name in kind.model_fields:
            x, y = fields_a.get(name, _ABSENT), fields_b.get(name, _ABSENT)
            if x is not y and not same(x, y):
                return False
        return True
    return a == b


def _shared_prefix(a: list, b: list) -> int:
    """How many leading items are the very same objects (a fast scan: most of a grown list is)."""
    flags = list(map(operator.is_, a, b))
    return flags.index(False) if False in flags else len(flags)


def _diff_list(old: list, new: list) -> list:
    keep = _shared_prefix(old, new)
    limit = min(len(old), len(new))
    while keep < limit and same(old[keep], new[keep]):
        keep += 1
    if keep == len(old) == len(new):
        return SAME
    head = None
    rest = keep
    # One changed item (a task marked complete) is patched, not stored again.
    if keep < limit and isinstance(new[keep], (BaseModel, dict, list)):
        candidate = diff(old[keep], new[keep])
        if not is_replacement(candidate):
            head, rest = candidate, keep + 1
    if keep == 0 and head is None:
        return ["r", new]
    return ["l", keep, head, list(new[rest:])]


def _diff_dict(old: dict, new: dict) -> list:
    changed = {}
    added = False
    for key, value in new.items():
        if key not in old:
            changed[key] = ["r", value]
            added = True
            continue
        was = old[key]
        if was is value:
            continue
        if type(was) is type(value) and type(value) in _SCALARS:  # a version number: no dispatch
            if was != value:
                changed[key] = ["r", value]
        elif not same(was, value):
            changed[key] = diff(was, value)
    order = list(new)
    if not added and len(old) == len(new):  # the same keys (a step's version maps): their order is old's or not
        removed, natural = [], list(old)
    else:
        removed = [key for key in old if key not in new]
        natural = [key for key in old if key in new] + [key for key in new if key not in old]
    if order != natural:
        return ["d", changed, removed, order]
    if not changed and not removed:
        return SAME
    return ["d", changed, removed]


def _diff_model(old: BaseModel, new: BaseModel) -> list:
    if old.__pydantic_extra__ or new.__pydantic_extra__ or old.__pydantic_private__ or new.__pydantic_private__:
        return SAME if same(old, new) else ["r", new]
    changed = {}
    fields_old, fields_new = old.__dict__, new.__dict__
    for name in type(new).model_fields:
        a, b = fields_old.get(name, _ABSENT), fields_new.get(name, _ABSENT)
        if a is b:
            continue
        if type(a) is type(b) and type(a) in _SCALARS:  # a counter: compared and replaced, no dispatch
            if a != b:
                changed[name] = ["r", b]
        elif not same(a, b):
            changed[name] = diff(a, b)
    if not changed:
        return SAME
    return ["m", changed]
