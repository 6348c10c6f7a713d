"""``dialogforge list``: one row per trajectory."""

from __future__ import annotations

import argparse
import json

from dialogforge.cli.options import add_db, add_json

LIST_FIELDS = [
    "thread_id", "run_id", "mode", "status", "stop_reason", "error", "domain", "seed",
    "user_turns", "messages", "tool_calls", "tool_errors", "tasks", "tokens",
    "parent_thread_id", "fork_checkpoint_id", "created_at", "finished_at", "tool_exec",
    "language", "persona", "cost_usd", "usage",
]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="list trajectories", description="List trajectories. Example: dialogforge list --db run.db --json")
    add_db(parser)
    add_json(parser)
    parser.add_argument("--status", choices=["pending", "running", "done", "failed"], help="only this status")
    parser.set_defaults(func=run)


def list_trajectories(db: str, status: str | None = None) -> list[dict]:
    """One row per trajectory: each manifest row, and each other leaf of a thread branched in place."""
    from dialogforge.checkpoints.store_kinds import open_manifest
    from dialogforge.runs.branches import with_branches

    manifest = open_manifest(db)
    try:
        rows = with_branches(db, manifest.rows())
    finally:
        manifest.close()
    out = [{key: row.get(key) for key in LIST_FIELDS} for row in rows if status is None or row["status"] == status]
    for row in out:  # per role: tokens and, with prices, dollars (JSON text in the manifest)
        row["usage"] = json.loads(row["usage"]) if row["usage"] else None
    return out


def run(args: argparse.Namespace) -> int:
    rows = list_trajectories(args.db, args.status)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from dialogforge.pricing import dollars

    width = max([16, *(len(r["thread_id"]) for r in rows)])  # a branch's leaf is THREAD@CHECKPOINT
    header = (f"{'thread_id':<{width}} {'mode':<4} {'status':<7} {'stop_reason':<15} {'turns':>5} {'msgs':>5} {'tools':>5} "
              f"{'tasks':>5} {'tokens':>9} {'cost':>9} lang")
    print(header)
    for r in rows:
        print(f"{r['thread_id']:<{width}} {r['mode']:<4} {r['status']:<7} {(r['stop_reason'] or '-'):<15} "
              f"{r['user_turns'] or 0:>5} {r['messages'] or 0:>5} {r['tool_calls'] or 0:>5} {r['tasks'] or 0:>5} "
              f"{r['tokens'] or 0:>9} {dollars(r['cost_usd']):>9} {r['language'] or '-'}")
    priced = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
    print(f"{len(rows)} trajectories" + (f", {dollars(sum(priced))} for the {len(priced)} finished" if priced else ""))
    return 0
