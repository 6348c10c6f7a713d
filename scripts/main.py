"""Entry point: parse, dispatch to one command module, turn domain errors into one line.

Every command module (``scripts/*_cmd.py``, ``dialogforge.cli.*_cmd``) exposes
``register(subparsers)`` and sets ``func`` to a ``run(args) -> int``. Command
modules import only argparse-level things at the top and load what their
command needs inside ``run``, so ``--help`` and a quick ``list`` start in a
fraction of a second. A ``DialogforgeError`` anywhere becomes
``dialogforge: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import sys
from pathlib import Path

from dialogforge.errors import DialogforgeError


def command_modules() -> list:
    """Every ``*_cmd`` module beside this one: adding a command is adding a module."""
    here = str(Path(__file__).parent)
    names = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.endswith("_cmd"))
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="dialogforge", description="Generate multi-turn tool-use dialogues with a simulated user.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in command_modules():
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # A damaged --db surfaces as sqlite3.DatabaseError from deep inside any command: one line too.
        if getattr(args, "db", None):
            from dialogforge.checkpoints.db_errors import database_errors

            guard = database_errors(args.db)
        else:
            guard = contextlib.nullcontext()
        with guard:
            return args.func(args)
    except DialogforgeError as exc:
        sys.stderr.write(f"dialogforge: error: {exc}\n")
        return 2
    except KeyboardInterrupt as exc:
        said = str(exc) if exc.args else "interrupted; `dialogforge resume --db PATH` continues the run"
        sys.stderr.write(f"dialogforge: {said}\n")
        return 130
