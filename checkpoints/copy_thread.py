"""Copying a LangGraph thread: what LangGraph's SQLite saver does not implement.

A copy must carry the whole ancestor chain with its writes, because the
message list (a ``DeltaChannel``) is rebuilt by replaying them. A copy up to
a checkpoint leaves out that checkpoint's own writes: they are the step the
source took from it, and the copy is meant to take its own.

This is the raw copy, without a manifest row; ``dialogforge.runs.fork`` builds
trajectories with lineage on top of it.
"""

from __future__ import annotations

from pathlib import Path

from dialogforge.checkpoints.db_errors import database_errors
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.errors import NotFoundError, StoreError


def copy_thread(db_path: str | Path, source_thread_id: str, target_thread_id: str, checkpoint_id: str | None = None) -> None:
    """Copy ``source_thread_id`` (whole, or its history up to ``checkpoint_id``) to a new thread id."""
    with database_errors(db_path), open_saver(db_path) as saver:
        if not saver.thread_exists(source_thread_id):
            raise NotFoundError(f"{db_path}: no checkpoints for thread {source_thread_id!r}")
        if saver.thread_exists(target_thread_id):
            raise StoreError(f"{db_path}: thread {target_thread_id!r} already exists; pick a new id")
        try:
            with saver.transaction():
                if checkpoint_id is None:
                    saver.copy_thread(source_thread_id, target_thread_id)
                else:
                    saver.copy_thread_prefix(source_thread_id, target_thread_id, checkpoint_id)
        except LookupError as exc:
            raise NotFoundError(f"{db_path}: {exc}") from exc
