"""Build the example Tool-Exec databases (bookstore, clinic, telecom) offline.

Example:
    python -m dialogforge.cli.build_example_dbs data/examples
    dialogforge generate --tool-exec sql --domain-db data/examples/clinic.sqlite ...

Each example becomes ``<out_dir>/<name>.sqlite`` and ``<out_dir>/<name>.tools.json``,
built from the data in ``dialogforge/sqlexec/examples/<name>/``. Running it
again leaves unchanged files untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dialogforge.sqltools.build import build_examples
from dialogforge.sqltools.errors import SqlExecError


def main(out_dir: str | Path) -> list[Path]:
    """Build every example into ``out_dir``; returns the database paths."""
    return build_examples(out_dir)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_example_dbs",
        description=__doc__.split("\n\n")[0],
        epilog="example: python -m dialogforge.cli.build_example_dbs data/examples",
    )
    parser.add_argument("out_dir", type=Path, help="directory for <name>.sqlite and <name>.tools.json")
    args = parser.parse_args(argv)
    try:
        paths = main(args.out_dir)
    except SqlExecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write to {args.out_dir}: {error.strerror}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
