"""``generate``: plan a run, record it, and run it. The CLI's generate calls this."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from checkpoints.manifest import Manifest, PlannedTrajectory
from checkpoints.store import check_db_path
from dialogforge.config import GenerationSettings, ModelsConfig, Role, config_hash
from dialogforge.models import ModelSet
from graphs.engine import Job, RunSummary, run_jobs
from graphs.planning import graph_input, initial_state, new_run_id
from graphs.state import ToolSpec
from nodes.simulate_tool import SimulatedToolExecutor


@dataclass
class GenerationResult:
    run_id: str
    thread_ids: list[str]
    summary: RunSummary


def generate(
    db_path: str | Path,
    settings: GenerationSettings,
    models_config: ModelsConfig,
    seed_tools: list[ToolSpec] | None = None,
) -> GenerationResult:
    check_db_path(db_path, must_exist=False)
    models = ModelSet.from_config(models_config)
    run_id = new_run_id()
    tools = seed_tools or []
    digest = config_hash(settings, models_config)
    states = [initial_state(settings, i, tools) for i in range(settings.n)]
    planned = [
        PlannedTrajectory(
            thread_id=f"{run_id}-{i:05d}", run_id=run_id, seed=s.seed, mode=s.mode.value,
            domain=s.scenario.domain, config_hash=digest,
            initial_state=s.model_dump_json(exclude={"tools"}),
        )
        for i, s in enumerate(states)
    ]
    manifest = Manifest(db_path, create=True)
    try:
        manifest.record_run(run_id, {
            "settings": settings.model_dump(mode="json"),
            "models": models_config.model_dump(mode="json"),
            "seed_tools": [t.model_dump(mode="json") for t in tools],
        })
        manifest.record_planned(planned)
    finally:
        manifest.close()
    jobs = [Job(p.thread_id, s.mode, graph_input(s)) for p, s in zip(planned, states)]
    executor = SimulatedToolExecutor(models[Role.TOOL_SIMULATOR])
    summary = asyncio.run(
        run_jobs(db_path, jobs, models, lambda _thread: executor, concurrency=settings.concurrency)
    )
    return GenerationResult(run_id, [p.thread_id for p in planned], summary)
