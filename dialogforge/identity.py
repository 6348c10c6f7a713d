"""A value derived once per object, remembered for as long as that object lives.

A dialogue's history is the same message objects from one LLM call to the
next, so what is derived from a message (its LangChain form, its wire JSON,
its parsed tool result) need not be derived again on every call: with
hundreds of dialogues of 50+ messages in flight that is most of a call's
CPU. Pydantic and LangChain models are unhashable (they compare by value),
so entries are keyed by identity; a weak reference drops an entry when its
object goes (the callback runs before the object's id can be reused). Only
for objects nobody mutates once made, as messages in a checkpointed state.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """``cache(obj)``: ``make(obj)``, computed on the first call for that object only."""

    def __init__(self, make: Callable[[K], V]) -> None:
        self.make = make
        self.entries: dict[int, tuple[weakref.ref, V]] = {}

    def __call__(self, obj: K) -> V:
        key = id(obj)
        hit = self.entries.get(key)
        if hit is not None and hit[0]() is obj:
            return hit[1]
        value = self.make(obj)
        self.entries[key] = (weakref.ref(obj, lambda _ref, key=key: self.entries.pop(key, None)), value)
        return value

    def __len__(self) -> int:
        return len(self.entries)
