"""``resume``: continue every unfinished trajectory of a database from its last checkpoint.

Unfinished means the manifest says ``pending`` or ``running``; ``done`` and
``failed`` rows are never touched. Each row continues with its own run's
recorded configuration (``run_configs``: settings, models, seed tools, SQL
domain), so ``resume --db PATH`` alone is enough; model flags override the
recorded default model, the concurrency flag the recorded concurrency. Keys
are never recorded, only the names of the variables holding them, so they
come from the environment again.

A row with a checkpoint continues from its thread's head, the newest
checkpoint (the engine never restarts a started thread; a thread branched in
place whose head is unfinished counts as unfinished); a row without one starts from the state recorded in the
manifest (``initial_state``), so a kill between planning and starting loses
nothing either.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import sqlite_utils
from pydantic import ValidationError

from dialogforge.checkpoints.manifest import Status
from dialogforge.checkpoints.shards import is_sharded, shard_paths, thread_store
from dialogforge.checkpoints.store_kinds import check_store, check_store_integrity, open_manifest, store_errors, driver_lock
from dialogforge.config import GenerationSettings, ModelsConfig
from dialogforge.config_file import apply_flags, check_api_keys
from dialogforge.errors import ConfigError, NotFoundError
from dialogforge.models import ModelSet
from dialogforge.progress import ProgressSink
from dialogforge.runs.budget import db_rows, run_budget
from dialogforge.runs.branches import with_branches
from dialogforge.runs.engine import Job, RunSummary, job_for
from dialogforge.runs.generate import run_planned
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode, ToolSpec
from dialogforge.runs.tool_backends import executor_factory_for_run
from dialogforge.runs.tool_libraries import load_stored_libraries
from dialogforge.inputs.tool_library import ToolLibrary, ToolLibraryError

UNFINISHED = (Status.PENDING.value, Status.RUNNING.value)

ModelsContext = Callable[[ModelsConfig], AbstractContextManager[ModelsConfig]]


@dataclass(frozen=True)
class ModelOverrides:
    """Flags that replace the recorded default model (``--backend``, ``--base-url``, ``--model``),
    or a whole models config (``--config``)."""

    backend: str | None = None
    base_url: str | None = None
    model: str | None = None
    models: ModelsConfig | None = None


@dataclass
class ResumeResult:
    thread_ids: list[str] = field(default_factory=list)
    summary: RunSummary = field(default_factory=RunSummary)
    interrupted: bool = False
    budget_usd: float | None = None  # the budget the (last) resumed run ran under


@dataclass
class RunPlan:
    """One recorded run's unfinished trajectories and how to continue them."""

    run_id: str
    models_config: ModelsConfig
    run_config: dict[str, Any]
    concurrency: int
    jobs: list[Job]
    settings: GenerationSettings = field(default_factory=GenerationSettings)


