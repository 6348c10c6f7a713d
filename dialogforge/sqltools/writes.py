"""The write log: what makes a trajectory's database reproducible.

A trajectory's database content is a pure function of (source database,
ordered writes it executed). The writes live in the dialogue state, so a
checkpoint carries them and a fork at any checkpoint carries exactly the
writes made up to there. A copy on disk records a digest chain over the
writes it has applied; comparing it with the chain over a state's log tells
whether the copy can be reused, extended, or must be rebuilt.

``SqlWrite`` itself is defined in ``dialogforge.graphs.state``: it is part of the
checkpointed state, which deserializes only that module's types.
"""

from __future__ import annotations

import hashlib
import json
import os
from stat import S_ISREG
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from dialogforge.records import SqlWrite

_RACY_NS = 2_000_000_000

__all__ = ["SqlWrite", "canonical", "digest_chain", "next_digest", "settled_stamp", "source_digest"]


def canonical(write: SqlWrite) -> str:
    """A stable text for hashing: key order and spacing never matter."""
    return json.dumps(
        {"tool": write.tool, "arguments": write.arguments},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def next_digest(previous: str, write: SqlWrite) -> str:
    return hashlib.sha256(f"{previous}\n{canonical(write)}".encode("utf-8", "surrogatepass")).hexdigest()


def digest_chain(origin: str, writes: Sequence[SqlWrite]) -> list[str]:
    """``chain[k]`` identifies the content after the first ``k`` writes."""
    chain = [origin]
    for write in writes:
        chain.append(next_digest(chain[-1], write))
    return chain


def source_digest(path: str | os.PathLike[str]) -> str:
    """The sha256 of a source database file; the chain's starting point.

    Hashing is cached per (file, size, mtime) so that opening a trajectory
    per tool call does not re-read a large source every time. A file modified
    in the last two seconds is always re-hashed: file-system timestamps are
    coarse, and a change within one tick would otherwise go unseen.
    """
    file = Path(path).resolve()
    stat = file.stat()
    if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
        return _file_sha256.__wrapped__(str(file), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return _file_sha256(str(file), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def settled_stamp(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime) of a file last modified over two seconds ago; None when more
    recently (a change within one timestamp tick could keep the stamp). A caller that hashed the
    file under a settled stamp need not hash it again while the stamp holds; one ``stat``, where
    ``source_digest`` also resolves the path. Raises ``OSError`` when no regular file is there."""
    stat = os.stat(path)
    if not S_ISREG(stat.st_mode):
        raise FileNotFoundError(f"not a file: {path}")
    if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
