"""LangGraph internals dialogforge relies on (see ``dialogforge.compat``).

Each name here is an assumption about LangGraph's internals; each has a test
of its own in ``tests/test_compat.py``.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, Callable

from langgraph.checkpoint.base import Checkpoint
from langgraph.checkpoint.base.id import uuid6

from langgraph.checkpoint.serde import _msgpack as _lg_msgpack
from langgraph.checkpoint.serde import jsonplus as _jsonplus
from langgraph.checkpoint.serde.types import _DeltaSnapshot

# ---------------------------------------------------------------- checkpoint values

# What LangGraph stores for a DeltaChannel's periodic snapshot (``value`` holds the list).
DeltaSnapshot = _DeltaSnapshot

# msgpack extension codes of ``JsonPlusSerializer`` (the wire format of every stored value).
EXT_CONSTRUCTOR_SINGLE_ARG = _jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG
EXT_CONSTRUCTOR_POS_ARGS = _jsonplus.EXT_CONSTRUCTOR_POS_ARGS
EXT_CONSTRUCTOR_KW_ARGS = _jsonplus.EXT_CONSTRUCTOR_KW_ARGS
EXT_METHOD_SINGLE_ARG = _jsonplus.EXT_METHOD_SINGLE_ARG
EXT_PYDANTIC_V1 = _jsonplus.EXT_PYDANTIC_V1
EXT_PYDANTIC_V2 = _jsonplus.EXT_PYDANTIC_V2
EXT_NUMPY_ARRAY = _jsonplus.EXT_NUMPY_ARRAY
EXT_DELTA_SNAPSHOT = _jsonplus.EXT_DELTA_SNAPSHOT

# LangGraph's own list of types and methods that are safe to revive (datetime, UUID, ...).
SAFE_MSGPACK_TYPES: frozenset[tuple[str, ...]] = _lg_msgpack.SAFE_MSGPACK_TYPES
SAFE_MSGPACK_METHODS: frozenset[tuple[str, str, str]] = _lg_msgpack.SAFE_MSGPACK_METHODS


def stock_ext_hook() -> Callable[[int, bytes], Any]:
    """LangGraph's strict ext hook (safe types only), for the values we do not revive ourselves."""
    return _jsonplus._create_msgpack_ext_hook(None)


def serializer_with_ext_hook(ext_hook: Callable[[int, bytes], Any]) -> _jsonplus.JsonPlusSerializer:
    """A ``JsonPlusSerializer`` that decodes msgpack extensions with ``ext_hook`` (a private keyword)."""
    return _jsonplus.JsonPlusSerializer(allowed_msgpack_modules=None, __unpack_ext_hook__=ext_hook)


# ---------------------------------------------------------------- checkpoints written by hand


def checkpoint_on_top(base: Checkpoint, *, step: int, channel_values: dict[str, Any],
                      channel_versions: dict[str, Any]) -> Checkpoint:
    """A new checkpoint that is ``base`` with some channels set (a fork's first checkpoint).

    Built as LangGraph's own ``create_checkpoint`` builds one: a time-ordered
    uuid6 id, ``versions_seen`` copied, and ``updated_channels`` kept, since
    what the base step updated decides which nodes run next.
    """
    return {
        "v": base["v"],
        "id": str(uuid6(clock_seq=step)),
        "ts": datetime.now(timezone.utc).isoformat(),
        "channel_values": channel_values,
        "channel_versions": channel_versions,
        "versions_seen": copy.deepcopy(base["versions_seen"]),
        "updated_channels": base.get("updated_channels"),
    }


# ---------------------------------------------------------------- stored writes



def node_of_task_path(task_path: str) -> str:
    """The node a stored write came from: Pregel records a pulled task as ``~__pregel_pull, NODE``."""
    return task_path.rsplit(", ", 1)[-1] if task_path else ""


# ---------------------------------------------------------------- routers

def router(route: Callable[[Any], Any], aroute: Callable[[Any], Any]) -> Any:
    """A branch path that runs ``route`` when the graph is invoked synchronously and the coroutine
    ``aroute`` when asynchronously. A plain function alone is run in a thread pool under the async
    API (a hop per step); a coroutine alone cannot run under the sync one (``validate`` and other
    commands use it). LangGraph's own ``RunnableCallable`` with both, untraced, as it wraps nodes:
    its branch schema inference reads ``route``'s annotations."""
    from langgraph._internal._runnable import RunnableCallable

    return RunnableCallable(route, aroute, name=route.__name__, trace=False)
