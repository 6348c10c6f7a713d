"""Strict checkpoint deserialization: only our own record types may be revived.

LangGraph's default serializer imports and constructs any class a checkpoint
row names. A crafted row must not make the loader import or call anything,
so values are revived here by our own msgpack extension hook from a fixed
table of classes: exactly the pydantic models and enums of
``dialogforge.records`` (the pieces of a trajectory's state), plus the types
LangGraph itself ranks safe (datetime, UUID, ...). Nothing is imported by a
name read from the database. Anything else fails the load with one
``UnsafeCheckpointError`` line instead of loading as raw data.

Databases written before the one-import-root layout name the same records
under their old module (``graphs.state``); those names are aliases of the
same classes, so old databases still open, resume, fork and export.
"""

from __future__ import annotations

import inspect
import threading
from enum import Enum
from functools import cache
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from dialogforge import records
from dialogforge.compat import langgraph as compat
from dialogforge.errors import StoreError

# What our saver ever writes (``dumps_typed`` without pickle fallback); "json" rows would be
# revived by LangChain's constructor reviver and "pickle" would run code, so both are refused.
STORED_TYPES = frozenset({"null", "bytes", "bytearray", "msgpack"})
# Where the records lived before dialogforge became one import root.
LEGACY_MODULES = ("graphs.state",)


class UnsafeCheckpointError(StoreError):
    """A stored checkpoint value names a type or encoding we never write: tampered or not ours."""


@cache
def record_classes() -> dict[tuple[str, str], type]:
    """(module, name) -> class for every record a checkpoint may hold, old module names included."""
    classes = {
        name: obj for name, obj in vars(records).items()
        if inspect.isclass(obj) and obj.__module__ == records.__name__ and issubclass(obj, (BaseModel, Enum))
    }
    table = {(records.__name__, name): cls for name, cls in classes.items()}
    for legacy in LEGACY_MODULES:
        table.update({(legacy, name): cls for name, cls in classes.items()})
    return table


_OPTION = ormsgpack.OPT_NON_STR_KEYS
_decoding = threading.local()  # the first refused name met by the decode running on this thread


def _refuse(what: str) -> None:
    if getattr(_decoding, "refused", None) is None:
        _decoding.refused = what


def _ext_hook(code: int, data: bytes) -> Any:
    if code == compat.EXT_DELTA_SNAPSHOT:
        return compat.DeltaSnapshot(ormsgpack.unpackb(data, ext_hook=_ext_hook, option=_OPTION))
    if code not in (compat.EXT_CONSTRUCTOR_SINGLE_ARG, compat.EXT_CONSTRUCTOR_POS_ARGS, compat.EXT_CONSTRUCTOR_KW_ARGS,
                    compat.EXT_METHOD_SINGLE_ARG, compat.EXT_PYDANTIC_V1, compat.EXT_PYDANTIC_V2):
        _refuse(f"msgpack extension {code}")
        return None
    try:
        tup = ormsgpack.unpackb(data, ext_hook=_ext_hook, option=_OPTION)
        module, name = str(tup[0]), str(tup[1])
        if code == compat.EXT_METHOD_SINGLE_ARG:
            str(tup[3])
    except (ValueError, TypeError, IndexError, KeyError):
        _refuse(f"a malformed msgpack extension {code}")
        return None
    cls = record_classes().get((module, name))
    if cls is None:
        if code == compat.EXT_METHOD_SINGLE_ARG:
            safe = (module, name, str(tup[3])) in compat.SAFE_MSGPACK_METHODS
        else:
            safe = (module, name) in compat.SAFE_MSGPACK_TYPES
        if not safe:
            _refuse(".".join(filter(None, (module, name, str(tup[3]) if code == compat.EXT_METHOD_SINGLE_ARG else ""))))
            return None
        return _stock_hook()(code, data)
    if code == compat.EXT_CONSTRUCTOR_SINGLE_ARG and issubclass(cls, Enum):
        return cls(tup[2])
    if code in (compat.EXT_PYDANTIC_V1, compat.EXT_PYDANTIC_V2) and issubclass(cls, BaseModel):
        try:
            return cls(**tup[2])
        except Exception:  # as LangGraph does: an older shape still loads, unvalidated
            return cls.model_construct(**tup[2])
    _refuse(f"{module}.{name} (stored in a form dialogforge never writes)")
    return None


@cache
def _stock_hook():
    return compat.stock_ext_hook()


class StrictSerializer:
    """LangGraph's serializer for writing; our extension hook, and a loud refusal, for reading."""

    def __init__(self) -> None:
        self._inner: JsonPlusSerializer = compat.serializer_with_ext_hook(_ext_hook)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return self._inner.dumps_typed(obj)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_name = data[0]
        if type_name not in STORED_TYPES:
            raise UnsafeCheckpointError(
                f"a stored checkpoint value is encoded as {type_name!r}, which dialogforge never writes; "
                "refusing to load it (the database was altered or is not ours)")
        _decoding.refused = None
        try:
            value = self._inner.loads_typed(data)
        except ValueError:
            if _decoding.refused is None:
                raise
            value = None
        finally:
            refused, _decoding.refused = _decoding.refused, None
        if refused is not None:
            raise UnsafeCheckpointError(
                f"a stored checkpoint value names {refused}, which is not one of dialogforge's state types; "
                "refusing to load it (the database was altered or is not ours)")
        return value


def strict_serializer() -> StrictSerializer:
    return StrictSerializer()
