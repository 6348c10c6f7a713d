"""Entry point: parse, dispatch to one command module, turn domain errors into one line.

Every command module (``scripts/*_cmd.py``) exposes ``register(subparsers)`` and sets ``func`` to a
``run(args) -> int``. A ``DialogforgeError`` anywhere becomes
``dialogforge: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import sys

import scripts
from checkpoints.db_errors import database_errors
from dialogforge.errors import DialogforgeError


def command_modules() -> list:
    """Every ``scripts/*_cmd.py``: adding a command is adding a module."""
    names = sorted(m.name for m in pkgutil.iter_modules(scripts.__path__) if m.name.endswith("_cmd"))
    return [importlib.import_module(f"scripts.{name}") for name in names]


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
        with database_errors(args.db) if getattr(args, "db", None) else contextlib.nullcontext():
            return args.func(args)
    except DialogforgeError as exc:
        sys.stderr.write(f"dialogforge: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("dialogforge: interrupted; `dialogforge resume --db PATH` continues the run\n")
        return 130
