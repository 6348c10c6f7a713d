"""What a ``--db`` value names: a PostgreSQL URL or a SQLite path; and how to print a URL safely.

Plain string functions, so every command can tell the stores apart without
loading a database driver.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(db: object) -> bool:
    return isinstance(db, str) and db.startswith(SCHEMES)


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"
