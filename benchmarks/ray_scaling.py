"""LLM calls/s with 1 and 2 Ray workers against a fixed-latency stub server, on a shared Postgres store.

    python benchmarks/ray_scaling.py                          # workers 1 2, 64 trajectories, concurrency 32, 0.2 s
    python benchmarks/ray_scaling.py --workers 1 2 4 --n 128 --concurrency 64 --latency 0.5
    python benchmarks/ray_scaling.py --store sqlite             # one SQLite shard per worker instead

The stub server (``dialogforge.testing.stub_server``) runs in its own
process and holds every call ``--latency`` seconds; a throwaway PostgreSQL
server (``dialogforge.testing.postgres_server``) holds checkpoints and
manifest; a local Ray cluster (``--cpus``) runs the workers. For each
worker count a fresh database gets the same run (``--n`` trajectories,
each worker at ``--concurrency``), through ``dialogforge.runs.ray_run.run_on_ray``:
what ``generate --executor ray`` does. Calls are counted at the server;
the rate is taken between 10% and 90% of the run's calls, so worker
start-up and the tail (fewer trajectories left than slots) do not count.
Not a test: figures depend on the machine (this one has 2 cores shared by
the workers, the stub server, Postgres and Ray itself).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.throughput import server_calls, start_server  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--n", type=int, default=64, help="trajectories per run")
    p.add_argument("--concurrency", type=int, default=32, help="trajectories in flight per worker")
    p.add_argument("--latency", type=float, default=0.2, help="seconds the stub server holds each call")
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    p.add_argument("--max-turns", type=int, default=6)
    p.add_argument("--store", choices=["postgres", "sqlite"], default="postgres",
                   help="postgres: one shared database; sqlite: one shard file per worker")
    return p.parse_args(argv)


class CallSampler:
    """Samples the server's call count every 0.1 s from a thread."""

    def __init__(self, url: str) -> None:
        self.url, self.samples, self.stop = url, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.monotonic(), server_calls(self.url)))
            time.sleep(0.1)

    def __enter__(self) -> "CallSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.samples.append((time.monotonic(), server_calls(self.url)))

    def steady_rate(self) -> float:
        """Calls/s between 10% and 90% of the calls made while sampling."""
        first, last = self.samples[0][1], self.samples[-1][1]
        total = last - first
        lo = next(s for s in self.samples if s[1] - first >= 0.1 * total)
        hi = next(s for s in self.samples if s[1] - first >= 0.9 * total)
        return (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else 0.0


def measure(workers: int, url: str, pg, args: argparse.Namespace) -> dict:
    from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
    from dialogforge.runs.generate import plan_generation
    from dialogforge.runs.ray_run import run_on_ray
    from dialogforge.records import Limits

    shards = None
    if args.store == "postgres":
        db = pg.new_database()
    else:
        db, shards = str(Path(tempfile.mkdtemp(prefix="dialogforge-bench-")) / "run.db"), workers
    models = ModelsConfig(default=ModelConfig(backend="openai", base_url=url))
    settings = GenerationSettings(n=args.n, seed=1, concurrency=args.concurrency,
                                  limits=Limits(max_user_turns=args.max_turns, max_tasks=2))
    plan = plan_generation(db, settings, models, shards=shards)
    started = time.monotonic()
    with CallSampler(url) as sampler:
        result = run_on_ray(db, plan, models, workers=workers)
    wall = time.monotonic() - started
    calls = sampler.samples[-1][1] - sampler.samples[0][1]
    return {"workers": workers, "done": result.summary.done, "failed": result.summary.failed, "calls": calls,
            "wall_s": wall, "calls_per_s": sampler.steady_rate(), "ideal": workers * args.concurrency / args.latency}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import ray

    from dialogforge.testing.postgres_server import PostgresServer

    server, url = start_server(args.latency)
    pg = PostgresServer().start()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        rows = [measure(w, url, pg, args) for w in args.workers]
    finally:
        ray.shutdown()
        pg.stop()
        server.terminate()
        server.wait()
    print(f"\n{args.n} trajectories, concurrency {args.concurrency} per worker, {args.latency} s per call, "
          f"{args.cpus}-CPU local Ray cluster, {args.store} store")
    print("| workers | done | failed | calls | wall s | calls/s (steady) | ideal calls/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['workers']} | {r['done']} | {r['failed']} | {r['calls']} | {r['wall_s']:.1f} | "
              f"{r['calls_per_s']:.1f} | {r['ideal']:.0f} |")


if __name__ == "__main__":
    main()
