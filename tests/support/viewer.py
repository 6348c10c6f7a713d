"""Real databases for the viewer tests: generated, forked and poisoned through the real graph.

Nothing here mocks the reader: every trajectory is a checkpointed LangGraph
thread written by the real graph with the scripted model, and every fork
row goes through the real ``Manifest`` API. The fork below is test
scaffolding (the checkpoint's values written into a new thread with
``update_state`` as the node that wrote them, then the graph continues);
the project's own ``dialogforge fork`` records the same lineage columns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
from dialogforge.checkpoints.sqlite_savers import open_saver
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, Role
from dialogforge.models import ModelSet
from dialogforge.graphs.builder import compile_graph
from dialogforge.runs.engine import Job, run_jobs
from dialogforge.runs.generate import generate
from dialogforge.runs.planning import graph_input, initial_state
from dialogforge.records import Limits, Mode
from dialogforge.executors.simulated import SimulatedToolExecutor

# Each payload sets a window flag if it ever runs as markup or script.
SCRIPT_PAYLOAD = "</script><script>window.__pwned = 'script'</script>"
IMG_PAYLOAD = "<img src=x onerror=\"window.__pwned='img'\">"
USER_PAYLOAD = f"Please look up order 7. {SCRIPT_PAYLOAD} and {IMG_PAYLOAD} thanks"
DOMAIN_PAYLOAD = f"store <b>bold</b> {IMG_PAYLOAD}"

SCRIPTED = ModelsConfig(default=ModelConfig(backend="scripted"))


@dataclass
class ViewerDb:
    path: Path
    threads: list[str]
    fork: str = ""
    fork_of_fork: str = ""
    fork_checkpoint: str = ""
    poisoned: str = ""
    failed: str = ""
    extra: dict = field(default_factory=dict)


def _run(db: Path, jobs: list[Job], models_config: ModelsConfig = SCRIPTED) -> None:
    models = ModelSet.from_config(models_config)
    executor = SimulatedToolExecutor(models[Role.TOOL_SIMULATOR])
    asyncio.run(run_jobs(db, jobs, models, lambda _thread: executor, concurrency=2))


def mid_checkpoint(db: Path, thread_id: str, mode: Mode = Mode.USER) -> str:
    """A checkpoint about halfway through the thread, just before the agent runs."""
    with open_saver(db) as saver:
        history = list(compile_graph(mode, saver).get_state_history({"configurable": {"thread_id": thread_id}}))
    history.reverse()
    candidates = [s for s in history if s.next == ("run_agent",) and s.values.get("messages")]
    return candidates[len(candidates) // 2].config["configurable"]["checkpoint_id"]


def fork_thread(db: Path, parent: str, checkpoint_id: str, child: str, seed: int, mode: Mode = Mode.USER) -> None:
    """A new trajectory sharing ``parent``'s history up to ``checkpoint_id``, then going its own way."""
    manifest = Manifest(db)
    try:
        row = manifest.get(parent)
        manifest.record_planned([PlannedTrajectory(
            thread_id=child, run_id=row["run_id"], seed=seed, mode=row["mode"], domain=row["domain"],
            config_hash=row["config_hash"], initial_state=row["initial_state"],
            parent_thread_id=parent, fork_checkpoint_id=checkpoint_id,
        )])
    finally:
        manifest.close()
    with open_saver(db) as saver:
        graph = compile_graph(mode, saver)
        source = graph.get_state({"configurable": {"thread_id": parent, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}})
        writer = graph.get_state(source.parent_config).next[0]
        values = {**source.values, "seed": seed}
        graph.update_state({"configurable": {"thread_id": child}}, values, as_node=writer)
    _run(db, [Job(child, mode, None)])


def poisoned_thread(db: Path, thread_id: str) -> None:
    """A trajectory whose domain and first user message carry script and onerror payloads."""
    settings = GenerationSettings(n=1, seed=11, domains=[DOMAIN_PAYLOAD], limits=Limits(max_tasks=1))
    state = initial_state(settings, 0, []).model_copy(update={"pending_user_message": USER_PAYLOAD})
    manifest = Manifest(db)
    try:
        manifest.record_planned([PlannedTrajectory(
            thread_id=thread_id, run_id="poisoned", seed=state.seed, mode=state.mode.value,
            domain=state.scenario.domain, config_hash="test", initial_state=state.model_dump_json(exclude={"tools"}),
        )])
    finally:
        manifest.close()
    _run(db, [Job(thread_id, state.mode, graph_input(state))])


def failed_thread(db: Path, thread_id: str) -> None:
    """A trajectory whose agent endpoint is unreachable: it fails with a recorded error."""
    unreachable = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "max_retries": 0, "timeout_s": 2.0}
    models_config = ModelsConfig(default=ModelConfig(backend="scripted"), roles={Role.AGENT: unreachable})
    settings = GenerationSettings(n=1, seed=12)
    state = initial_state(settings, 0, [])
    manifest = Manifest(db)
    try:
        manifest.record_planned([PlannedTrajectory(
            thread_id=thread_id, run_id="broken", seed=state.seed, mode=state.mode.value,
            domain=state.scenario.domain, config_hash="test", initial_state=state.model_dump_json(exclude={"tools"}),
        )])
    finally:
        manifest.close()
    _run(db, [Job(thread_id, state.mode, graph_input(state))], models_config)


def build_viewer_db(path: Path) -> ViewerDb:
    """Three generated trajectories (one user-mode run, one task-mode), a fork, a fork of that fork,
    a poisoned trajectory and a failed one."""
    users = generate(path, GenerationSettings(n=2, seed=3), SCRIPTED).thread_ids
    tasks = generate(path, GenerationSettings(n=1, seed=4, mode=Mode.TASK), SCRIPTED).thread_ids
    db = ViewerDb(path=path, threads=users + tasks)
    db.fork_checkpoint = mid_checkpoint(path, users[0])
    db.fork = f"{users[0]}-f1"
    fork_thread(path, users[0], db.fork_checkpoint, db.fork, seed=101)
    db.fork_of_fork = f"{users[0]}-f1-f1"
    fork_thread(path, db.fork, mid_checkpoint(path, db.fork), db.fork_of_fork, seed=202)
    db.poisoned = "poisoned-00000"
    poisoned_thread(path, db.poisoned)
    db.failed = "broken-00000"
    failed_thread(path, db.failed)
    return db
