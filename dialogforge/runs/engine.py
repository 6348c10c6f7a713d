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

import psycopg
from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl

from dialogforge.checkpoints.manifest import Manifest, cost_fields
from dialogforge.checkpoints.store_kinds import async_store_saver, open_manifest, store_lock
from dialogforge.errors import StoreError
from dialogforge.models import ModelSet
from dialogforge.progress import ProgressSink
from dialogforge.graphs.builder import compile_graph
from dialogforge.graphs.context import GraphContext
from dialogforge.runs.budget import RunBudget
from dialogforge.runs.gc_pacing import paced_gc
from dialogforge.runs.planning import graph_input
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Counters, Mode
from dialogforge.executors.contract import ToolExecutor

RECURSION_LIMIT = 100_000

ExecutorFactory = Callable[[str], ToolExecutor]


@dataclass
class Job:
    thread_id: str
    mode: Mode
    start: dict[str, Any] | None  # graph input for a fresh start; None continues a checkpoint
    # Where a fresh start enters: None is the graph's entry (task proposal); a node name starts
    # as if that node had just written ``start`` (an imported conversation that brings its task).
    as_node: str | None = None


def job_for(thread_id: str, state: DialogueState) -> Job:
    """A fresh start of ``state``; one that already has a task skips task proposal."""
    return Job(thread_id, state.mode, graph_input(state), as_node="propose_task" if state.tasks else None)


@dataclass
class RunSummary:
    done: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    # Stopped by a drain (Ctrl-C): checkpointed, manifest row left running for resume.
    interrupted: int = 0
    # Not started because the run's --budget-usd was reached: left pending for resume.
    not_started: int = 0
    spent_usd: float | None = None  # with a budget: what the run had cost when this part ended

    def add(self, state: DialogueState | None, reason: str | None = None) -> None:
        if state is not None and state.stop_reason is not None and state.error is None:
            self.done += 1
            return
        self.failed += 1
        key = (reason or (state.error if state else None) or "unknown").split(":")[0]
        self.failures[key] = self.failures.get(key, 0) + 1

    def merge(self, part: RunSummary) -> None:
        """Add another run's counts (a resumed run's, a Ray worker's shard)."""
        self.done += part.done
        self.failed += part.failed
        self.interrupted += part.interrupted
        self.not_started += part.not_started
        if part.spent_usd is not None:
            self.spent_usd = part.spent_usd
        for reason, count in part.failures.items():
            self.failures[reason] = self.failures.get(reason, 0) + count


async def run_jobs(
    db_path: str | Path,
    jobs: list[Job],
    models: ModelSet,
    executor_for: ExecutorFactory,
    *,
    concurrency: int,
    progress: ProgressSink | None = None,
    control: RunControl | None = None,
    budget: RunBudget | None = None,
) -> RunSummary:
    """Run ``jobs`` with at most ``concurrency`` trajectories in flight.

    ``progress`` receives every node's update (cheap counters only).
    ``control.request_drain()`` stops the run gracefully: no new trajectory
    starts, each running one stops after its current step is checkpointed,
    and its manifest row stays ``running`` (queued ones stay ``pending``) so
    ``resume`` picks them up. Once ``budget`` is reached no trajectory starts
    (their rows stay ``pending``); started ones, and ones continuing from a
    checkpoint, run to their end.
    """
    # SQLite: one process runs a database's trajectories at a time
    with store_lock(db_path), paced_gc():
        summary = await _run_jobs(db_path, jobs, models, executor_for, concurrency, progress, control, budget)
    if budget is not None:
        summary.spent_usd = budget.spent()
    return summary


async def _run_jobs(
    db_path: str | Path,
    jobs: list[Job],
    models: ModelSet,
    executor_for: ExecutorFactory,
    concurrency: int,
    progress: ProgressSink | None,
    control: RunControl | None,
    budget: RunBudget | None,
) -> RunSummary:
    summary = RunSummary()
    manifest = open_manifest(db_path)
    manifest.upgrade()  # an older database gains its new columns before any trajectory writes
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    try:
        async with async_store_saver(db_path) as saver:
            graphs = {mode: compile_graph(mode, saver) for mode in Mode}

            async def worker() -> None:
                while not queue.empty() and not (control is not None and control.drain_requested):
                    job = queue.get_nowait()
                    context = GraphContext(models=models, executor=executor_for(job.thread_id))
                    try:
                        await _run_one(job, graphs[job.mode], context, manifest, summary, progress, control, budget)
                    finally:
                        await _close(context.executor)

            if progress is not None:
                progress.run_started(len(jobs))
            try:
                await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)) or 1)))
            finally:
                if progress is not None:
                    progress.run_finished()
    finally:
        manifest.close()
    return summary


