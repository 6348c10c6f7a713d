"""A value derived once per object, remembered for as long as that object lives.

A dialogue's history is the same message objects from one LLM call to the
next, so what is derived from a message (its LangChain form, its wire JSON,
its parsed tool result) need not be derived again on every call: with
hundreds of dialogues of 50+ messages in flight that is most of a call's
CPU. Pydantic and LangChain models are unhashable (they compare by value),
so entries are keyed by identity; a weak reference drops an object's entries
when it goes (the callback runs before the object's id can be reused). Only
for objects nobody mutates once made, as messages in a checkpointed state.

One weak reference per object serves every cache that holds it: a message
is in half a dozen (its LangChain form, the user simulator's line, the tool
simulator's measurements...), and a reference plus a callback closure per
(cache, object) was a fifth of a dialogue's memory in flight. A cache's own
entry is a plain dict slot.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# id(obj) -> the weak reference that keys everything derived from obj (``KeyedRef.key`` is the id).
_refs: dict[int, weakref.KeyedRef] = {}
# Every cache alive: an object's death removes its entry from each (a dozen module-level caches).
_caches: weakref.WeakSet[ByIdentity] = weakref.WeakSet()


def _forget(ref: weakref.KeyedRef) -> None:
    """The weak reference's callback: the object is going, and so is what was derived from it."""
    key = ref.key
    if _refs.get(key) is ref:
        del _refs[key]
        _drop(key)


def _drop(key: int) -> None:
    for cache in list(_caches):
        cache.values.pop(key, None)


class ByIdentity(Generic[K, V]):
    """``cache(obj)``: ``make(obj)``, computed on the first call for that object only."""

    def __init__(self, make: Callable[[K], V]) -> None:
        self.make = make
        self.values: dict[int, V] = {}
        _caches.add(self)

    def __call__(self, obj: K) -> V:
        key = id(obj)
        ref = _refs.get(key)
        if ref is not None and ref() is obj:
            try:
                return self.values[key]
            except KeyError:
                pass
        else:
            if ref is not None:  # an id whose object went without its callback having run: start afresh
                _drop(key)
            _refs[key] = weakref.KeyedRef(obj, _forget, key)
        value = self.values[key] = self.make(obj)
        return value

    def __len__(self) -> int:
        return len(self.values)
