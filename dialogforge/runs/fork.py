"""``fork``: new trajectories that share a trajectory's history up to a checkpoint, then diverge.

Each fork is a new thread holding a copy of the source's checkpoints up to
the fork point (``copy_thread_prefix``, so its history shows them), plus one
checkpoint of its own on top (metadata ``source: fork``) that changes only:

* ``seed``: every model call of the trajectory is seeded from it, so forks
  continue differently from the source and from each other;
* ``pending_user_message`` (``--user-message``): the user turn sends it
  instead of asking the user simulator. It is the fork's *next* user
  message: at once if the fork point's next node is ``simulate_user``, else
  after the agent has finished the request in progress (fork at an agent
  step or a tool result).

Everything else, including what runs next, is the fork point's. The copy,
that checkpoint and the fork's manifest row (``parent_thread_id``,
``fork_checkpoint_id``) of all ``n`` forks are written in one transaction
(a kill leaves all of them or none); the source is only read. A fork point
must be a checkpoint something runs from: not the run's input (step -1;
fork from step 0, its first state) and not the end.
Forks then run like resumed trajectories, with the source run's recorded
configuration (``dialogforge.runs.resume``), unless ``run=False``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogforge.checkpoints.manifest import PlannedTrajectory, Status, now
from dialogforge.compat.langgraph import checkpoint_on_top
from dialogforge.runs.resume import ModelOverrides, ModelsContext, resume_run
from dialogforge.checkpoints.postgres_threads import PostgresThreadSaver
from dialogforge.checkpoints.shards import thread_store
from dialogforge.checkpoints.store_kinds import check_store, check_store_integrity, open_manifest, store_errors, driver_lock, store_saver
from dialogforge.errors import DialogforgeError, NotFoundError
from dialogforge.progress import ProgressSink
from dialogforge.graphs.builder import compile_graph
from dialogforge.runs.engine import RunSummary
from dialogforge.records import Mode


class ForkError(DialogforgeError):
    """A fork point that nothing could continue from, or a bad fork request."""


@dataclass
class ForkResult:
    source_thread_id: str
    checkpoint_id: str
    thread_ids: list[str]
    seeds: list[int]
    summary: RunSummary | None = None  # None when the forks were only created
    interrupted: bool = False
    next_nodes: list[str] = field(default_factory=list)


def fork_trajectory(
    db_path: str | Path,
    thread_id: str,
    checkpoint_id: str,
    n: int = 1,
    *,
    seed: int | None = None,
    user_message: str | None = None,
    run: bool = True,
    overrides: ModelOverrides = ModelOverrides(),
    concurrency: int | None = None,
    progress: ProgressSink | None = None,
    handle_signals: bool = False,
    models_context: ModelsContext | None = None,
) -> ForkResult:
    """Create ``n`` forks of ``thread_id`` at ``checkpoint_id`` (fork k gets seed ``seed + k``, or
    one derived from its id), then run them to done or failed unless ``run`` is False."""
    check_store(db_path, must_exist=True)
    db_path = thread_store(db_path, thread_id)  # a sharded dataset: forks live in the source's shard
    if n < 1:
        raise ForkError(f"--n must be at least 1, got {n}")
    if user_message is not None and not user_message.strip():
        raise ForkError("--user-message is empty")
    check_store_integrity(db_path)
    with store_errors(db_path), driver_lock(db_path):
        result = _create_forks(db_path, thread_id, checkpoint_id, n, seed, user_message)
        if run:
            resumed = resume_run(
                db_path, overrides=overrides, concurrency=concurrency, thread_ids=result.thread_ids,
                progress=progress, handle_signals=handle_signals, models_context=models_context,
            )
            result.summary, result.interrupted = resumed.summary, resumed.interrupted
    return result


def _create_forks(db_path: str | Path, thread_id: str, checkpoint_id: str, n: int, seed: int | None,
                  user_message: str | None) -> ForkResult:
    manifest = open_manifest(db_path)
    try:
        row = manifest.get(thread_id)
        taken = {r["thread_id"] for r in manifest.rows()}
    finally:
        manifest.close()
    if row is None:
        raise NotFoundError(f"{db_path}: no trajectory {thread_id!r} (see `dialogforge list`)")
    with store_saver(db_path) as saver:
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
        point = saver.get_tuple(config)
        if point is None:
            raise NotFoundError(
                f"{db_path}: trajectory {thread_id!r} has no checkpoint {checkpoint_id!r} "
                f"(see `dialogforge history {thread_id} --db {db_path}`)"
            )
        step = int(point.metadata.get("step", -1))
        if step < 0:
            raise ForkError(f"checkpoint {checkpoint_id} is the run's input (step {step}); fork from step 0 or later")
        graph = compile_graph(Mode(row["mode"]), saver)
        next_nodes = list(graph.get_state(config).next)
        if not next_nodes:
            raise ForkError(f"checkpoint {checkpoint_id} is where trajectory {thread_id} ended; nothing runs after it")
        ids = _fork_ids(thread_id, n, taken | _threads_with_checkpoints(saver, thread_id, n))
        seeds = [seed + k if seed is not None else _derived_seed(fork_id) for k, fork_id in enumerate(ids)]
        source_seed = point.checkpoint["channel_values"].get("seed")
        seeds = [s + 1 if s == source_seed else s for s in seeds]
        with saver.transaction():  # all n forks or none: a kill never leaves a partial --n
            for fork_id, fork_seed in zip(ids, seeds):
                saver.copy_thread_prefix(thread_id, fork_id, checkpoint_id)
                _put_fork_point(saver, fork_id, point, fork_seed, user_message, thread_id)
                _insert_row(saver, _fork_row(row, fork_id, fork_seed, checkpoint_id))
    return ForkResult(thread_id, checkpoint_id, ids, seeds, next_nodes=next_nodes)


def _fork_ids(thread_id: str, n: int, taken: set[str]) -> list[str]:
    """``<source>-f1``, ``<source>-f2``, ...: the first n unused."""
    ids, k = [], 1
    while len(ids) < n:
        candidate = f"{thread_id}-f{k}"
        if candidate not in taken:
            ids.append(candidate)
        k += 1
    return ids


def _threads_with_checkpoints(saver: Any, thread_id: str, n: int) -> set[str]:
    """Fork ids already holding checkpoints without a manifest row (a copy made by hand)."""
    taken, k, misses = set(), 1, 0
    while misses < n:
        candidate = f"{thread_id}-f{k}"
        if saver.thread_exists(candidate):
            taken.add(candidate)
        else:
            misses += 1
        k += 1
    return taken


def _derived_seed(fork_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"fork:{fork_id}".encode()).digest()[:4], "big") & 0x7FFFFFFF


def _put_fork_point(saver: Any, fork_id: str, point: Any, seed: int, user_message: str | None, source: str) -> None:
    """The fork's own first checkpoint: the fork point with a new seed (and next user message)."""
    base = point.checkpoint
    checkpoint_id = base["id"]
    step = int(point.metadata.get("step", 0))
    updates: dict[str, Any] = {"seed": seed}
    if user_message is not None:
        updates["pending_user_message"] = user_message
    versions = dict(base["channel_versions"])
    top = max((int(str(v).split(".")[0]) for v in versions.values()), default=0)
    new_versions = {channel: saver.get_next_version(top, None) for channel in updates}  # the saver's own version format
    versions.update(new_versions)
    checkpoint = checkpoint_on_top(
        base, step=step, channel_values={**_inline_values(saver, source, checkpoint_id), **updates},
        channel_versions=versions,
    )
    metadata: dict[str, Any] = {
        "source": "fork", "step": step, "parents": {},
        "fork": {"thread_id": source, "checkpoint_id": checkpoint_id, "seed": seed, "user_message": user_message is not None},
    }
    if "counters_since_delta_snapshot" in point.metadata:
        metadata["counters_since_delta_snapshot"] = point.metadata["counters_since_delta_snapshot"]
    parent = {"configurable": {"thread_id": fork_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    saver.put(parent, checkpoint, metadata, new_versions)


def _inline_values(saver: Any, thread_id: str, checkpoint_id: str) -> dict[str, Any]:
    """Values a Postgres checkpoint row holds itself (our SQLite saver keeps every value by version)."""
    return saver.inline_values(thread_id, checkpoint_id) if isinstance(saver, PostgresThreadSaver) else {}


def _fork_row(source_row: dict[str, Any], fork_id: str, seed: int, checkpoint_id: str) -> dict[str, Any]:
    fields = set(PlannedTrajectory.model_fields)
    planned = PlannedTrajectory.model_validate({
        **{k: v for k, v in source_row.items() if k in fields and v is not None},
        "thread_id": fork_id, "seed": seed,
        "parent_thread_id": source_row["thread_id"], "fork_checkpoint_id": checkpoint_id,
    })
    return {**planned.model_dump(), "status": Status.PENDING.value, "created_at": now()}


def _insert_row(saver: Any, row: dict[str, Any]) -> None:
    """The manifest row, in the caller's transaction (columns this database has)."""
    if isinstance(saver, PostgresThreadSaver):
        saver.insert_manifest_row(row)
        return
    conn = saver.conn
    columns = {info[1] for info in conn.execute("PRAGMA table_info(runs)")}
    keys = [k for k in row if k in columns]
    conn.execute(
        f"INSERT INTO runs ({', '.join(keys)}) VALUES ({', '.join('?' for _ in keys)})",
        [row[k] for k in keys],
    )
