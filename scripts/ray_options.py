"""``generate --executor ray`` and ``--processes N``: the flags and the paths that run a generation
on Ray workers or on local worker processes, both writing SQLite shards (or one Postgres store, Ray)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dialogforge.checkpoints.urls import is_postgres_url
from dialogforge.errors import ConfigError
from dialogforge.cli.options import positive_int

DEFAULT_WORKERS = 2


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling out (see README \"Scaling out\")")
    group.add_argument("--executor", choices=["local", "ray"], default="local",
                       help="local (default): this process; ray: shard the trajectories across Ray workers")
    group.add_argument("--ray-address", metavar="ADDR",
                       help="a running Ray cluster's head, HOST:PORT (or auto, ray://...); default: start a local one")
    group.add_argument("--processes", type=positive_int, metavar="N",
                       help="N local worker processes (no Ray), each running its SQLite shard at --concurrency; "
                            "every command reads the shards as one dataset (default 1: this process)")
    group.add_argument("--workers", type=positive_int,
                       help="Ray workers, each running its shard at --concurrency (default 2); "
                            "progress: one summed plain line every --progress-interval")


def check_executor_args(args: argparse.Namespace) -> None:
    """Refuse a bad Ray setup before anything is written: no Ray, no head node."""
    if args.processes is not None and args.processes > 1:
        if args.executor == "ray":
            raise ConfigError("--processes runs local worker processes; with --executor ray give --workers instead")
        from dialogforge.runs.generate import check_processes

        check_processes(args.db)
    if args.executor != "ray":
        given = [flag for flag, value in (("--workers", args.workers), ("--ray-address", args.ray_address)) if value]
        if given:
            raise ConfigError(f"{given[0]} needs --executor ray")
        return
    from dialogforge.runs.ray_run import check_ray_address, require_ray

    require_ray()
    check_ray_address(args.ray_address)


def generate_on_ray(args: argparse.Namespace, settings: Any, models_config: Any, tools: Any, tool_sets: Any,
                    starts: Any, libraries: Any = None, mcp_survey: Any = None) -> tuple[str, list[str], Any]:
    """Plan and record the run here, run it on Ray; (run id, thread ids, summary)."""
    from dialogforge.runs.generate import plan_generation
    from dialogforge.runs.ray_run import run_on_ray

    workers = args.workers or DEFAULT_WORKERS
    shards = None if is_postgres_url(args.db) else workers  # SQLite: one file per worker (dialogforge.checkpoints.shards)
    plan = plan_generation(args.db, settings, models_config, tools, tool_sets=tool_sets, tool_libraries=libraries,
                           initial_states=starts, shards=shards, mcp_survey=mcp_survey)
    report = None if args.quiet else _to_stderr
    result = run_on_ray(args.db, plan, models_config, workers=workers, address=args.ray_address,
                        report=report, report_interval_s=args.progress_interval)
    if result.unfinished:
        sys.stderr.write(f"dialogforge: {len(result.lost_shards)} Ray worker(s) died; {result.unfinished} unfinished "
                         f"trajectories are checkpointed: dialogforge resume --db {args.db}\n")
    return plan.run_id, plan.thread_ids, result.summary


def sharded(args: argparse.Namespace) -> str | None:
    """How this run is spread: "ray", "processes" (more than one local process) or None (this process)."""
    if args.executor == "ray":
        return "ray"
    return "processes" if args.processes is not None and args.processes > 1 else None


def generate_on_processes(args: argparse.Namespace, settings: Any, models_config: Any, tools: Any, tool_sets: Any,
                          starts: Any, libraries: Any = None, mcp_survey: Any = None) -> tuple[str, list[str], Any, bool]:
    """``generate(processes=N)``: planned into one SQLite shard per process, run in local worker
    processes; (run id, thread ids, summary, stopped)."""
    from dialogforge.runs.generate import generate

    result = generate(args.db, settings, models_config, tools, tool_sets=tool_sets, tool_libraries=libraries,
                      initial_states=starts, mcp_survey=mcp_survey, processes=args.processes,
                      report=None if args.quiet else _to_stderr, report_interval_s=args.progress_interval)
    for worker, code in result.failed_workers:
        sys.stderr.write(f"dialogforge: worker process {worker} exited with code {code}\n")
    # A worker that ended badly leaves its shard's rest checkpointed: said as for an interrupted run (exit 130).
    return result.run_id, result.thread_ids, result.summary, result.interrupted


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
