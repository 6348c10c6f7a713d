"""Strict checkpoint deserialization: only our own state types may be revived.

LangGraph's default serializer will import and construct any class a
checkpoint row names. A crafted row must not make the loader import or call
anything, so the allowlist is exactly the pydantic models and enums of
``graphs.state`` (plus LangGraph's built-in safe types).
"""

from __future__ import annotations

import inspect
import logging
import threading
from enum import Enum
from functools import cache
from typing import Any

from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener
from langgraph.checkpoint.serde import jsonplus
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from dialogforge.errors import StoreError
from graphs import state as state_module

# What our saver ever writes (``dumps_typed`` without pickle fallback); "json" rows would be
# revived by LangChain's constructor reviver and "pickle" would run code, so both are refused.
STORED_TYPES = frozenset({"null", "bytes", "bytearray", "msgpack"})
_BLOCKED_EVENTS = frozenset({"msgpack_blocked", "msgpack_method_blocked"})


class UnsafeCheckpointError(StoreError):
    """A stored checkpoint value names a type or encoding we never write: tampered or not ours."""


_seen = threading.local()  # blocked types met by the decode running on this thread


def _record_blocked(event: SerdeEvent) -> None:
    found = getattr(_seen, "blocked", None)
    if found is not None and event["kind"] in _BLOCKED_EVENTS:
        found.append(".".join(filter(None, (event["module"], event["name"], event.get("method")))))


class _DropBlockedWarnings(logging.Filter):
    """LangGraph logs each blocked type; our ``UnsafeCheckpointError`` says it in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Blocked deserialization")


@cache
def _install_hooks() -> None:
    """Once per process, when the first strict serializer is made (not at import)."""
    register_serde_event_listener(_record_blocked)
    logging.getLogger(jsonplus.__name__).addFilter(_DropBlockedWarnings())


class StrictSerializer(JsonPlusSerializer):
    """LangGraph's strict msgpack mode, made loud: a blocked type fails the load.

    LangGraph, on a type outside the allowlist, neither imports nor calls it
    but quietly returns the raw constructor argument in its place, so a
    crafted row would surface later as a confusing validation error (or,
    worse, load as plain data). Here it is an ``UnsafeCheckpointError``.
    """

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_name = data[0]
        if type_name not in STORED_TYPES:
            raise UnsafeCheckpointError(
                f"a stored checkpoint value is encoded as {type_name!r}, which dialogforge never writes; "
                "refusing to load it (the database was altered or is not ours)")
        _seen.blocked = []
        try:
            value = super().loads_typed(data)
            blocked = _seen.blocked
        finally:
            _seen.blocked = None
        if blocked:
            raise UnsafeCheckpointError(
                f"a stored checkpoint value names {blocked[0]}, which is not one of dialogforge's state types; "
                "refusing to load it (the database was altered or is not ours)")
        return value


def state_types() -> list[tuple[str, str]]:
    return [
        (obj.__module__, obj.__name__)
        for obj in vars(state_module).values()
        if inspect.isclass(obj)
        and obj.__module__ == state_module.__name__
        and issubclass(obj, (BaseModel, Enum))
    ]


def strict_serializer() -> StrictSerializer:
    _install_hooks()
    return StrictSerializer(allowed_msgpack_modules=state_types())
