"""Strict checkpoint deserialization: only our own state types may be revived.

LangGraph's default serializer will import and construct any class a
checkpoint row names. A crafted row must not make the loader import or call
anything, so the allowlist is exactly the pydantic models and enums of
``graphs.state`` (plus LangGraph's built-in safe types).
"""

from __future__ import annotations

import inspect
from enum import Enum

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from graphs import state as state_module


def state_types() -> list[tuple[str, str]]:
    return [
        (obj.__module__, obj.__name__)
        for obj in vars(state_module).values()
        if inspect.isclass(obj)
        and obj.__module__ == state_module.__name__
        and issubclass(obj, (BaseModel, Enum))
    ]


def strict_serializer() -> JsonPlusSerializer:
    return JsonPlusSerializer(allowed_msgpack_modules=state_types())
