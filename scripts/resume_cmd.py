"""``dialogforge resume``: continue every unfinished trajectory of a database."""

from __future__ import annotations

import argparse
import sys

from dialogforge.cli.options import add_db, positive_float
from dialogforge.cli.run_options import add_run_options, models_context, overrides_from, progress_from


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "resume", help="continue unfinished trajectories after a crash or interrupt",
        description="Continue every pending or running trajectory from its last checkpoint, with the run's "
                    "recorded configuration (flags override it). Example: dialogforge resume --db run.db",
    )
    add_db(parser)
    parser.add_argument("--thread", action="append", metavar="THREAD", help="only this trajectory; repeat for several")
    parser.add_argument("--budget-usd", type=positive_float, metavar="USD",
                        help="the run's budget in US dollars, replacing the recorded --budget-usd (what it spent "
                             "before counts against it); trajectories left pending by a reached budget start again")
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.cli.generate_cmd import print_budget
    from dialogforge.interrupt import resume_hint
    from dialogforge.runs.resume import resume_run

    result = resume_run(
        args.db, overrides=overrides_from(args), concurrency=args.concurrency, thread_ids=args.thread,
        progress=progress_from(args), handle_signals=True, models_context=models_context(args),
        budget_usd=args.budget_usd,
    )
    if not result.thread_ids:
        print(f"nothing to resume in {args.db}: every trajectory is done or failed")
        return 0
    s = result.summary
    print(f"resumed {len(result.thread_ids)} trajectories: {s.done} done, {s.failed} failed, stored in {args.db}")
    for reason, count in sorted(s.failures.items()):
        print(f"  failed: {count} x {reason}")
    print_budget(s, result.budget_usd)
    if result.interrupted:
        sys.stderr.write(f"dialogforge: interrupted; unfinished trajectories are checkpointed: {resume_hint(args.db)}\n")
        return 130
    return 0
