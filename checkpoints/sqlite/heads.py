"""What the saver remembers of each thread's latest checkpoint, to store the next one as a difference.

LangGraph hands ``put`` a whole checkpoint; to store only what changed the
saver needs the parent's values and bodies decoded. They are kept here for
the threads in flight (an LRU bounded well above a run's concurrency), and
a head is used only when the checkpoint being stored is its child.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from dialogforge.checkpoints.sqlite.schema import HEAD_CACHE_THREADS, Chain
from dialogforge.checkpoints.sqlite.writes import Write


@dataclass
class Head:
    checkpoint_id: str
    body: dict[str, Any]
    body_chain: Chain
    versions: dict[str, Any]
    values: dict[str, Any]
    chains: dict[str, Chain]
    writes: list[Write] = field(default_factory=list)
    # delta channel -> (value a reader rebuilds at some checkpoint, write batches since), or UNKNOWN
    delta: dict[str, Any] = field(default_factory=dict)
    # Stored by this saver as a new checkpoint (not read back, not stored again): nothing was stored
    # on it yet (a child replaces it as the head), so it is its line's latest checkpoint, a child of
    # it is new, and ``writes`` are all its writes. Lets the usual step skip three lookups.
    fresh: bool = False


class Heads:
    def __init__(self, size: int = HEAD_CACHE_THREADS) -> None:
        self.size = size
        self._heads: OrderedDict[tuple[str, str], Head] = OrderedDict()

    def get(self, key: tuple[str, str], checkpoint_id: str | None) -> Head | None:
        """The thread's head if it is that checkpoint."""
        head = self._heads.get(key)
        return head if head is not None and head.checkpoint_id == checkpoint_id else None

    def set(self, key: tuple[str, str], head: Head) -> None:
        self._heads[key] = head
        self._heads.move_to_end(key)
        while len(self._heads) > self.size:
            self._heads.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        for key in [k for k in self._heads if k[0] == thread_id]:
            del self._heads[key]

    def clear(self) -> None:
        self._heads.clear()
