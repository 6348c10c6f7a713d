"""What the checkpoint tests check over and over: well-formed dialogues, raw rows, real runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dialogforge.checkpoints.manifest import Manifest
from dialogforge.runs.reading import load_state
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.runs.generate import generate
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Limits, Message

SCRIPTED = ModelsConfig(default=ModelConfig(backend="scripted"))


def small_run(db: Path, *, n: int = 2, seed: int = 3, max_turns: int = 12, max_tasks: int = 3, concurrency: int = 2) -> list[str]:
    """A real generated database (scripted model), the thread ids in order."""
    settings = GenerationSettings(n=n, seed=seed, concurrency=concurrency,
                                  limits=Limits(max_user_turns=max_turns, max_tasks=max_tasks))
    return generate(db, settings, SCRIPTED).thread_ids


def dialogue_problem(messages: list[Message], *, finished: bool = True) -> str | None:
    """Why a message list is not a legal dialogue (None if it is).

    User first; a user message follows an assistant reply; an assistant
    message follows a user message or the last of its tool results; every
    tool call is answered, in order, by one tool message before anything
    else; nothing answers a call that was not made.
    """
    expected: list[str] = []
    previous: Message | None = None
    for i, m in enumerate(messages):
        if m.role == "tool":
            if not expected:
                return f"message {i}: tool result without an open tool call"
            if m.tool_call_id != expected[0]:
                return f"message {i}: answers {m.tool_call_id}, expected {expected[0]}"
            expected.pop(0)
        else:
            if expected:
                return f"message {i}: {m.role} before tool call {expected[0]} was answered"
            if m.role == "user" and previous is not None and not (previous.role == "assistant" and not previous.tool_calls):
                return f"message {i}: user message after {previous.role}"
            if m.role == "assistant" and (previous is None or previous.role not in ("user", "tool")):
                return f"message {i}: assistant message after {previous.role if previous else 'nothing'}"
            if m.role == "system":
                return f"message {i}: system message inside the dialogue"
            if m.role == "assistant":
                expected = [c.id for c in m.tool_calls]
        previous = m
    if finished and expected:
        return f"tool call {expected[0]} never answered"
    if messages and messages[0].role != "user":
        return f"starts with {messages[0].role}"
    return None


def counters_problem(state: DialogueState) -> str | None:
    """Counters that disagree with the messages they count."""
    c, ms = state.counters, state.messages
    checks = {
        "user_turns": (c.user_turns, sum(m.role == "user" for m in ms)),
        "assistant_turns": (c.assistant_turns, sum(m.role == "assistant" for m in ms)),
        "tool_calls": (c.tool_calls, sum(len(m.tool_calls) for m in ms)),
        "tool_errors": (c.tool_errors, sum(m.role == "tool" and m.is_error for m in ms)),
    }
    for name, (counted, actual) in checks.items():
        if counted != actual:
            return f"counters.{name} = {counted}, messages say {actual}"
    return None


def manifest_rows(db: Path) -> list[dict]:
    manifest = Manifest(db)
    try:
        return manifest.rows()
    finally:
        manifest.close()


def states(db: Path, thread_ids: list[str]) -> list[DialogueState]:
    return [load_state(db, t) for t in thread_ids]


def thread_rows(db: Path, thread_id: str) -> list[list[tuple]]:
    """Every stored row of a thread (checkpoints, values, writes) and its manifest row, byte for byte."""
    conn = sqlite3.connect(db)
    try:
        found = conn.execute("SELECT id FROM cp_names WHERE kind = 0 AND name = ?", (thread_id,)).fetchone()
        tid = found[0] if found else -1
        rows = [
            conn.execute(f"SELECT * FROM {table} WHERE thread = ? ORDER BY 2, 3, 4", (tid,)).fetchall()
            for table in ("cp_checkpoints", "cp_blobs", "cp_writes")
        ]
        rows.append(conn.execute("SELECT * FROM runs WHERE thread_id = ?", (thread_id,)).fetchall())
        return rows
    finally:
        conn.close()


def recorded_run_config(db: Path) -> dict:
    """The one run's recorded configuration (``run_configs``), as JSON."""
    conn = sqlite3.connect(db)
    try:
        return json.loads(conn.execute("SELECT config FROM run_configs").fetchone()[0])
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def checkpoint_count(db: Path) -> int:
    """Checkpoints stored so far (0 before the tables exist), read without disturbing a writer."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return conn.execute("SELECT count(*) FROM cp_checkpoints").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        conn.close()
