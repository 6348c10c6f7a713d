"""Reading a store back in the Postgres and Ray tests: manifest rows, final dialogues, checkpointed threads."""

from __future__ import annotations

import psycopg

from dialogforge.checkpoints.store_kinds import open_manifest
from dialogforge.runs.reading import load_state


def rows(db) -> list[dict]:
    manifest = open_manifest(db)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def dialogues(db) -> dict[str, str]:
    """Each trajectory's final state by index (thread ids differ between runs, the index suffix does not)."""
    return {r["thread_id"].rsplit("-", 1)[1]: load_state(db, r["thread_id"]).model_dump_json() for r in rows(db)}


def checkpointed_threads(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(DISTINCT thread_id) FROM checkpoints").fetchone()[0]
