"""One running process per database: generate, resume and fork take this lock.

Two processes continuing the same trajectories would each append their own
steps to one thread and duplicate work. The lock is an advisory ``flock``
on the database file itself (SQLite's own locks are POSIX record locks,
which do not interact with it on Linux), so a killed process releases it
with its file descriptors and nothing stale is left behind. Within one
process the lock is re-entrant: ``resume`` holds it while planning and the
engine takes it again to run.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dialogforge.errors import StoreError

_held: dict[str, list[int]] = {}  # resolved path -> [fd, depth]
_guard = threading.Lock()


@contextmanager
def run_lock(db_path: str | Path) -> Iterator[None]:
    """Hold the database's run lock, or fail at once with a one-line reason."""
    path = Path(db_path)
    key = str(path.resolve())
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            _held[key] = [_acquire(path), 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.close(entry[0])  # closing the descriptor releases the flock


def _acquire(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the database to lock it ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(
            f"{path}: another dialogforge process (generate, resume or fork) is running on this database; "
            "wait for it to finish or stop it"
        ) from None
    return fd
