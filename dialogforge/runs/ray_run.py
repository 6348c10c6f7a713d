"""Running a planned generation on Ray workers.

The driver plans and records every trajectory (``dialogforge.runs.generate.plan_generation``),
then deals the jobs round-robin to ``workers`` Ray actors. Each actor builds
its own models and graph (a compiled graph holding a saver does not
pickle) and runs its shard with the ordinary async engine at its own
concurrency, writing checkpoints and manifest rows to the shared Postgres
database, or to its own SQLite shard (``dialogforge.checkpoints.shards``, one machine's
disk). Workers push their progress counters to a small board actor; the
driver sums them into one progress line.

A worker that dies loses nothing: every finished step is checkpointed and
every row is in the manifest. Ray restarts a dead actor (``max_restarts``)
and retries its shard; the retry skips rows already finished and the
engine continues started threads from their checkpoints. With restarts used
up, the shard's unfinished rows stay ``pending``/``running`` for
``dialogforge resume``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import dialogforge
from dialogforge.checkpoints.manifest import Status
from dialogforge.checkpoints.store_kinds import driver_lock, open_manifest
from dialogforge.config import ModelsConfig
from dialogforge.errors import ConfigError, DialogforgeError
from dialogforge.models import ModelSet
from dialogforge.progress import ProgressTally, summary_line
from dialogforge.runs.engine import Job, RunSummary
from dialogforge.runs.generate import PlannedRun, run_planned
from dialogforge.runs.tool_backends import executor_factory

PUSH_INTERVAL_S = 0.5
COUNTERS = ("total", "done", "failed", "interrupted", "in_flight", "user_turns", "tool_calls", "llm_calls", "tokens")
# Where the ``dialogforge`` package is imported from (a checkout or site-packages), for the workers.
PROJECT_ROOT = str(Path(dialogforge.__file__).resolve().parent.parent)


@dataclass
class RayRunResult:
    summary: RunSummary  # from the manifest: a restarted worker's first incarnation counts too
    workers: int
    lost_shards: list[int] = field(default_factory=list)  # workers that died for good; rows wait for resume
    unfinished: int = 0  # rows still pending or running (a lost shard's), for ``resume``


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'ray>=2.50,<3'") from None
    return ray


def check_ray_address(address: str | None) -> None:
    """Fail in seconds, not after Ray's minute of retries, when the head node is not there."""
    if address is None or address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT of the Ray head node (GCS), e.g. 10.0.0.5:6379")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--ray-address {address}: cannot reach the Ray head node ({exc.strerror or exc})") from None


def board_name(run_id: str) -> str:
    return f"dialogforge-progress-{run_id}"


def shards(jobs: list[Job], workers: int) -> list[list[Job]]:
    """Round-robin, so every worker gets a mix of the run's seeds."""
    return [jobs[i::workers] for i in range(workers) if jobs[i::workers]]


class ProgressBoard:
    """Ray actor: the latest counters each worker pushed."""

    def __init__(self) -> None:
        self.counters: dict[int, dict[str, float]] = {}
        self.pids: dict[int, int] = {}

    def push(self, worker: int, counters: dict[str, float]) -> None:
        self.counters[worker] = counters

    def register(self, worker: int, pid: int) -> None:
        self.pids[worker] = pid

    def read(self) -> tuple[dict[int, dict[str, float]], dict[int, int]]:
        return self.counters, self.pids


class _PushingTally(ProgressTally):
    """A worker's tally that sends its counters to the board at most every ``PUSH_INTERVAL_S``."""

    def __init__(self, board: Any, worker: int) -> None:
        super().__init__()
        self.board, self.worker, self.pushed_at = board, worker, 0.0

    def _maybe_push(self) -> None:
        now = time.monotonic()
        if now - self.pushed_at >= PUSH_INTERVAL_S:
            self.pushed_at = now
            self.board.push.remote(self.worker, self._counters())

    def _counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def step(self, thread_id: str, node: str, update: Any) -> None:
        super().step(thread_id, node, update)
        self._maybe_push()

    def trajectory_finished(self, thread_id: str, outcome: Any) -> None:
        super().trajectory_finished(thread_id, outcome)
        self._maybe_push()

    def run_finished(self) -> None:
        import ray

        ray.get(self.board.push.remote(self.worker, self._counters()))  # on the board before the shard returns


