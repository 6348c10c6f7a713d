"""``dialogforge fork``: new trajectories that share a trajectory's history up to a checkpoint."""

from __future__ import annotations

import argparse
import sys

from dialogforge.cli.options import add_db, positive_int
from dialogforge.cli.run_options import add_run_options, models_context, overrides_from, progress_from


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fork", help="branch a trajectory at a checkpoint into new trajectories",
        description="Create K trajectories that share THREAD's history up to --checkpoint (see `dialogforge history`), "
                    "each with its own seed, then run them with the source run's recorded configuration. "
                    "Example: dialogforge fork ab12cd34-00000 --db run.db --checkpoint 1f0... --n 3",
    )
    parser.add_argument("thread_id", metavar="THREAD")
    add_db(parser)
    parser.add_argument("--checkpoint", required=True, metavar="ID", help="the checkpoint to branch at")
    parser.add_argument("--n", type=positive_int, default=1, help="number of forks (default 1)")
    parser.add_argument("--seed", type=int, help="fork k gets seed SEED+k (default: derived from its id)")
    parser.add_argument("--user-message", metavar="TEXT",
                        help="the forks' next user message, sent instead of the simulated one (at once when the "
                             "checkpoint's next node is simulate_user, else after the agent finishes the request)")
    parser.add_argument("--no-run", action="store_true", help="only create the forks (pending); `dialogforge resume` runs them")
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.interrupt import resume_hint
    from dialogforge.runs.fork import fork_trajectory

    result = fork_trajectory(
        args.db, args.thread_id, args.checkpoint, args.n, seed=args.seed, user_message=args.user_message,
        run=not args.no_run, overrides=overrides_from(args), concurrency=args.concurrency,
        progress=progress_from(args), handle_signals=True, models_context=models_context(args),
    )
    for thread_id, seed in zip(result.thread_ids, result.seeds):
        print(f"{thread_id}  seed {seed}")
    if result.summary is None:
        print(f"{len(result.thread_ids)} forks of {args.thread_id} created (pending); run them: dialogforge resume --db {args.db}")
        return 0
    s = result.summary
    print(f"{len(result.thread_ids)} forks of {args.thread_id}: {s.done} done, {s.failed} failed, stored in {args.db}")
    for reason, count in sorted(s.failures.items()):
        print(f"  failed: {count} x {reason}")
    if result.interrupted:
        sys.stderr.write(f"dialogforge: interrupted; unfinished trajectories are checkpointed: {resume_hint(args.db)}\n")
        return 130
    return 0
