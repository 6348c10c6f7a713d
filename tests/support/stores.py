"""One store of each kind a ``--db`` can name, for tests that must hold on all of them.

``sqlite``: one file. ``sqlite-shards``: a dataset of two SQLite shards
(what ``--executor ray`` writes), planned round-robin and run shard by shard
with ``resume``, as a restarted Ray run is. ``postgres``: a fresh database on
the session's real PostgreSQL server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dialogforge.config import GenerationSettings
from dialogforge.runs.generate import generate, plan_generation
from dialogforge.runs.resume import ModelOverrides, resume_run
from tests.support.checkpoints import SCRIPTED

KINDS = ("sqlite", "sqlite-shards", "postgres")
SHARDS = 2


@dataclass
class Store:
    kind: str
    db: str

    def plan(self, settings: GenerationSettings) -> list[str]:
        """Record ``settings.n`` trajectories, run none (a driver killed after planning)."""
        shards = SHARDS if self.kind == "sqlite-shards" else None
        return plan_generation(self.db, settings, SCRIPTED, shards=shards).thread_ids

    def generate(self, settings: GenerationSettings) -> list[str]:
        """Generate with the scripted model; the thread ids in order."""
        if self.kind != "sqlite-shards":
            return generate(self.db, settings, SCRIPTED).thread_ids
        threads = self.plan(settings)
        resume_run(self.db, overrides=ModelOverrides(backend="scripted"))
        return threads


def make_store(kind: str, tmp_path: Path, pg_url: str | None = None) -> Store:
    if kind == "postgres":
        assert pg_url is not None
        return Store(kind, pg_url)
    return Store(kind, str(tmp_path / f"{kind}.db"))
