"""Running a planned generation on N local worker processes: every core of one box, no Ray.

One event loop tops out near one core (see ``benchmarks/throughput.py``), so a
box with more cores than that needs more processes. The driver plans and
records every trajectory into SQLite shards (``dialogforge.checkpoints.shards``),
round-robin, exactly as for Ray; then each worker process resumes its own
shard (``python -m dialogforge.runs.local_processes SHARD``): the planned
rows are ``pending``, so a worker runs the very code path of ``dialogforge
resume``, with its kill -9 guarantees, and the result is read as one dataset by
every command. A killed or crashed worker loses nothing: its unfinished rows
stay checkpointed for ``dialogforge resume --db DB``.

Workers run in sessions of their own, so a terminal's Ctrl-C reaches the
driver only; the driver forwards each one, and the workers drain (first) or
stop at once (second) as a single-process run does. A worker whose driver
disappears (kill -9) stops within a second instead of running on unwatched.
The models config reaches a worker on its stdin (keys never on a command line
or on disk).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dialogforge.config import ModelsConfig
from dialogforge.runs.engine import RunSummary
from dialogforge.runs.generate import PlannedRun
from dialogforge.runs.ray_run import manifest_summary

INTERRUPTED_EXIT = 130
PARENT_POLL_S = 0.5


@dataclass
class ProcessRunResult:
    summary: RunSummary  # from the shards' manifests
    processes: int
    failed_workers: list[tuple[int, int]] = field(default_factory=list)  # (worker, exit code) that ended badly
    interrupted: bool = False
    unfinished: int = 0  # rows still pending or running, for ``resume``


def run_on_processes(
    db: str,
    plan: PlannedRun,
    models_config: ModelsConfig,
    *,
    report: Callable[[str], None] | None = None,
    report_interval_s: float = 10.0,
) -> ProcessRunResult:
    """Run ``plan`` (planned into shards) with one worker process per shard, each at ``plan.settings.concurrency``."""
    assert plan.shard_paths, "run_on_processes needs a plan recorded into SQLite shards"
    payload = json.dumps(models_config.model_dump(mode="json"))
    workers = [_start(path, plan.settings.concurrency, payload) for path in plan.shard_paths]
    interrupts = 0

    def forward(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, forward) if threading.current_thread() is threading.main_thread() else None
    try:
        last_report = time.monotonic()
        while any(worker.poll() is None for worker in workers):
            time.sleep(0.2)
            if report is not None and time.monotonic() - last_report >= report_interval_s:
                last_report = time.monotonic()
                report(_progress_line(db, plan.thread_ids, len(workers)))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    result = ProcessRunResult(RunSummary(), len(workers), interrupted=interrupts > 0)
    for index, worker in enumerate(workers):
        if worker.returncode == INTERRUPTED_EXIT:
            result.interrupted = True
        elif worker.returncode != 0:
            result.failed_workers.append((index, worker.returncode))
    result.summary, result.unfinished = manifest_summary(db, plan.thread_ids)
    if report is not None:
        report(_progress_line(db, plan.thread_ids, len(workers)))
    return result


def _start(shard: Path, concurrency: int, payload: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "dialogforge.runs.local_processes", str(shard), str(concurrency), str(os.getpid())]
    worker = subprocess.Popen(command, stdin=subprocess.PIPE, start_new_session=True, text=True)
    assert worker.stdin is not None
    worker.stdin.write(payload)
    worker.stdin.close()
    return worker


def _progress_line(db: str, thread_ids: list[str], processes: int) -> str:
    summary, unfinished = manifest_summary(db, thread_ids)
    return (f"[{processes} processes] done {summary.done}/{len(thread_ids)} failed {summary.failed} "
            f"unfinished {unfinished}")


def _watch_parent(parent: int) -> None:
    """Stop this worker once its driver is gone (kill -9 leaves no one to forward a signal)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(INTERRUPTED_EXIT)


def worker_main(argv: list[str]) -> int:
    """A worker: resume one shard's planned rows with the models config read from stdin."""
    from dialogforge.errors import DialogforgeError
    from dialogforge.runs.resume import resume_run

    shard, concurrency, parent = Path(argv[0]), int(argv[1]), int(argv[2])
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    models_config = ModelsConfig.model_validate(json.loads(sys.stdin.read()))
    try:
        result = resume_run(shard, concurrency=concurrency, handle_signals=True,
                            models_context=lambda recorded: nullcontext(models_config))
    except DialogforgeError as exc:
        sys.stderr.write(f"dialogforge: error: worker for {shard.name}: {exc}\n")
        return 2
    return INTERRUPTED_EXIT if result.interrupted else 0


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
