"""The run manifest: one row per trajectory, in the same database as the checkpoints.

Every requested trajectory is written here (``pending``) before any starts,
so a kill at any moment leaves nothing unaccounted for: ``resume`` finds
every row that is not ``done`` or ``failed``. A finished row carries what its
trajectory cost: tokens per role (``usage``, JSON) and, with prices, dollars
(``cost_usd``, and per role inside ``usage``), computed from the final
checkpoint's counters (``dialogforge.pricing``), never added up on the way.
Columns added after a database was made (``language``, ``persona``, the cost
columns) are added to it on first write (``alter=True``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable, Protocol

import sqlite_utils
from pydantic import BaseModel

from dialogforge.checkpoints.sqlite_file import check_db_path, connect
from dialogforge.pricing import Pricing, usage_record
from dialogforge.records import Counters, StopReason, ToolExec


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class PlannedTrajectory(BaseModel):
    thread_id: str
    run_id: str
    seed: int
    mode: str
    domain: str
    config_hash: str
    initial_state: str  # JSON of the DialogueState input, minus seed tools kept per run
    parent_thread_id: str | None = None
    fork_checkpoint_id: str | None = None
    tool_exec: str = ToolExec.SIMULATED.value  # what answered tool calls: simulated or sql (Tool-Exec)
    language: str | None = None  # BCP-47, as planned (``--language``, or the domain's or persona's own)
    persona: str | None = None


_RUNS_COLUMNS = {
    "thread_id": str, "run_id": str, "status": str, "stop_reason": str, "error": str,
    "seed": int, "mode": str, "domain": str, "config_hash": str,
    "parent_thread_id": str, "fork_checkpoint_id": str,
    "created_at": str, "started_at": str, "finished_at": str,
    "user_turns": int, "messages": int, "tool_calls": int, "tool_errors": int,
    "tasks": int, "tokens": int, "initial_state": str, "tool_exec": str,
    "language": str, "persona": str, "cost_usd": float, "usage": str,
}


# Tool libraries (``dialogforge.inputs.tool_library``) a run's trajectories use, stored once per
# database as JSON text: storage knows no library format. ``build_key`` names what a run built the
# library from (its domain and seed tools), so a later run of the same domain reuses it; a library
# given as a file has none.
LIBRARY_COLUMNS = {"library_id": str, "name": str, "domain": str, "build_key": str, "created_at": str, "library": str}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Finished(Protocol):
    """What the manifest reads of a finished trajectory (the graph's ``DialogueState`` has it)."""

    stop_reason: StopReason | None
    error: str | None
    counters: Counters
    messages: list[Any]
    tasks: list[Any]


def cost_fields(counters: Counters, pricing: Pricing | None) -> dict[str, Any]:
    """What a trajectory cost, from its counters: the ``usage`` and ``cost_usd`` columns."""
    return {
        "usage": json.dumps(usage_record(counters.usage, pricing)),
        "cost_usd": pricing.total(counters.usage) if pricing else None,
    }


def finished_fields(state: Finished, pricing: Pricing | None = None) -> dict[str, Any]:
    """A finished trajectory's row fields: its status, counters and cost (every manifest store writes these)."""
    failed = state.stop_reason in (None, StopReason.ERROR)
    counters = state.counters
    return {
        **cost_fields(counters, pricing),
        "status": (Status.FAILED if failed else Status.DONE).value,
        "stop_reason": state.stop_reason.value if state.stop_reason else None,
        "error": state.error if failed else None,
        "finished_at": now(),
        "user_turns": counters.user_turns,
        "messages": len(state.messages),
        "tool_calls": counters.tool_calls,
        "tool_errors": counters.tool_errors,
        "tasks": len(state.tasks),
        "tokens": counters.total_tokens,
    }


class Manifest:
    def __init__(self, path: str | Path, *, create: bool = False):
        self.path = check_db_path(path, must_exist=not create)
        self.conn: sqlite3.Connection = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self.lock = threading.Lock()  # writes arrive from worker threads
        if "runs" not in self.db.table_names():
            self.db["runs"].create(_RUNS_COLUMNS, pk="thread_id", if_not_exists=True)
            self.db["runs"].create_index(["status"], if_not_exists=True)
            self.db["run_configs"].create({"run_id": str, "created_at": str, "config": str}, pk="run_id", if_not_exists=True)

    def close(self) -> None:
        self.conn.close()

    def upgrade(self) -> None:
        """Give a table made by an earlier version the columns added since, in one transaction,
        before a run writes to it: added lazily (``alter=True``) in the middle of a run, the
        ALTER TABLE would wait on the checkpointer's open write and fail as a locked database."""
        present = {column.name for column in self.db["runs"].columns}
        missing = {name: kind for name, kind in _RUNS_COLUMNS.items() if name not in present}
        if missing:
            with self.lock, self.db.atomic():
                for name, kind in missing.items():
                    self.db["runs"].add_column(name, kind)

    def record_run(self, run_id: str, config: dict[str, Any]) -> None:
        self.db["run_configs"].insert({"run_id": run_id, "created_at": now(), "config": json.dumps(config)}, replace=True)

    def run_config(self, run_id: str) -> dict[str, Any]:
        return json.loads(self.db["run_configs"].get(run_id)["config"])

    def record_run_and_planned(self, run_id: str, config: dict[str, Any], planned: Iterable[PlannedTrajectory]) -> None:
        """The run's config and every planned row in one transaction: a kill leaves all of it or none."""
        with self.db.atomic():
            self.record_run(run_id, config)
            self.record_planned(planned)

    def record_planned(self, planned: Iterable[PlannedTrajectory]) -> None:
        created = now()
        rows = [{**p.model_dump(), "status": Status.PENDING.value, "created_at": created} for p in planned]
        with self.db.atomic():  # a savepoint inside a caller's transaction (record_run_and_planned)
            # alter: a database made before a column existed (tool_exec) gains it here
            self.db["runs"].insert_all(rows, pk="thread_id", batch_size=500, alter=True)

    def mark_running(self, thread_id: str) -> None:
        with self.lock, self.conn:
            self.db["runs"].update(thread_id, {"status": Status.RUNNING.value, "started_at": now()})

    def mark_finished(self, thread_id: str, state: Finished, pricing: Pricing | None = None) -> None:
        with self.lock, self.conn:
            self.db["runs"].update(thread_id, finished_fields(state, pricing), alter=True)

    def mark_crashed(self, thread_id: str, reason: str, cost: dict[str, Any] | None = None) -> None:
        """``cost``: ``cost_fields`` of its last checkpoint, when it could be read."""
        with self.lock, self.conn:
            self.db["runs"].update(thread_id, {"status": Status.FAILED.value, "error": reason, "finished_at": now(),
                                               **(cost or {})}, alter=True)

    def record_library(self, library_id: str, name: str, domain: str, build_key: str | None, text: str) -> None:
        """Store a library once; the same library again is a no-op (its id is a digest of its content)."""
        with self.lock, self.conn:
            self.db["tool_libraries"].create(LIBRARY_COLUMNS, pk="library_id", if_not_exists=True)
            self.db["tool_libraries"].insert({"library_id": library_id, "name": name, "domain": domain,
                                              "build_key": build_key, "created_at": now(), "library": text}, ignore=True)

    def libraries(self) -> list[dict[str, Any]]:
        """Every stored library, oldest first (a database from before libraries has none)."""
        if "tool_libraries" not in self.db.table_names():
            return []
        return list(self.db["tool_libraries"].rows_where(order_by="created_at, library_id"))

    def library(self, library_id: str) -> dict[str, Any] | None:
        if "tool_libraries" not in self.db.table_names():
            return None
        try:
            return self.db["tool_libraries"].get(library_id)
        except sqlite_utils.db.NotFoundError:
            return None

    def rows(self, *, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        if statuses is None:
            return list(self.db["runs"].rows_where(order_by="created_at, thread_id"))
        wanted = list(statuses)
        marks = ", ".join("?" for _ in wanted)
        return list(self.db["runs"].rows_where(f"status in ({marks})", wanted, order_by="created_at, thread_id"))

    def get(self, thread_id: str) -> dict[str, Any] | None:
        try:
            return self.db["runs"].get(thread_id)
        except sqlite_utils.db.NotFoundError:
            return None
