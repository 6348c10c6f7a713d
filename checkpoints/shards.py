"""A sharded SQLite dataset: one database file per Ray worker, read back as one.

``generate --executor ray --db out/run.db`` (a SQLite path) gives each
worker its own file, ``out/run.db.shards/shard-000.db`` ..., because one
SQLite file takes one writing process. Each shard is an ordinary
dialogforge database (checkpoints, manifest, run config). Readers given
``out/run.db`` see the union: ``list``/``export``/``stats`` read every
shard's manifest; ``show``/``history``/``fork`` find the shard holding the
thread (a fork lives beside its source); ``resume`` continues each shard
in turn. No merge step. Shards need one machine's disk (or each worker's
own): SQLite over a network filesystem is not safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import sqlite_utils

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.checkpoints.urls import is_postgres_url
from dialogforge.checkpoints.sqlite_file import check_db_path

SUFFIX = ".shards"


def shard_dir(db: str | Path) -> Path:
    return Path(str(db) + SUFFIX)


def shard_path(db: str | Path, index: int) -> Path:
    return shard_dir(db) / f"shard-{index:03d}.db"


def is_sharded(db: str | Path) -> bool:
    """A sharded dataset: no single file at ``db``, a shard directory beside it."""
    return not is_postgres_url(db) and not Path(db).exists() and shard_dir(db).is_dir()


def shard_paths(db: str | Path) -> list[Path]:
    return sorted(shard_dir(db).glob("shard-*.db"))


def check_shards(db: str | Path) -> None:
    for path in shard_paths(db):
        check_db_path(path, must_exist=True)


def thread_store(db: str | Path, thread_id: str) -> str | Path:
    """Where ``thread_id`` lives: its shard for a sharded dataset (the first if none has it, so the
    caller's own "no trajectory" message names a real file), else ``db`` itself."""
    if not is_sharded(db):
        return db
    paths = shard_paths(db)
    for path in paths:
        manifest = Manifest(path)
        try:
            if manifest.get(thread_id) is not None:
                return path
        finally:
            manifest.close()
    return paths[0] if paths else db


class ShardedManifest:
    """The shards' manifests read as one (rows, get, run_config); writes go to a shard's own ``Manifest``."""

    def __init__(self, db: str | Path):
        self.path = Path(db)
        self.parts = [Manifest(path) for path in shard_paths(db)]

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def upgrade(self) -> None:
        for part in self.parts:
            part.upgrade()

    def rows(self, *, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = None if statuses is None else list(statuses)
        rows = [row for part in self.parts for row in part.rows(statuses=wanted)]
        return sorted(rows, key=lambda r: (r["created_at"] or "", r["thread_id"]))

    def get(self, thread_id: str) -> dict[str, Any] | None:
        return next((row for part in self.parts if (row := part.get(thread_id)) is not None), None)

    def libraries(self) -> list[dict[str, Any]]:
        """Each library once: every shard keeps its own copy of the libraries its rows use."""
        seen: dict[str, dict[str, Any]] = {}
        for part in self.parts:
            for row in part.libraries():
                seen.setdefault(row["library_id"], row)
        return sorted(seen.values(), key=lambda r: (r["created_at"] or "", r["library_id"]))

    def library(self, library_id: str) -> dict[str, Any] | None:
        return next((row for part in self.parts if (row := part.library(library_id)) is not None), None)

    def run_config(self, run_id: str) -> dict[str, Any]:
        for part in self.parts:
            try:
                return part.run_config(run_id)
            except sqlite_utils.db.NotFoundError:
                continue
        raise sqlite_utils.db.NotFoundError(run_id)
