"""LLM calls/s of ``dialogforge generate`` with 1 and with 2 (or more) local worker processes.

The stub server (the scripted model behind real HTTP, a fixed latency per
call) runs in its own process; each generate runs as the CLI would, against
it, into a fresh database. The rate is the run's LLM calls (summed from the
trajectories' recorded usage) over the generate's wall time, which includes
start-up and planning, so small runs understate the steady rate. CPU is the
generate's process tree (driver and workers: user + system).

    python benchmarks/processes.py                           # 1 and 2 processes, 96 dialogues, 64 in flight each, 0.5 s per call
    python benchmarks/processes.py --processes 1 2 --n 192 --concurrency 128 --latency 1.0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _stub(latency: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "dialogforge.testing.stub_server", "--port", "0", "--latency", str(latency)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = server.stdout.readline()
    if "listening on" not in line:
        server.kill()
        raise SystemExit(f"stub server did not start: {line!r}")
    return server, line.split("listening on", 1)[1].strip()


def _calls(db: Path) -> int:
    """LLM calls of every trajectory, from the manifests' usage column (one shard each, or the one file)."""
    shards = sorted((db.parent / f"{db.name}.shards").glob("shard-*.db"))
    total = 0
    for path in shards or [db]:
        with sqlite3.connect(path) as conn:
            for (usage,) in conn.execute("SELECT usage FROM runs"):
                total += sum(role.get("calls", 0) for role in json.loads(usage or "{}").values())
    return total


def measure(base_url: str, processes: int, n: int, concurrency: int, max_turns: int) -> dict[str, float]:
    db = Path(tempfile.mkdtemp()) / "run.db"
    command = [sys.executable, "-m", "dialogforge.cli", "generate", "--base-url", base_url, "--n", str(n),
               "--seed", "7", "--concurrency", str(concurrency), "--max-turns", str(max_turns), "--max-tasks", "3",
               "--db", str(db), "--quiet", *(["--processes", str(processes)] if processes > 1 else [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    started = time.monotonic()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    calls = _calls(db)
    return {"processes": processes, "wall_s": wall, "calls": calls, "calls_per_s": calls / wall,
            "cpu_ms_per_call": 1000 * cpu / max(calls, 1), "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=64, help="dialogues in flight per process")
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--max-turns", type=int, default=8)
    args = parser.parse_args()
    server, base_url = _stub(args.latency)
    try:
        print(f"stub server {base_url}, {args.latency} s per call; {args.n} dialogues, {args.concurrency} in flight per process")
        print(f"{'processes':>9} {'wall s':>7} {'calls':>6} {'calls/s':>8} {'CPU ms/call':>12} {'load':>5}")
        for count in args.processes:
            row = measure(base_url, count, args.n, args.concurrency, args.max_turns)
            print(f"{row['processes']:>9} {row['wall_s']:>7.1f} {row['calls']:>6} {row['calls_per_s']:>8.1f} "
                  f"{row['cpu_ms_per_call']:>12.1f} {row['load']:>5.1f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