async def _close(executor: ToolExecutor) -> None:
    """An executor holding live resources (an MCP session, its server process) has ``aclose``:
    called when its trajectory ends, finished, failed or drained."""
    aclose = getattr(executor, "aclose", None)
    if aclose is not None:
        await aclose()


async def _run_one(
    job: Job, graph: Any, context: GraphContext, manifest: Manifest, summary: RunSummary,
    progress: ProgressSink | None = None, control: RunControl | None = None, budget: RunBudget | None = None,
) -> None:
    config = {"configurable": {"thread_id": job.thread_id}, "recursion_limit": RECURSION_LIMIT}
    start = job.start
    if start is not None and await graph.checkpointer.aget_tuple(config) is not None:
        start = None  # started before a crash: continue, never restart
    if start is not None and budget is not None and budget.reached():
        summary.not_started += 1  # its row stays pending
        return
    # Manifest writes run off the event loop: a blocking write waiting on the
    # saver's open transaction would otherwise stall the loop that commits it.
    await asyncio.to_thread(manifest.mark_running, job.thread_id)
    if progress is not None:
        progress.trajectory_started(job.thread_id, resumed=start is None)
    if start is not None and job.as_node is not None:
        await graph.aupdate_state(config, start, as_node=job.as_node)  # the first checkpoint, then continue
        start = None
    pricing = context.models.pricing
    try:
        values = await _drive(graph, start, config, context, job.thread_id, progress, control, budget)
    except GraphDrained:
        summary.interrupted += 1
        if progress is not None:
            progress.trajectory_finished(job.thread_id, "interrupted")
        return
    except (sqlite3.Error, psycopg.Error) as exc:
        raise StoreError(f"{manifest.path}: database error during the run: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 -- a bug in one trajectory must not sink the run; it is recorded
        reason = f"internal error: {type(exc).__name__}: {str(exc)[:300]}"
        cost = await _checkpointed_cost(graph, config, pricing)
        await asyncio.to_thread(manifest.mark_crashed, job.thread_id, reason, cost)
        if budget is not None:
            budget.settle(job.thread_id, cost.get("cost_usd") if cost else None)
        summary.add(None, reason)
        if progress is not None:
            progress.trajectory_finished(job.thread_id, "failed")
        return
    state = DialogueState.model_validate(values)
    await asyncio.to_thread(manifest.mark_finished, job.thread_id, state, pricing)
    if budget is not None:
        budget.settle(job.thread_id, budget.pricing.total(state.counters.usage))
    summary.add(state)
    if progress is not None:
        ok = state.stop_reason is not None and state.error is None
        progress.trajectory_finished(job.thread_id, "done" if ok else "failed")


async def _checkpointed_cost(graph: Any, config: dict[str, Any], pricing: Any) -> dict[str, Any] | None:
    """A crashed trajectory's cost so far, from its last checkpoint (None if that cannot be read)."""
    try:
        snapshot = await graph.aget_state(config)
        return cost_fields(DialogueState.model_validate(snapshot.values).counters, pricing)
    except Exception:  # noqa: BLE001 -- best effort on a trajectory that already failed; its error is what is recorded
        return None


async def _drive(
    graph: Any, start: dict[str, Any] | None, config: dict[str, Any], context: GraphContext,
    thread_id: str, progress: ProgressSink | None, control: RunControl | None, budget: RunBudget | None = None,
) -> Any:
    """The graph's final values; with a progress sink, each node's update is reported on the way,
    and with a budget each new count of tokens is priced as it is checkpointed."""
    if progress is None and budget is None:
        return await graph.ainvoke(start, config, context=context, control=control)
    values = None
    async for mode, chunk in graph.astream(start, config, context=context, control=control,
                                           stream_mode=["updates", "values"]):
        if mode == "values":
            values = chunk
        elif isinstance(chunk, dict):
            for node, update in chunk.items():
                if progress is not None:
                    progress.step(thread_id, node, update)
                if budget is not None and isinstance(update, dict) and isinstance(update.get("counters"), Counters):
                    budget.observe(thread_id, update["counters"])
    return values
