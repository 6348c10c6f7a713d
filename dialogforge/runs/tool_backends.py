"""Choosing what answers a run's tool calls: the LLM world model, real SQL, or an MCP server.

``generate`` (and anything that continues a run: resume, fork) turns the
run's settings into an ``executor_for(thread_id)`` factory here. For
Tool-Exec the domain is loaded and every SQL template validated once,
before anything is written, so a bad domain is one clear error. MCP runs are
prepared by ``dialogforge.runs.mcp_backend``; their executors come from here too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dialogforge.config import GenerationSettings, Role
from dialogforge.errors import DomainError
from dialogforge.models import ModelSet
from dialogforge.sqltools import SqlDomain, SqlExecError, draft_tools_from_schema, load_sql_domain, schema_summary, scratch_schema, validate_tool
from dialogforge.sqltools.writes import source_digest
from dialogforge.runs.engine import ExecutorFactory
from dialogforge.runs.mcp_backend import McpBackend, backend_for_run
from dialogforge.records import ToolExec, ToolSource, ToolSpec
from dialogforge.executors.sql import SqlToolExecutor, worlds_dir
from dialogforge.executors.simulated import SimulatedToolExecutor


def default_tools_file(domain_db: str | os.PathLike[str]) -> Path | None:
    """``<stem>.tools.json`` beside the database (what the example builder writes), if present."""
    db = Path(domain_db)
    candidate = db.with_name(f"{db.stem}.tools.json")
    return candidate if candidate.is_file() else None


def load_domain(domain_db: str | os.PathLike[str], domain_tools: str | os.PathLike[str] | None = None) -> SqlDomain:
    """The domain of ``domain_db``: its tools from ``domain_tools``, else from
    ``<stem>.tools.json`` beside it, else drafted from its schema (CRUD per table)."""
    db = Path(domain_db)
    tools_file = Path(domain_tools) if domain_tools else default_tools_file(db)
    try:
        if tools_file is not None:
            return load_sql_domain(db, tools_file)
        return _drafted_domain(db)
    except SqlExecError as error:
        raise DomainError(f"--domain-db {db}: {error}") from error


def _drafted_domain(db: Path) -> SqlDomain:
    schema_sql = schema_summary(db)
    if not schema_sql:
        raise DomainError(f"--domain-db {db}: the database has no tables")
    tools = draft_tools_from_schema(db)
    scratch = scratch_schema(schema_sql)
    try:
        for spec in tools:
            validate_tool(spec, schema=scratch)
    finally:
        scratch.close()
    return SqlDomain(name=db.stem, db_path=db.resolve(), schema_sql=schema_sql, tools=tools)


def domain_for(settings: GenerationSettings) -> SqlDomain | None:
    """The run's SQL domain, or None for simulated tools; contradictory settings are refused."""
    if settings.tool_exec is not ToolExec.SQL:
        if settings.domain_db or settings.domain_tools:
            raise DomainError(f"domain_db/domain_tools are set but tool_exec is {settings.tool_exec.value!r}; use --tool-exec sql")
        return None
    if not settings.domain_db:
        raise DomainError("--tool-exec sql needs --domain-db FILE (a SQLite database)")
    if settings.tool_source is ToolSource.SEED_PLUS:
        raise DomainError("--tool-exec sql runs the domain's SQL tools only; --synthesize-more cannot be combined with it")
    if settings.tools_file:
        raise DomainError("--tool-exec sql takes its tools from the domain (--domain-tools), not --tools")
    return load_domain(settings.domain_db, settings.domain_tools)


def sql_settings(settings: GenerationSettings, domain: SqlDomain) -> GenerationSettings:
    """Settings as recorded for a Tool-Exec run: absolute paths (so a resume from
    another directory finds the domain) and seed tools only (the domain's)."""
    tools_file = Path(settings.domain_tools) if settings.domain_tools else default_tools_file(domain.db_path)
    return settings.model_copy(update={
        "domain_db": str(domain.db_path),
        "domain_tools": str(tools_file.resolve()) if tools_file else None,
        "tool_source": ToolSource.SEED,
    })


def domain_record(domain: SqlDomain) -> dict[str, str]:
    """What the run config keeps about the domain: enough to notice a changed source."""
    return {"name": domain.name, "db": str(domain.db_path), "sha256": source_digest(domain.db_path)}


def prepare_tool_exec(
    settings: GenerationSettings, seed_tools: list[ToolSpec] | None, tool_sets: Sequence[object] | None = None
) -> tuple[SqlDomain | None, GenerationSettings, list[ToolSpec] | None]:
    """For a Tool-Exec run: the domain, the settings to record, and the domain's tools
    as the seed tools; for a simulated run, everything unchanged."""
    domain = domain_for(settings)
    if domain is None:
        return None, settings, seed_tools
    if seed_tools or tool_sets:
        raise DomainError("--tool-exec sql runs the domain's SQL tools; other seed tools cannot be added")
    return domain, sql_settings(settings, domain), list(domain.tools)


def executor_factory(
    run_db: str | os.PathLike[str], models: ModelSet, domain: SqlDomain | None, *, source_sha256: str | None = None,
    mcp: McpBackend | None = None,
) -> ExecutorFactory:
    """``executor_for(thread_id)``: one shared world model, a SQL executor per trajectory
    keyed by its thread id (its own database copy), or an MCP executor per trajectory (its own
    stdio server, or a session with the shared HTTP one). ``source_sha256`` pins the SQL source's
    content (a resume passes the digest recorded with the run; default: as it is now)."""
    if mcp is not None and mcp.executes:
        return mcp.executor_for
    if domain is None:
        simulated = SimulatedToolExecutor(models[Role.TOOL_SIMULATOR])
        return lambda _thread_id: simulated
    workdir = worlds_dir(run_db)
    pinned = source_sha256 or source_digest(domain.db_path)
    return lambda thread_id: SqlToolExecutor(domain, workdir, thread_id, source_sha256=pinned)


def executor_factory_for_run(run_db: str | os.PathLike[str], run_config: dict[str, Any], models: ModelSet) -> ExecutorFactory:
    """The factory that continues a recorded run (``resume``, ``fork``): the same domain,
    pinned to the source content the run started with (``Manifest.run_config``)."""
    settings = GenerationSettings.model_validate(run_config.get("settings") or {})
    domain = domain_for(settings)
    pinned = (run_config.get("domain") or {}).get("sha256")
    return executor_factory(run_db, models, domain, source_sha256=pinned, mcp=backend_for_run(run_config))
