"""The simulated world: entities keyed by kind and id, folded from the trajectory's tool messages.

Each tool message of the simulated backend carries the ``EntityOp`` list of
its call (``Message.entity_ops``): what it created, updated (only the changed
fields), deleted, and what its result showed (reads). The world at any
point is those ops applied in message order, so it is never stored apart
from the messages: a checkpoint's messages imply its world exactly, a fork
or a resume sees that world, and storage stays linear (messages are a delta
channel). Updates deep-merge, so fields an update does not name survive;
reads merge too, so what a lookup returned is what the next one finds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from dialogforge.records import EntityOp, JsonObject, Message


@dataclass
class Entity:
    kind: str
    id: str
    fields: JsonObject = field(default_factory=dict)
    deleted: bool = False


@dataclass
class World:
    """Entities by (kind, id), least recently touched first."""

    entities: dict[tuple[str, str], Entity] = field(default_factory=dict)

    def get(self, kind: str, entity_id: str) -> Entity | None:
        return self.entities.get((normal_kind(kind), str(entity_id).strip()))

    def apply(self, ops: Iterable[EntityOp]) -> None:
        for op in ops:
            key = (normal_kind(op.kind), op.id.strip())
            entity = self.entities.pop(key, None)  # re-inserted at the end: most recently touched
            if op.op == "delete":
                entity = entity or Entity(*key)
                entity.deleted = True
            elif op.op == "create" or entity is None or entity.deleted:
                entity = Entity(*key, fields=deep_merge({}, op.fields))
            else:  # update, read
                entity.fields = deep_merge(entity.fields, op.fields)
            self.entities[key] = entity

    def live(self) -> list[Entity]:
        return [e for e in self.entities.values() if not e.deleted]

    def deleted(self) -> list[Entity]:
        return [e for e in self.entities.values() if e.deleted]


def world_of(messages: Iterable[Message]) -> World:
    """The world the messages imply: every tool message's ops, in order."""
    world = World()
    for message in messages:
        if message.role == "tool" and message.entity_ops:
            world.apply(message.entity_ops)
    return world


def deep_merge(base: JsonObject, changes: JsonObject) -> JsonObject:
    """``base`` with ``changes`` laid over it: nested objects merge, anything else is replaced.

    A fresh structure; neither argument is modified.
    """
    merged: dict[str, Any] = {key: _copy(value) for key, value in base.items()}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def normal_kind(kind: str) -> str:
    """``Order``, ``order `` and ``Support Ticket`` name the kinds ``order`` and ``support_ticket``."""
    return re.sub(r"[\s-]+", "_", kind.strip()).lower()
