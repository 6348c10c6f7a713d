"""Interned names: every thread id, channel name and task path is stored once, as a small integer.

A dialogue step writes the same few channel names and task paths again and
again; as integers they cost a byte or two per row instead of their text.
The cache learns ids as they are read or created and is cleared whenever a
transaction rolls back (an id of a rolled-back row would dangle).
"""

from __future__ import annotations

import sqlite3


class Names:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._ids: dict[tuple[int, str], int] = {}
        self._names: dict[int, str] = {}

    def id(self, kind: int, name: str, *, create: bool) -> int | None:
        """The id of ``name`` (of a kind: thread, channel, path); None if unknown and not ``create``."""
        key = (kind, name)
        found = self._ids.get(key)
        if found is not None:
            return found
        row = self.conn.execute("SELECT id FROM cp_names WHERE kind = ? AND name = ?", key).fetchone()
        if row is None:
            if not create:
                return None
            row = (self.conn.execute("INSERT INTO cp_names (kind, name) VALUES (?, ?)", key).lastrowid,)
        self._ids[key] = row[0]
        self._names[row[0]] = name
        return row[0]

    def name(self, name_id: int) -> str:
        found = self._names.get(name_id)
        if found is None:
            row = self.conn.execute("SELECT kind, name FROM cp_names WHERE id = ?", (name_id,)).fetchone()
            if row is None:
                raise LookupError(f"name {name_id} missing from cp_names")
            self._ids[(row[0], row[1])] = name_id
            self._names[name_id] = found = row[1]
        return found

    def clear(self) -> None:
        self._ids.clear()
        self._names.clear()