class ShardWorker:
    """Ray actor: runs one shard of a run with the async engine, against the shared store."""

    def run(self, db: str, jobs: list[Job], models_json: dict[str, Any], concurrency: int, board: Any,
            worker: int) -> RunSummary:
        board.register.remote(worker, os.getpid())
        manifest = open_manifest(db)
        try:  # a retry after a restart: what the dead incarnation finished stays finished
            finished = {r["thread_id"] for r in manifest.rows(statuses=[Status.DONE.value, Status.FAILED.value])}
        finally:
            manifest.close()
        jobs = [job for job in jobs if job.thread_id not in finished]
        models = ModelSet.from_config(ModelsConfig.model_validate(models_json), connections=concurrency)
        summary, _ = asyncio.run(run_planned(db, jobs, models, executor_factory(db, models, None), concurrency,
                                             progress=_PushingTally(board, worker)))
        return summary


def run_on_ray(
    db: str,
    plan: PlannedRun,
    models_config: ModelsConfig,
    *,
    workers: int,
    address: str | None = None,
    max_restarts: int = 1,
    report: Callable[[str], None] | None = None,
    report_interval_s: float = 10.0,
) -> RayRunResult:
    """Run ``plan``'s jobs on ``workers`` Ray actors, each at ``plan.settings.concurrency``.

    ``address``: a running cluster's head (``HOST:PORT``, ``auto``, ``ray://...``);
    None starts a local one, unless this process already joined one
    (``ray.init`` called before). ``report`` gets the summed progress line."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        check_ray_address(address)
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": max(workers, os.cpu_count() or 1)}))
    try:
        with driver_lock(db):
            return _run(ray, db, plan, models_config, workers, max_restarts, report, report_interval_s)
    finally:
        if started_here:
            ray.shutdown()


def _run(ray: Any, db: str, plan: PlannedRun, models_config: ModelsConfig, workers: int, max_restarts: int,
         report: Callable[[str], None] | None, report_interval_s: float) -> RayRunResult:
    env = {"PYTHONPATH": os.pathsep.join(p for p in (PROJECT_ROOT, os.environ.get("PYTHONPATH")) if p)}
    board = ray.remote(ProgressBoard).options(  # named, so a test or an operator can find the workers' pids
        name=board_name(plan.run_id), num_cpus=0, runtime_env={"env_vars": env}).remote()
    actor_class = ray.remote(ShardWorker).options(
        num_cpus=1, max_restarts=max_restarts, max_task_retries=max_restarts, runtime_env={"env_vars": env},
    )
    parts = shards(plan.jobs, workers)
    actors = [actor_class.remote() for _ in parts]
    stores = [str(path) for path in plan.shard_paths] if plan.shard_paths else [db] * len(parts)
    pending = {
        actor.run.remote(stores[i], part, models_config.model_dump(mode="json"), plan.settings.concurrency, board, i): i
        for i, (actor, part) in enumerate(zip(actors, parts))
    }
    result = RayRunResult(RunSummary(), len(parts))
    tally = ProgressTally()
    last_report = time.monotonic()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=min(1.0, report_interval_s))
        for ref in ready:
            index = pending.pop(ref)
            try:
                ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
                result.lost_shards.append(index)
            except ray.exceptions.RayTaskError as exc:  # e.g. the store went away: the worker's one-line error
                if isinstance(exc.cause, DialogforgeError):
                    raise exc.cause from None
                raise
        if report is not None and (not pending or time.monotonic() - last_report >= report_interval_s):
            last_report = time.monotonic()
            report(_aggregate_line(ray, board, tally))
    result.summary, result.unfinished = manifest_summary(db, plan.thread_ids)
    return result


def manifest_summary(db: str, thread_ids: list[str]) -> tuple[RunSummary, int]:
    """The run's outcome as recorded (done, failed with reasons), and how many rows are unfinished."""
    wanted = set(thread_ids)
    manifest = open_manifest(db)
    try:
        rows = [row for row in manifest.rows() if row["thread_id"] in wanted]
    finally:
        manifest.close()
    summary, unfinished = RunSummary(), 0
    for row in rows:
        if row["status"] == Status.DONE.value:
            summary.done += 1
        elif row["status"] == Status.FAILED.value:
            summary.failed += 1
            key = (row["error"] or row["stop_reason"] or "unknown").split(":")[0]
            summary.failures[key] = summary.failures.get(key, 0) + 1
        else:
            unfinished += 1
    return summary, unfinished


def _aggregate_line(ray: Any, board: Any, tally: ProgressTally) -> str:
    """All workers' counters summed into one tally; its snapshot gives the rates."""
    counters, _ = ray.get(board.read.remote())
    for name in COUNTERS:
        setattr(tally, name, int(sum(c.get(name, 0) for c in counters.values())))
    return "workers " + str(len(counters)) + " " + summary_line(tally.snapshot())

