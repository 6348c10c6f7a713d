"""``dialogforge history``: every checkpoint of a trajectory, oldest first (where to fork from)."""

from __future__ import annotations

import argparse
import json

from dialogforge.cli.options import add_db, add_json


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "history", help="list a trajectory's checkpoints (fork points)",
        description="List every checkpoint of a trajectory, oldest first; a fork's list starts with the "
                    "checkpoints it inherited, and a thread branched in place (LangGraph's replay or update_state) "
                    "lists every branch. Example: dialogforge history ab12cd34-00000 --db run.db --json",
    )
    parser.add_argument("thread_id", metavar="THREAD")
    add_db(parser)
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.runs.history import history

    entries = history(args.db, args.thread_id)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=1))
        return 0
    print(f"{'step':>5}  {'checkpoint_id':<36}  {'node':<16} {'next':<16} {'turn':>4} {'msgs':>4}  preview")
    for e in entries:
        mark = "*" if e.inherited else "~" if e.branch else " "
        print(f"{e.step:>5}{mark} {e.checkpoint_id:<36}  {e.node[:16]:<16} {','.join(e.next)[:16] or '-':<16} "
              f"{e.user_turn:>4} {e.messages:>4}  {e.preview[:70]}")
    inherited = sum(e.inherited for e in entries)
    tail = f" ({inherited} inherited from its source, marked *)" if inherited else ""
    others = [e.ends for e in entries if e.ends and e.branch]
    if others:
        tail += f"; {sum(e.branch for e in entries)} on branches off the head's line, marked ~, ending in {', '.join(others)}"
    print(f"{len(entries)} checkpoints{tail}; fork with: dialogforge fork {args.thread_id} --db {args.db} --checkpoint ID --n K")
    return 0
