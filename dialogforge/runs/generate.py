"""``generate``: plan a run, record it, and run it. The CLI's generate calls this."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.runtime import RunControl

from dialogforge.checkpoints.manifest import PlannedTrajectory
from dialogforge.checkpoints.urls import is_postgres_url
from dialogforge.checkpoints.shards import is_sharded, shard_dir, shard_path
from dialogforge.checkpoints.store_kinds import check_store, driver_lock, open_manifest, prepare_store
from dialogforge.config import GenerationSettings, ModelsConfig, Role, config_hash
from dialogforge.errors import ConfigError
from dialogforge.interrupt import GracefulInterrupt
from dialogforge.models import ModelSet
from dialogforge.progress import ProgressSink
from dialogforge.inputs.seed_files import ToolSet
from dialogforge.runs.budget import RunBudget, run_budget
from dialogforge.runs.engine import Job, RunSummary, job_for, run_jobs
from dialogforge.runs.personas import sampled_settings
from dialogforge.runs.planning import initial_state, new_run_id, tool_set_index
from dialogforge.graphs.state import DialogueState
from dialogforge.records import ToolSpec
from dialogforge.runs.tool_backends import domain_record, executor_factory, prepare_tool_exec
from dialogforge.executors.sql import remove_worlds


@dataclass
class GenerationResult:
    run_id: str
    thread_ids: list[str]
    summary: RunSummary
    # Stopped by Ctrl-C / SIGTERM: the unfinished rows wait for ``resume``.
    interrupted: bool = False


@dataclass
class PlannedRun:
    """A recorded run, ready to execute: its manifest rows are written, nothing has started."""

    run_id: str
    thread_ids: list[str]
    jobs: list[Job]
    settings: GenerationSettings
    domain: Any  # the Tool-Exec SQL domain, or None (simulated tools)
    shard_paths: list[Path] | None = None  # a sharded SQLite dataset: row i is in shard i % len(shard_paths)
    config: dict[str, Any] | None = None  # what was recorded in run_configs


def generate(
    db_path: str | Path,
    settings: GenerationSettings,
    models_config: ModelsConfig,
    seed_tools: list[ToolSpec] | None = None,
    *,
    tool_sets: list[ToolSet] | None = None,
    progress: ProgressSink | None = None,
    handle_signals: bool = False,
    initial_states: list[DialogueState] | None = None,
) -> GenerationResult:
    """``tool_sets``: one seed tool set per trajectory, sampled from ``settings.seed``
    (instead of ``seed_tools`` for all). ``handle_signals``: Ctrl-C / SIGTERM drain
    the run (see ``dialogforge.interrupt``) instead of raising ``KeyboardInterrupt``.
    ``initial_states``: start from these states (imported conversations, see
    ``dialogforge.inputs.conversations``) instead of planning ``settings.n`` new ones."""
    models = ModelSet.from_config(models_config, connections=settings.concurrency)  # a bad config fails before any write
    run_budget(settings, models_config)  # a budget without prices fails before any write
    plan = plan_generation(db_path, settings, models_config, seed_tools, tool_sets=tool_sets,
                           initial_states=initial_states)
    budget = run_budget(plan.settings, models_config, run_config=plan.config)
    executor_for = executor_factory(db_path, models, plan.domain)
    with driver_lock(db_path):
        summary, interrupted = asyncio.run(_run(
            db_path, plan.jobs, models, executor_for, plan.settings.concurrency, progress, handle_signals, budget,
        ))
    if plan.domain is not None:
        remove_worlds(db_path, plan.thread_ids)  # caches: rebuilt from the write log on demand
    return GenerationResult(plan.run_id, plan.thread_ids, summary, interrupted)


def plan_generation(
    db_path: str | Path,
    settings: GenerationSettings,
    models_config: ModelsConfig,
    seed_tools: list[ToolSpec] | None = None,
    *,
    tool_sets: list[ToolSet] | None = None,
    initial_states: list[DialogueState] | None = None,
    shards: int | None = None,
) -> PlannedRun:
    """Plan ``settings.n`` trajectories and record them (``pending``) in one transaction.
    ``generate`` runs the plan here; ``dialogforge.runs.ray_run`` runs it on Ray workers. ``shards``:
    record round-robin into that many SQLite shards (``dialogforge.checkpoints.shards``), one per worker."""
    check_store(db_path, must_exist=False)
    _check_layout(db_path, shards)
    # Tool-Exec: the SQL domain is loaded and validated before anything is written.
    domain, settings, seed_tools = prepare_tool_exec(settings, seed_tools, tool_sets)
    if domain is not None and (is_postgres_url(db_path) or shards):
        raise ConfigError("--tool-exec sql keeps each trajectory's world beside one SQLite --db; "
                          "it cannot run on a postgresql:// --db or with --executor ray")
    # --personas N: sampled once, here, and recorded with the run (resume never plans again)
    settings, sampling = sampled_settings(settings, models_config)
    run_id = new_run_id()
    tools = seed_tools or []
    digest = config_hash(settings, models_config)
    if initial_states is not None:
        states = list(initial_states)
    elif tool_sets:
        chosen = [tool_sets[tool_set_index(settings.seed, i, len(tool_sets))].tools for i in range(settings.n)]
        states = [initial_state(settings, i, chosen[i]) for i in range(settings.n)]
    else:
        states = [initial_state(settings, i, tools) for i in range(settings.n)]
    # With one shared seed tool list the run config holds it; with tool sets each row keeps its own.
    exclude = None if tool_sets or initial_states is not None else {"tools"}
    planned = [
        PlannedTrajectory(
            thread_id=f"{run_id}-{i:05d}", run_id=run_id, seed=s.seed, mode=s.mode.value,
            domain=s.scenario.domain, config_hash=digest, tool_exec=s.tool_exec.value,
            language=s.language, persona=s.scenario.persona,
            initial_state=s.model_dump_json(exclude=exclude),
        )
        for i, s in enumerate(states)
    ]
    config = {
        "settings": settings.model_dump(mode="json"),
        "models": models_config.model_dump(mode="json"),
        "seed_tools": [t.model_dump(mode="json") for t in tools],
        **({"domain": domain_record(domain)} if domain is not None else {}),
        **({"tool_sets": [t.name for t in tool_sets]} if tool_sets else {}),
        **({"persona_sampling": sampling.record(models_config.for_role(Role.PERSONA_SAMPLER).model)} if sampling else {}),
    }
    targets = [shard_path(db_path, i) for i in range(shards)] if shards else [db_path]
    if shards:
        shard_dir(db_path).mkdir(exist_ok=True)
    for i, target in enumerate(targets):
        prepare_store(target)
        manifest = open_manifest(target, create=True)
        try:
            manifest.record_run_and_planned(run_id, config, planned[i::len(targets)])
        finally:
            manifest.close()
    jobs = [job_for(p.thread_id, s) for p, s in zip(planned, states)]
    return PlannedRun(run_id, [p.thread_id for p in planned], jobs, settings, domain, targets if shards else None, config)


def _check_layout(db_path: str | Path, shards: int | None) -> None:
    """A single SQLite file and a sharded dataset never share one --db."""
    if shards and not is_postgres_url(db_path) and Path(db_path).exists():
        raise ConfigError(f"{db_path}: is a single-file database; --executor ray writes one shard per worker "
                          f"({shard_dir(db_path)}/): pick a new --db, or run it without --executor ray")
    if not shards and is_sharded(db_path):
        raise ConfigError(f"{db_path}: is a sharded dataset ({shard_dir(db_path)}/); add to it with --executor ray, "
                          "or pick a new --db")


async def _run(
    db_path: str | Path, jobs: list[Job], models: ModelSet, executor_for: Any, concurrency: int,
    progress: ProgressSink | None, handle_signals: bool, budget: RunBudget | None = None,
) -> tuple[RunSummary, bool]:
    """``run_jobs`` under the two-stage signal handling; the models' HTTP clients closed after."""
    control = RunControl()
    try:
        if not handle_signals:
            return await run_jobs(db_path, jobs, models, executor_for, concurrency=concurrency,
                                  progress=progress, control=control, budget=budget), False
        task = asyncio.current_task()
        assert task is not None
        notify = progress.note if progress is not None else _to_stderr
        with GracefulInterrupt(control, task, notify, db_path) as stop:
            try:
                summary = await run_jobs(db_path, jobs, models, executor_for, concurrency=concurrency,
                                         progress=progress, control=control, budget=budget)
            except asyncio.CancelledError:
                if not stop.forced:
                    raise
                task.uncancel()
                return RunSummary(), True
        return summary, stop.requested
    finally:
        await models.aclose()


async def run_planned(
    db_path: str | Path, jobs: list[Job], models: ModelSet, executor_for: Any, concurrency: int,
    progress: ProgressSink | None = None, handle_signals: bool = False, budget: RunBudget | None = None,
) -> tuple[RunSummary, bool]:
    """What ``generate`` runs its jobs with (signals, model cleanup); ``resume`` and ``fork`` use it too."""
    return await _run(db_path, jobs, models, executor_for, concurrency, progress, handle_signals, budget)


def _to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()

