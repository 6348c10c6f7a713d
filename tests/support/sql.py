"""Shared by the Tool-Exec tests: a tiny notes domain and an independent oracle.

The notes domain is built so that the scripted agent's schema-filled
arguments make writes succeed often (ids in a small range, free-text
bodies), which the example domains' foreign keys rarely allow. The oracle
answers "what should a SELECT have returned at this point of the
trajectory?" by rebuilding the database from the source plus the writes
logged before that point, then querying the copy with a plain sqlite3
connection, not through the code under test's result path.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from dialogforge.sqltools import ExecLimits, SqlDomain, TrajectoryDatabase
from dialogforge.sqltools.arguments import bind_arguments
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Message, SqlKind, SqlWrite

NOTES_SCHEMA = """
CREATE TABLE notes (note_id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE labels (label TEXT PRIMARY KEY);
"""
NOTES_ROWS = [(1, "buy milk"), (2, "call the bank")]
LIST_NOTES_SQL = "SELECT note_id, body FROM notes ORDER BY note_id"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def notes_tools(body_schema: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    body = body_schema or {"type": "string", "description": "The note's text."}
    note_id = {"type": "integer", "minimum": 1, "maximum": 4, "description": "The note's id."}

    def tool(name: str, description: str, kind: SqlKind, statement: str, properties: dict, required: list[str]) -> dict:
        return {
            "type": "function",
            "function": {"name": name, "description": description,
                         "parameters": {"type": "object", "properties": properties, "required": required, "additionalProperties": False}},
            "result_schema": {"type": "array"} if kind is SqlKind.SELECT else {"type": "object"},
            "source": "seed",
            "sql": {"kind": kind.value, "statement": statement},
        }

    return [
        tool("search_notes", "List every note.", SqlKind.SELECT, LIST_NOTES_SQL, {}, []),
        tool("search_notes_by_text", "Notes whose text contains the given text.", SqlKind.SELECT,
             "SELECT note_id, body FROM notes WHERE body LIKE '%' || :text || '%' ORDER BY note_id", {"text": body}, ["text"]),
        tool("create_note", "Add a note.", SqlKind.INSERT, "INSERT INTO notes (body) VALUES (:body)", {"body": body}, ["body"]),
        tool("update_note", "Replace a note's text.", SqlKind.UPDATE, "UPDATE notes SET body = :body WHERE note_id = :note_id",
             {"note_id": note_id, "body": body}, ["note_id", "body"]),
        tool("delete_note", "Delete a note.", SqlKind.DELETE, "DELETE FROM notes WHERE note_id = :note_id", {"note_id": note_id}, ["note_id"]),
    ]


def build_notes_domain(directory: Path, *, body_schema: dict[str, Any] | None = None) -> Path:
    """``directory/notes.sqlite`` and ``notes.tools.json`` beside it (found by default)."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "notes.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(NOTES_SCHEMA)
    conn.executemany("INSERT INTO notes VALUES (?, ?)", NOTES_ROWS)
    conn.commit()
    conn.close()
    (directory / "notes.tools.json").write_text(json.dumps(notes_tools(body_schema), indent=1), encoding="utf-8")
    return db


def query_copy(domain: SqlDomain, workdir: Path, key: str, writes: list[SqlWrite], sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
    """The rows ``sql`` returns on (source + ``writes``), read with a plain connection."""
    with TrajectoryDatabase.open(domain.db_path, workdir, key, writes, tools=domain.tools) as db:
        path = db.path
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def tool_results(state: DialogueState) -> list[tuple[Message, Message]]:
    """(call-carrying assistant message's call, tool reply) pairs in order, as (call, reply)."""
    pairs = []
    calls = {c.id: c for m in state.messages if m.role == "assistant" for c in m.tool_calls}
    for message in state.messages:
        if message.role == "tool":
            pairs.append((calls[message.tool_call_id], message))
    return pairs


def check_against_oracle(state: DialogueState, domain: SqlDomain, workdir: Path, key: str) -> dict[str, int]:
    """Walk a finished trajectory. Every successful write must be the next entry of its
    log; every SELECT reply must equal the tool's own statement run with a plain
    connection on (source + exactly the writes logged before it). Returns counts:
    writes, selects, and listings that showed a note body this trajectory wrote."""
    specs = {spec.name: spec for spec in domain.tools}
    own_bodies: set[str] = set()
    logged = 0
    counts = {"writes": 0, "selects": 0, "read_after_write": 0}
    for call, reply in tool_results(state):
        if reply.is_error:
            continue
        spec = specs[call.name]
        result, _ = json.JSONDecoder().raw_decode(reply.content)  # a capped listing has a note after its rows
        if spec.sql.kind is not SqlKind.SELECT:
            if result["rows_affected"]:
                assert state.sql_writes[logged] == SqlWrite(tool=call.name, arguments=call.arguments)
                logged += 1
                counts["writes"] += 1
                if "body" in call.arguments:
                    own_bodies.add(call.arguments["body"])
            continue
        params = bind_arguments(spec, call.arguments, max_value_bytes=ExecLimits().max_value_bytes)
        expected = query_copy(domain, workdir, key, state.sql_writes[:logged], spec.sql.statement, params)
        cap = ExecLimits().max_rows
        if len(expected) > cap:  # the first rows, still a list of rows, and a note saying how many matched
            assert reply.content.endswith(f"[result truncated: {cap} of {len(expected)} rows shown; narrow the query to see the rest]")
            expected = expected[:cap]
        assert result == expected, (call, state.sql_writes[:logged], result, expected)
        counts["selects"] += 1
        if isinstance(result, list):
            counts["read_after_write"] += bool({row.get("body") for row in result} & own_bodies)
    assert logged == len(state.sql_writes)  # nothing logged that the dialogue does not show
    return counts