def unfinished_rows(db_path: str | Path, thread_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    manifest = open_manifest(db_path)
    try:
        # A finished thread whose head is a newer, unfinished branch (LangGraph's time travel,
        # killed or not run on) continues from that head too.
        rows = [r for r in with_branches(db_path, manifest.rows()) if r["status"] in UNFINISHED]
        if thread_ids is not None:
            wanted = list(thread_ids)
            known = {r["thread_id"] for r in manifest.rows()}
            missing = [t for t in wanted if t not in known]
            if missing:
                raise NotFoundError(f"{db_path}: no trajectory {missing[0]!r} (see `dialogforge list`)")
            rows = [r for r in rows if r["thread_id"] in set(wanted)]
    finally:
        manifest.close()
    return rows


def plan_resume(
    db_path: str | Path,
    *,
    overrides: ModelOverrides = ModelOverrides(),
    concurrency: int | None = None,
    thread_ids: Iterable[str] | None = None,
) -> list[RunPlan]:
    """What ``resume_run`` would run, grouped by recorded run (reads only)."""
    check_store(db_path, must_exist=True)
    with store_errors(db_path):
        return _plan_resume(db_path, overrides, concurrency, thread_ids)


def _plan_resume(db_path: str | Path, overrides: ModelOverrides, concurrency: int | None,
                 thread_ids: Iterable[str] | None) -> list[RunPlan]:
    rows = unfinished_rows(db_path, thread_ids)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    manifest = open_manifest(db_path)
    try:
        configs = {run_id: _recorded_config(manifest, run_id) for run_id in by_run}
    finally:
        manifest.close()
    plans = []
    for run_id, run_rows in by_run.items():
        config = configs[run_id]
        settings = _recorded_settings(db_path, run_id, config)
        seed_tools = [ToolSpec.model_validate(t) for t in config.get("seed_tools") or []]
        libraries = load_stored_libraries(db_path, set(config.get("tool_libraries") or []))
        plans.append(RunPlan(
            run_id=run_id,
            models_config=_models_config(db_path, run_id, config, overrides),
            run_config=config,
            concurrency=concurrency or settings.concurrency,
            jobs=[_job(row, seed_tools, libraries) for row in run_rows],
            settings=settings,
        ))
    return plans


def resume_run(
    db_path: str | Path,
    *,
    overrides: ModelOverrides = ModelOverrides(),
    concurrency: int | None = None,
    thread_ids: Iterable[str] | None = None,
    progress: ProgressSink | None = None,
    handle_signals: bool = False,
    models_context: ModelsContext | None = None,
    budget_usd: float | None = None,
) -> ResumeResult:
    """Continue the unfinished trajectories (all, or ``thread_ids``) to done or failed.

    ``models_context`` wraps each run's models config while it runs (the CLI
    starts the embedded local model server there). ``budget_usd`` replaces the
    run's recorded ``--budget-usd`` (what it spent before counts against it)."""
    check_store(db_path, must_exist=True)
    if is_sharded(db_path):
        return _resume_shards(db_path, thread_ids, dict(
            overrides=overrides, concurrency=concurrency, progress=progress, handle_signals=handle_signals,
            models_context=models_context, budget_usd=budget_usd))
    result = ResumeResult()
    check_store_integrity(db_path)
    with store_errors(db_path), driver_lock(db_path):
        for plan in plan_resume(db_path, overrides=overrides, concurrency=concurrency, thread_ids=thread_ids):
            wrap = models_context(plan.models_config) if models_context else nullcontext(plan.models_config)
            with wrap as models_config:
                models = ModelSet.from_config(models_config, connections=plan.concurrency)
                settings = plan.settings if budget_usd is None else plan.settings.model_copy(update={"budget_usd": budget_usd})
                budget = run_budget(settings, models_config, db_rows(db_path, plan.run_id), plan.run_config)
                result.budget_usd = settings.budget_usd
                executor_for = executor_factory_for_run(db_path, plan.run_config, models)
                summary, interrupted = asyncio.run(run_planned(
                    db_path, plan.jobs, models, executor_for, plan.concurrency, progress, handle_signals, budget,
                ))
            result.thread_ids.extend(job.thread_id for job in plan.jobs)
            result.summary.merge(summary)
            if interrupted:
                result.interrupted = True
                break
    return result


def _resume_shards(db_path: str | Path, thread_ids: Iterable[str] | None, options: dict[str, Any]) -> ResumeResult:
    """A sharded dataset (``dialogforge.checkpoints.shards``): each shard resumed in turn, under its own run lock."""
    wanted = None if thread_ids is None else list(thread_ids)
    if wanted is not None:
        manifest = open_manifest(db_path)
        try:
            known = {row["thread_id"] for row in manifest.rows()}
        finally:
            manifest.close()
        missing = [t for t in wanted if t not in known]
        if missing:
            raise NotFoundError(f"{db_path}: no trajectory {missing[0]!r} (see `dialogforge list`)")
    result = ResumeResult()
    for path in shard_paths(db_path):
        ids = None if wanted is None else [t for t in wanted if thread_store(db_path, t) == path]
        if ids == []:
            continue
        part = resume_run(path, thread_ids=ids, **options)
        result.budget_usd = part.budget_usd if part.budget_usd is not None else result.budget_usd
        result.thread_ids.extend(part.thread_ids)
        result.summary.merge(part.summary)
        if part.interrupted:
            result.interrupted = True
            break
    return result


def _recorded_config(manifest: Any, run_id: str) -> dict[str, Any]:
    try:
        return manifest.run_config(run_id)
    except sqlite_utils.db.NotFoundError:
        return {}
    except (json.JSONDecodeError, TypeError) as exc:
        raise ConfigError(f"{manifest.path}: run {run_id}: recorded configuration is unreadable ({exc})") from exc


def _recorded_settings(db_path: str | Path, run_id: str, config: dict[str, Any]) -> GenerationSettings:
    try:
        return GenerationSettings.model_validate(config.get("settings") or {})
    except ValidationError as exc:
        raise ConfigError(f"{db_path}: run {run_id}: recorded settings are invalid ({exc.errors()[0]['msg']})") from exc


def _models_config(db_path: str | Path, run_id: str, config: dict[str, Any], overrides: ModelOverrides) -> ModelsConfig:
    if overrides.models is not None:
        models = overrides.models
    elif config.get("models"):
        try:
            models = ModelsConfig.model_validate(config["models"])
        except ValidationError as exc:
            raise ConfigError(f"{db_path}: run {run_id}: recorded models are invalid ({exc.errors()[0]['msg']})") from exc
        if models.default.backend == "local" and not overrides.base_url:
            # The embedded server the run used is gone; a new one is started for the resume.
            models = models.model_copy(update={"default": models.default.model_copy(update={"base_url": None})})
    elif overrides.backend or overrides.base_url:
        models = ModelsConfig()
    else:
        raise ConfigError(f"{db_path}: run {run_id} has no recorded model configuration; pass --backend or --base-url")
    models = apply_flags(models, backend=overrides.backend, base_url=overrides.base_url, model=overrides.model)
    check_api_keys(models)
    return models


def _job(row: dict[str, Any], seed_tools: list[ToolSpec], libraries: dict[str, ToolLibrary]) -> Job:
    """How a row continues: from its checkpoint (the engine checks), else from its recorded start
    (its tools: its library's, as the database holds it, or the run's shared seed tools)."""
    mode = Mode(row.get("mode") or Mode.USER.value)
    try:
        data = json.loads(row.get("initial_state") or "{}")
        state = DialogueState.model_validate({**data, "tools": data.get("tools") or []})
        if "tools" not in data and state.tool_library is not None:
            library = libraries[state.tool_library.id]
            state = state.model_copy(update={"tools": library.tools_named(state.tool_library.tools)})
        elif "tools" not in data:  # one shared seed tool list lives in the run config
            state = state.model_copy(update={"tools": list(seed_tools)})
    except (json.JSONDecodeError, ValidationError, KeyError, ToolLibraryError):
        return Job(row["thread_id"], mode, None)  # only a checkpoint can continue it; else it fails with a reason
    job = job_for(row["thread_id"], state)
    job.mode = mode
    return job

