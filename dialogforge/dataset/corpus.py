"""Reading a database's trajectories one at a time, with what every consumer needs beside the state.

Only the public reading functions are used (``Manifest`` rows, expanded to
one per leaf of a thread branched in place, and ``load_state``), so storage
internals can change underneath. States
are yielded one by one and never collected: an export of ten thousand
trajectories holds one state at a time.

Every consumer reads a trajectory as its *view*: a capped trajectory that
completed a task is cut after that task (``dialogforge.dataset.cut``), so
validation, export and statistics agree on what the dialogue is. The
fingerprint stays that of the stored state, which is what changes when a
trajectory is resumed or continued.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from dialogforge.checkpoints.manifest import Status
from dialogforge.runs.branches import with_branches
from dialogforge.runs.reading import load_state
from dialogforge.checkpoints.store_kinds import open_manifest
from dialogforge.dataset.cut import Cut, cut_capped
from dialogforge.errors import NotFoundError
from dialogforge.graphs.state import DialogueState
from dialogforge.records import ToolExec, ToolSource

FINISHED = (Status.DONE.value, Status.FAILED.value)


@dataclass
class View:
    """A trajectory as the dataset sees it: the state (cut when capped), what was cut, and
    the fingerprint of the stored state."""

    state: DialogueState
    cut: Cut | None
    fingerprint: str


@dataclass
class Trajectory:
    row: dict[str, Any]  # the manifest row
    state: DialogueState  # the view's state: cut after the last completed task when capped
    cut: Cut | None = None
    fingerprint: str = ""  # of the stored state

    @property
    def thread_id(self) -> str:
        return self.row["thread_id"]


def manifest_rows(db_path: str | Path, statuses: Iterable[str] = FINISHED) -> list[dict[str, Any]]:
    """The trajectories with these statuses: manifest rows, and one row per other leaf of a
    thread branched in place (``dialogforge.runs.branches``: one sample per leaf)."""
    manifest = open_manifest(db_path)
    try:
        rows = with_branches(db_path, manifest.rows())
    finally:
        manifest.close()
    wanted = set(statuses)
    return [row for row in rows if row["status"] in wanted]


def run_configs(db_path: str | Path, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each run's recorded settings and models; a run without a record (an import) maps to {}."""
    manifest = open_manifest(db_path)
    try:
        configs = {}
        for run_id in set(run_ids):
            try:
                configs[run_id] = manifest.run_config(run_id)
            except sqlite_utils.db.NotFoundError:
                configs[run_id] = {}
        return configs
    finally:
        manifest.close()


def load_or_none(db_path: str | Path, thread_id: str) -> DialogueState | None:
    """The state, or None for a trajectory that failed before its first checkpoint."""
    try:
        return load_state(db_path, thread_id)
    except NotFoundError:
        return None


def view_of(state: DialogueState) -> View:
    trimmed, cut = cut_capped(state)
    return View(trimmed, cut, fingerprint(state))


def load_view(db_path: str | Path, thread_id: str) -> View | None:
    """The trajectory's view, or None for one that failed before its first checkpoint."""
    state = load_or_none(db_path, thread_id)
    return None if state is None else view_of(state)


def iter_trajectories(db_path: str | Path, rows: Iterable[dict[str, Any]]) -> Iterator[Trajectory]:
    for row in rows:
        view = load_view(db_path, row["thread_id"])
        if view is not None:
            yield Trajectory(row, view.state, view.cut, view.fingerprint)


def fingerprint(state: DialogueState) -> str:
    """A digest of what validation looks at, so stale results are noticed after a resume."""
    payload = state.model_dump_json(include={"messages", "tasks", "tools", "stop_reason", "mode"})
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def source_of(state: DialogueState, run_config: dict[str, Any]) -> str:
    """Where the tools came from, as the paper's Table 1 groups it: a seed file, synthesis, SQL,
    or a tool library the run was given (by its name, as the paper names "tau2 tools"), or an MCP
    server that answered the calls."""
    if state.tool_exec is ToolExec.SQL or any(tool.sql is not None for tool in state.tools):
        return "sql"
    if state.tool_exec is ToolExec.MCP:
        return "mcp"
    if state.tool_library is not None and run_config.get("tool_libraries_given"):
        return f"library {state.tool_library.name}"
    if state.tool_source is ToolSource.SYNTHESIZE:
        return "synthesized"
    settings = run_config.get("settings") or {}
    tools_file = settings.get("tools_file")
    listed = settings.get("mcp_server") or settings.get("mcp_url")
    name = Path(tools_file).name if tools_file else "mcp tools" if listed else "seed tools"
    return name if state.tool_source is ToolSource.SEED else f"{name}+synthesized"
