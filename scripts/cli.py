"""Entry point: parse, dispatch to one command module, turn domain errors into one line.

Every command module exposes ``register(subparsers)`` and sets ``func`` to a
``run(args) -> int``. A ``DialogforgeError`` anywhere becomes
``dialogforge: error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from dialogforge.errors import DialogforgeError
from scripts import generate_cmd, list_cmd, show_cmd

COMMANDS = [generate_cmd, list_cmd, show_cmd]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="dialogforge", description="Generate multi-turn tool-use dialogues with a simulated user.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DialogforgeError as exc:
        sys.stderr.write(f"dialogforge: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("dialogforge: interrupted; `dialogforge resume --db PATH` continues the run\n")
        return 130
