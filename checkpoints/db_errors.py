"""SQLite failures as one-line store errors, at the edge of every library call that touches the database.

A locked, corrupted or unwritable database surfaces deep inside a run as a
``sqlite3`` exception; the user needs one line naming the file and the
problem, not a traceback. Nothing half-done is left behind: every write is
one transaction, rolled back when it fails.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dialogforge.errors import StoreError


@contextmanager
def database_errors(db_path: str | Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise StoreError(f"{db_path}: database is locked by another program; try again when it is done ({text})") from exc
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            raise StoreError(f"{db_path}: cannot write the database or its journal beside it ({text})") from exc
        raise StoreError(f"{db_path}: database error ({text})") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{db_path}: unreadable or corrupted database ({exc})") from exc


def check_integrity(db_path: str | Path) -> None:
    """Refuse to write into a damaged database (``PRAGMA quick_check``: one pass over its pages)."""
    with database_errors(db_path):
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        finally:
            conn.close()
    if verdict != "ok":
        verdict = " ".join(verdict.replace("*** in database main ***", "").split())
        raise StoreError(f"{db_path}: corrupted database ({verdict}); restore a copy, or salvage it with `sqlite3 {db_path} .recover`")
