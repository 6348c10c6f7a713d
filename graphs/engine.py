"""Running many trajectories at once, each its own LangGraph thread.

A fixed pool of workers (``concurrency``) pulls jobs from a queue, so ten
thousand planned trajectories cost ten thousand manifest rows, not ten
thousand live coroutines. One saver serves the whole process. A failure
inside a trajectory is recorded on that trajectory; a failure of the
database itself stops the run (everything stays resumable).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from checkpoints.manifest import Manifest
from checkpoints.store import open_async_saver
from dialogforge.errors import StoreError
from dialogforge.models import ModelSet
from graphs.builder import compile_graph
from graphs.context import GraphContext
from graphs.state import DialogueState, Mode
from nodes.tool_executor import ToolExecutor

RECURSION_LIMIT = 100_000

ExecutorFactory = Callable[[str], ToolExecutor]


@dataclass
class Job:
    thread_id: str
    mode: Mode
    start: dict[str, Any] | None  # graph input for a fresh start; None continues a checkpoint


@dataclass
class RunSummary:
    done: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, state: DialogueState | None, reason: str | None = None) -> None:
        if state is not None and state.stop_reason is not None and state.error is None:
            self.done += 1
            return
        self.failed += 1
        key = (reason or (state.error if state else None) or "unknown").split(":")[0]
        self.failures[key] = self.failures.get(key, 0) + 1


async def run_jobs(
    db_path: str | Path,
    jobs: list[Job],
    models: ModelSet,
    executor_for: ExecutorFactory,
    *,
    concurrency: int,
) -> RunSummary:
    summary = RunSummary()
    manifest = Manifest(db_path)
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    try:
        async with open_async_saver(db_path) as saver:
            graphs = {mode: compile_graph(mode, saver) for mode in Mode}

            async def worker() -> None:
                while not queue.empty():
                    job = queue.get_nowait()
                    context = GraphContext(models=models, executor=executor_for(job.thread_id))
                    await _run_one(job, graphs[job.mode], context, manifest, summary)

            await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)) or 1)))
    finally:
        manifest.close()
    return summary


async def _run_one(job: Job, graph: Any, context: GraphContext, manifest: Manifest, summary: RunSummary) -> None:
    config = {"configurable": {"thread_id": job.thread_id}, "recursion_limit": RECURSION_LIMIT}
    # Manifest writes run off the event loop: a blocking write waiting on the
    # saver's open transaction would otherwise stall the loop that commits it.
    await asyncio.to_thread(manifest.mark_running, job.thread_id)
    start = job.start
    if start is not None and await graph.checkpointer.aget_tuple(config) is not None:
        start = None  # started before a crash: continue, never restart
    try:
        values = await graph.ainvoke(start, config, context=context)
    except sqlite3.Error as exc:
        raise StoreError(f"{manifest.path}: database error during the run: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 -- a bug in one trajectory must not sink the run; it is recorded
        reason = f"internal error: {type(exc).__name__}: {str(exc)[:300]}"
        await asyncio.to_thread(manifest.mark_crashed, job.thread_id, reason)
        summary.add(None, reason)
        return
    state = DialogueState.model_validate(values)
    await asyncio.to_thread(manifest.mark_finished, job.thread_id, state)
    summary.add(state)
