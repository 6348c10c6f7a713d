"""``generate``: plan a run, record it, and run it. The CLI's generate calls this."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from langgraph.runtime import RunControl

from dialogforge.checkpoints.manifest import PlannedTrajectory
from dialogforge.checkpoints.urls import is_postgres_url
from dialogforge.checkpoints.shards import is_sharded, shard_dir, shard_path
from dialogforge.checkpoints.store_kinds import check_store, driver_lock, open_manifest, prepare_store
from dialogforge.config import GenerationSettings, ModelsConfig, Role, config_hash
from dialogforge.errors import ConfigError
from dialogforge.interrupt import GracefulInterrupt, Interrupted
from dialogforge.models import ModelSet
from dialogforge.progress import ProgressSink
from dialogforge.inputs.seed_files import ToolSet
from dialogforge.inputs.tool_library import ToolLibrary, load_tool_libraries
from dialogforge.runs.budget import RunBudget, run_budget
from dialogforge.runs.engine import Job, RunSummary, job_for, run_jobs
from dialogforge.runs.first_tasks import plan_first_tasks
from dialogforge.runs.personas import sampled_settings
from dialogforge.runs.planning import initial_state, library_index, new_run_id, tool_set_index, with_library
from dialogforge.runs.tool_libraries import builds_libraries, libraries_for_domains, store_libraries
from dialogforge.graphs.state import DialogueState
from dialogforge.records import StopReason, ToolExec, ToolSpec
from dialogforge.runs.mcp_backend import McpBackend, Survey, prepare_mcp
from dialogforge.runs.tool_backends import domain_record, executor_factory, prepare_tool_exec
from dialogforge.executors.simulated import SimulatedToolExecutor
from dialogforge.executors.sql import remove_worlds


@dataclass
class GenerationResult:
    run_id: str
    thread_ids: list[str]
    summary: RunSummary
    # Stopped by Ctrl-C / SIGTERM (with ``processes``, also by a worker that ended badly): the
    # unfinished rows wait for ``resume``.
    interrupted: bool = False
    # ``processes=N``: (worker, exit code) of each worker process that ended badly; its shard's
    # unfinished rows stay checkpointed for ``resume``, counted in ``unfinished``.
    failed_workers: list[tuple[int, int]] = field(default_factory=list)
    unfinished: int = 0


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
    mcp: McpBackend | None = None  # the run's MCP server (which may only have seeded the tools)


def generate(
    db_path: str | Path,
    settings: GenerationSettings,
    models_config: ModelsConfig,
    seed_tools: list[ToolSpec] | None = None,
    *,
    tool_sets: list[ToolSet] | None = None,
    tool_libraries: list[ToolLibrary] | None = None,
    progress: ProgressSink | None = None,
    handle_signals: bool = False,
    initial_states: list[DialogueState] | None = None,
    mcp_survey: Survey | None = None,
    processes: int | None = None,
    report: Callable[[str], None] | None = None,
    report_interval_s: float = 10.0,
) -> GenerationResult:
    """``tool_sets``: one seed tool set per trajectory, sampled from ``settings.seed``
    (instead of ``seed_tools`` for all). ``tool_libraries``: run against these tool
    libraries (``dialogforge.inputs.tool_library``), one per trajectory, sampled the same
    way; without them (and without fixed tools) the run builds one per domain
    (``dialogforge.runs.tool_libraries``). ``handle_signals``: Ctrl-C / SIGTERM drain
    the run (see ``dialogforge.interrupt``) instead of raising ``KeyboardInterrupt``.
    ``initial_states``: start from these states (imported conversations, see
    ``dialogforge.inputs.conversations``) instead of planning ``settings.n`` new ones.
    ``mcp_survey``: the MCP server's tools and samples if already listed
    (``dialogforge.runs.mcp_backend.survey``); else an MCP run lists them here.
    ``processes``: more than one runs the plan on that many local worker processes, one SQLite
    shard each (``dialogforge.runs.local_processes``), ``report`` getting a summed plain progress
    line every ``report_interval_s`` (a ``progress`` sink lives in one process: refused there)."""
    if processes is not None and processes > 1:
        return _generate_on_processes(db_path, settings, models_config, seed_tools, processes, dict(
            tool_sets=tool_sets, tool_libraries=tool_libraries, initial_states=initial_states,
            mcp_survey=mcp_survey), progress, report, report_interval_s)
    models = ModelSet.from_config(models_config, connections=settings.concurrency)  # a bad config fails before any write
    run_budget(settings, models_config)  # a budget without prices fails before any write
    plan = plan_generation(db_path, settings, models_config, seed_tools, tool_sets=tool_sets,
                           tool_libraries=tool_libraries, initial_states=initial_states, progress=progress,
                           mcp_survey=mcp_survey)
    budget = run_budget(plan.settings, models_config, run_config=plan.config)
    executor_for = executor_factory(db_path, models, plan.domain, mcp=plan.mcp)
    with driver_lock(db_path):
        summary, interrupted = asyncio.run(_run(
            db_path, plan.jobs, models, executor_for, plan.settings.concurrency, progress, handle_signals, budget,
        ))
    if plan.domain is not None:
        remove_worlds(db_path, plan.thread_ids)  # caches: rebuilt from the write log on demand
    return GenerationResult(plan.run_id, plan.thread_ids, summary, interrupted)


def check_processes(db_path: str | Path, settings: GenerationSettings | None = None) -> None:
    """What ``processes=N`` (``--processes``) cannot run, refused before anything starts."""
    if is_postgres_url(db_path):
        raise ConfigError("--processes writes one SQLite shard per process; for a postgresql:// --db use --executor ray")
    if settings is not None and settings.budget_usd is not None:
        raise ConfigError("--budget-usd is kept by one driver's engine; it cannot run with --processes yet")


def _generate_on_processes(
    db_path: str | Path, settings: GenerationSettings, models_config: ModelsConfig, seed_tools: list[ToolSpec] | None,
    processes: int, inputs: dict[str, Any], progress: ProgressSink | None, report: Callable[[str], None] | None,
    report_interval_s: float,
) -> GenerationResult:
    from dialogforge.runs.local_processes import run_on_processes  # it runs plans made here

    check_processes(db_path, settings)
    if progress is not None:
        raise ConfigError("a progress sink runs in one process; with --processes pass report= (a summed line per interval)")
    # A bad config fails before any write; the workers make their own clients.
    asyncio.run(ModelSet.from_config(models_config, connections=settings.concurrency).aclose())
    plan = plan_generation(db_path, settings, models_config, seed_tools, shards=processes, local_shards=True, **inputs)
    ran = run_on_processes(str(db_path), plan, models_config, report=report, report_interval_s=report_interval_s)
    if plan.domain is not None:
        for shard in plan.shard_paths or []:  # each worker's copies live beside its shard
            remove_worlds(shard, plan.thread_ids)
    stopped = ran.interrupted or bool(ran.failed_workers) or ran.unfinished > 0
    return GenerationResult(plan.run_id, plan.thread_ids, ran.summary, stopped, ran.failed_workers, ran.unfinished)


def plan_generation(
    db_path: str | Path,
    settings: GenerationSettings,
    models_config: ModelsConfig,
    seed_tools: list[ToolSpec] | None = None,
    *,
    tool_sets: list[ToolSet] | None = None,
    tool_libraries: list[ToolLibrary] | None = None,
    initial_states: list[DialogueState] | None = None,
    shards: int | None = None,
    progress: ProgressSink | None = None,
    mcp_survey: Survey | None = None,
    local_shards: bool = False,
) -> PlannedRun:
    """Plan ``settings.n`` trajectories and record them (``pending``) in one transaction.
    ``generate`` runs the plan here; ``dialogforge.runs.ray_run`` runs it on Ray workers. ``shards``:
    record round-robin into that many SQLite shards (``dialogforge.checkpoints.shards``), one per worker;
    ``local_shards``: the shards' workers run on this machine (``--processes``), so Tool-Exec's
    per-trajectory databases can live beside each shard (Ray workers may be elsewhere).
    Tool libraries are prepared (or looked up) first, and their trajectories' first tasks proposed
    (``dialogforge.runs.first_tasks``): everything a trajectory starts from is fixed here."""
    check_store(db_path, must_exist=False)
    _check_layout(db_path, shards)
    # Tool-Exec: the SQL domain is loaded and validated before anything is written.
    domain, settings, seed_tools = prepare_tool_exec(settings, seed_tools, tool_sets)
    if domain is not None and (is_postgres_url(db_path) or (shards and not local_shards)):
        raise ConfigError("--tool-exec sql keeps each trajectory's world beside its SQLite shard on this machine; "
                          "it cannot run on a postgresql:// --db or with --executor ray (--processes can)")
    mcp, settings, seed_tools = prepare_mcp(settings, seed_tools, tool_sets, mcp_survey)
    if mcp is not None and initial_states is not None:
        raise ConfigError("--mcp-server/--mcp-url take the tools from the server; --from-conversations cannot be combined with them")
    if mcp is not None and mcp.executes and shards:
        raise ConfigError("--tool-exec mcp runs its servers from this process; it cannot run with --executor ray or --processes")
    if settings.tool_libraries and not tool_libraries:  # named in the settings (a config file): read them here
        tool_libraries = load_tool_libraries(settings.tool_libraries)
    build = builds_libraries(settings, seed_tools, bool(tool_sets) or initial_states is not None)
    _check_libraries(settings, seed_tools, tool_sets, tool_libraries, initial_states, build)
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
    targets = [shard_path(db_path, i) for i in range(shards)] if shards else [db_path]
    if shards:
        shard_dir(db_path).mkdir(exist_ok=True)
    for target in targets:
        prepare_store(target)
    try:
        with driver_lock(db_path):  # one driver builds a domain's library, not two at once
            states = asyncio.run(_prepare_tools(targets, settings, models_config, states, tools, tool_libraries,
                                                build, progress))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while preparing tool libraries and first tasks: nothing was planned; the "
                          f"libraries built so far are kept in {db_path}, so the same generate again reuses them") from None
    # One shared seed tool list lives in the run config, a library's tools in the database; rows keep the rest.
    shared_seeds = not (tool_sets or initial_states is not None)
    planned = [
        PlannedTrajectory(
            thread_id=f"{run_id}-{i:05d}", run_id=run_id, seed=s.seed, mode=s.mode.value,
            domain=s.scenario.domain, config_hash=digest, tool_exec=s.tool_exec.value,
            language=s.language, persona=s.scenario.persona,
            initial_state=s.model_dump_json(exclude={"tools"} if shared_seeds or s.tool_library else None),
        )
        for i, s in enumerate(states)
    ]
    libraries = sorted({s.tool_library.id for s in states if s.tool_library is not None})
    config = {
        "settings": settings.model_dump(mode="json"),
        "models": models_config.model_dump(mode="json"),
        "seed_tools": [t.model_dump(mode="json") for t in tools],
        **({"domain": domain_record(domain)} if domain is not None else {}),
        **({"mcp": mcp.record()} if mcp is not None else {}),
        **({"tool_sets": [t.name for t in tool_sets]} if tool_sets else {}),
        **({"persona_sampling": sampling.record(models_config.for_role(Role.PERSONA_SAMPLER).model)} if sampling else {}),
        **({"tool_libraries": libraries} if libraries else {}),
        **({"tool_libraries_given": True} if tool_libraries else {}),
    }
    for i, target in enumerate(targets):
        manifest = open_manifest(target, create=True)
        try:
            manifest.record_run_and_planned(run_id, config, planned[i::len(targets)])
        finally:
            manifest.close()
    jobs = [job_for(p.thread_id, s) for p, s in zip(planned, states)]
    return PlannedRun(run_id, [p.thread_id for p in planned], jobs, settings, domain, targets if shards else None,
                      config=config, mcp=mcp)


def _check_libraries(settings: GenerationSettings, seed_tools: list[ToolSpec] | None, tool_sets: list[ToolSet] | None,
                     tool_libraries: list[ToolLibrary] | None, initial_states: list[DialogueState] | None,
                     build: bool) -> None:
    """Tool libraries bring their own tools and domain: nothing else may say what the tools are."""
    if not tool_libraries:
        if settings.tool_subset is not None and not build:
            raise ConfigError("--tool-subset draws tools from a tool library; this run has none "
                              "(it has --tools-per-trajectory, --tools, --tools-dir, --from-conversations or --tool-exec sql)")
        return
    clash = ("--tool-exec sql" if settings.tool_exec is ToolExec.SQL else "--tools" if seed_tools
             else "--tools-dir" if tool_sets else "--from-conversations" if initial_states is not None else None)
    if clash:
        raise ConfigError(f"--tool-library brings its own tools; it cannot be combined with {clash}")


async def _prepare_tools(
    targets: list[Path | str], settings: GenerationSettings, models_config: ModelsConfig, states: list[DialogueState],
    seed_tools: list[ToolSpec], tool_libraries: list[ToolLibrary] | None, build: bool, progress: ProgressSink | None,
) -> list[DialogueState]:
    """Each library trajectory with its library's tools and first task. A trajectory whose domain's
    library could not be built starts stopped, with the reason: the run records it as failed."""
    if not tool_libraries and not build:
        return states
    notify = progress.note if progress is not None else None
    models = ModelSet.from_config(models_config, connections=settings.concurrency)
    try:
        if tool_libraries:
            await asyncio.to_thread(store_libraries, targets, tool_libraries)
            chosen = [tool_libraries[library_index(settings.seed, i, len(tool_libraries))] for i in range(len(states))]
        else:
            found = await libraries_for_domains(
                targets, [s.scenario.domain for s in states], seed_tools, models[Role.TOOL_SYNTHESIZER],
                seed=settings.seed, concurrency=settings.concurrency, notify=notify)
            chosen = [found.by_domain.get(s.scenario.domain) for s in states]
            states = [s if lib is not None else s.model_copy(update={
                "stop_reason": StopReason.ERROR, "error": found.failed[s.scenario.domain]}) for s, lib in zip(states, chosen)]
        states = [with_library(s, lib, settings.tool_subset) if lib is not None else s for s, lib in zip(states, chosen)]
        executor = SimulatedToolExecutor(models[Role.TOOL_SIMULATOR])
        states = await plan_first_tasks(states, models, executor, concurrency=settings.concurrency, notify=notify)
    finally:
        await models.aclose()
    return states


def _check_layout(db_path: str | Path, shards: int | None) -> None:
    """A single SQLite file and a sharded dataset never share one --db."""
    if shards and not is_postgres_url(db_path) and Path(db_path).exists():
        raise ConfigError(f"{db_path}: is a single-file database; --executor ray and --processes write one shard per "
                          f"worker ({shard_dir(db_path)}/): pick a new --db, or run it in one process")
    if not shards and is_sharded(db_path):
        raise ConfigError(f"{db_path}: is a sharded dataset ({shard_dir(db_path)}/); add to it with --executor ray "
                          "or --processes, or pick a new --db")


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

