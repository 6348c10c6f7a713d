"""``dialogforge stats``: the paper's Table 1 measures, validity and cost; optionally a report with plots."""

from __future__ import annotations

import argparse

from dialogforge.cli.options import add_db, add_json


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stats", help="dataset statistics (Table 1 measures)",
        description="Step, Turn and Task (mean and max) per mode and tool source, validity rate, failure reasons "
                    "and tokens per trajectory. Example: dialogforge stats --db run.db --report report/",
    )
    add_db(parser)
    add_json(parser)
    parser.add_argument("--report", metavar="DIR", help="also write DIR/report.md with histogram PNGs")
    parser.add_argument("--valid-only", action="store_true", help="measure only valid, non-duplicate trajectories")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.checkpoints.store_kinds import check_store
    from dialogforge.dataset.atomic import check_report_dir
    from dialogforge.dataset.stats import collect_stats, table_text

    check_store(args.db, must_exist=True)
    if args.report:
        check_report_dir(args.report)
    stats = collect_stats(args.db, valid_only=args.valid_only)
    print(stats.to_json() if args.json else table_text(stats))
    if args.report:
        from dialogforge.dataset.report import write_report  # matplotlib loads slowly: only when asked

        path = write_report(stats, args.report)
        if not args.json:
            print(f"report: {path}")
    return 0
