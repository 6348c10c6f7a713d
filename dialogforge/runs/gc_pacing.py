"""Python's cyclic garbage collector paced for a run's heap: hundreds of long dialogues in memory.

With the interpreter's thresholds (700, 10, 10) a run at 128 dialogues in
flight spent 13% of its wall time in the collector (measured by
``benchmarks/throughput.py``: 2.6 s of a 20 s window), and each full
collection walked every message of every dialogue in flight: up to half a
second in which no dialogue's step ran. Nearly all of a run's memory is
freed by reference counting (its steps' temporaries) or lives as long as a
dialogue (its history), so collecting young objects 70x less often and the
whole heap only after the heap has grown a good deal finds the same cycles,
later, at a small fraction of the cost.

``paced_gc`` sets those thresholds for the length of a run and restores the
caller's afterwards (a script that calls ``generate`` gets its own back); it
also freezes what exists when the run starts (modules, the run's set-up),
which no collection during the run then walks again. Nested runs (a worker
process's, a resume inside a script's run) leave the outermost one's pacing
in place.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Young objects collected every 50k net allocations instead of 700; the middle generation every
# 10 of those; the whole heap every 100 middle collections, and (the interpreter's own rule) only
# once a quarter more objects than the last full collection kept have survived to it.
RUN_THRESHOLDS = (50_000, 10, 100)

_lock = threading.Lock()
_depth = 0


@contextmanager
def paced_gc() -> Iterator[None]:
    global _depth
    with _lock:
        _depth += 1
        outer = _depth == 1
        if outer:
            before = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if outer:
                gc.set_threshold(*before)
                gc.unfreeze()
