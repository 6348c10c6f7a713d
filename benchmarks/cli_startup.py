"""How long the command line takes to start: ``--help`` of every command and ``list`` on a small database.

Each command is run as a new process, as a user runs it, ``--runs`` times;
the median is printed beside ``sqlite-utils --help`` measured the same way
(the yardstick: a thin CLI over a SQLite library, from the same
environment). Commands import only what they run (see dialogforge/cli/main.py).

    python benchmarks/cli_startup.py            # 5 runs each
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = ["config", "export", "fork", "generate", "history", "list", "resume", "show", "stats", "validate", "view", "viz"]


def timed(argv: list[str], runs: int, cwd: Path) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dialogforge = [sys.executable, "-m", "dialogforge.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([*dialogforge, "generate", "--backend", "scripted", "--n", "3", "--seed", "1", "--max-turns", "3",
                        "--db", "small.db", "--quiet"], cwd=root, check=True, stdout=subprocess.DEVNULL)
        rows = []
        yardstick = shutil.which("sqlite-utils")
        base = timed([yardstick, "--help"], args.runs, root) if yardstick else None
        rows.append(("sqlite-utils --help", base))
        rows.append(("dialogforge --help", timed([*dialogforge, "--help"], args.runs, root)))
        for command in COMMANDS:
            rows.append((f"dialogforge {command} --help", timed([*dialogforge, command, "--help"], args.runs, root)))
        rows.append(("dialogforge list --db small.db", timed([*dialogforge, "list", "--db", "small.db"], args.runs, root)))
    print(f"{'command':<36} {'median s':>9} {'x sqlite-utils':>15}")
    for name, seconds in rows:
        ratio = f"{seconds / base:.2f}" if base and seconds is not None else "-"
        print(f"{name:<36} {seconds if seconds is not None else float('nan'):>9.3f} {ratio:>15}")


if __name__ == "__main__":
    main()
