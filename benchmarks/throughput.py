"""Throughput and CPU per LLM call of one dialogforge process against a fixed-latency OpenAI-compatible server.

    python benchmarks/throughput.py                                  # N = 128 at 1 s, simulated and sql workloads
    python benchmarks/throughput.py --n 1024 --latency 10 --window 40
    python benchmarks/throughput.py --n 128 --workload sql --py-spy /tmp/spy   # where the worker's time goes

The stub server (``dialogforge.testing.stub_server``, the scripted model
behind real HTTP) runs in its own process and holds every call for
``--latency`` seconds. For each N, fresh worker processes are measured over
the same kind of steady-state window (after a ramp):

- ``bare``: N coroutines looping stock ``ChatOpenAI.ainvoke`` on a
  mid-dialogue agent request of the first workload (its history, tools bound):
  the HTTP client alone;
- ``client``: the same loop through ``dialogforge.models.call.invoke_chat`` (what a
  node calls: our ``ReasoningChatOpenAI``, retries, the endpoint pool);
- one ``graph`` worker per workload (``benchmarks/workloads.py``: ``simulated``,
  ``sql``, ``light``): ``dialogforge.runs.engine.run_jobs`` with
  ``concurrency=N``, ``openai`` backend, SQLite checkpoints and the manifest,
  everything a real run does.

Reported: LLM calls/s (counted at the server) against the ideal N / latency,
and the mean number in flight at the server; CPU per call of each worker
(user + system, all its threads) and of the stub server; peak RSS growth per
in-flight dialogue. CPU per call is the figure to trust on a shared box: a
rate needs free cores, CPU time does not. Not a test: figures depend on the
machine and its load, which is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import workloads  # noqa: E402

DEFAULT_NS = (128,)
DEFAULT_WORKLOADS = ("simulated", "sql")
BARE_RAMP_S = 5.0
SAMPLE_S = 0.5
LAG_PROBE_S = 0.001  # a short timer per sample; its lateness is the loop lag


# ------------------------------------------------------------ measuring


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process, all its threads."""
    if pid == "self":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_stats(url: str) -> dict:
    # urllib, not a fresh httpx client per sample: that builds an SSL context each time, ~10 ms of
    # the worker's own CPU, which the window would charge to the calls.
    import urllib.request

    with urllib.request.urlopen(url.rstrip("/").removesuffix("/v1") + "/stats", timeout=10) as reply:
        return json.loads(reply.read())


def server_calls(url: str) -> int:
    return server_stats(url)["calls"]


class Window:
    """Samples the worker and the server at the start and end of the steady-state window."""

    def __init__(self, url: str, server_pid: int) -> None:
        self.url, self.server_pid = url, server_pid
        self.peak_rss = rss_mb()
        self.in_flight: list[int] = []
        self.lags: list[float] = []  # how late a timer's callback ran: a ready task's wait for the loop

    def mark(self) -> dict:
        return {"t": time.perf_counter(), "cpu": cpu_s(), "server_cpu": cpu_s(self.server_pid),
                "calls": server_calls(self.url)}

    async def watch(self, stop: asyncio.Event, sampling: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_mb())
            if sampling.is_set():
                self.in_flight.append((await asyncio.to_thread(server_stats, self.url))["in_flight"])
            asked = asyncio.get_running_loop().time()
            await asyncio.sleep(LAG_PROBE_S)
            if sampling.is_set():
                self.lags.append(asyncio.get_running_loop().time() - asked - LAG_PROBE_S)
            await asyncio.sleep(SAMPLE_S)


async def measure(url: str, server_pid: int, ramp_s: float, window_s: float, base_rss: float,
                  on_window: Callable[[], None] | None = None) -> dict:
    window = Window(url, server_pid)
    stop, sampling = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(window.watch(stop, sampling))
    await asyncio.sleep(ramp_s)
    start = await asyncio.to_thread(window.mark)
    if on_window is not None:
        on_window()
    sampling.set()
    await asyncio.sleep(window_s)
    end = await asyncio.to_thread(window.mark)
    stop.set()
    await watcher
    calls = end["calls"] - start["calls"]
    span = end["t"] - start["t"]
    return {
        "calls": calls, "seconds": span, "calls_per_s": calls / span,
        "cpu_ms_per_call": 1000 * (end["cpu"] - start["cpu"]) / max(calls, 1),
        "server_cpu_ms_per_call": 1000 * (end["server_cpu"] - start["server_cpu"]) / max(calls, 1),
        "cpu_cores": (end["cpu"] - start["cpu"]) / span,
        "server_cpu_cores": (end["server_cpu"] - start["server_cpu"]) / span,
        "in_flight": sum(window.in_flight) / max(len(window.in_flight), 1),
        "loop_lag_ms": 1000 * sum(window.lags) / max(len(window.lags), 1),
        "peak_rss_mb": window.peak_rss, "base_rss_mb": base_rss,
    }


# ------------------------------------------------------------ workers


def build_models(url: str, http_client: str, concurrency: int):
    from dialogforge.config import ModelConfig, ModelsConfig
    from dialogforge.models import ModelSet

    config = ModelsConfig(default=ModelConfig(backend="openai", base_url=url, http_client=http_client, timeout_s=120))
    return ModelSet.from_config(config, connections=concurrency)


async def bare_worker(args: argparse.Namespace) -> dict:
    from dialogforge.config import Role
    from dialogforge.models.call import invoke_chat

    models = build_models(args.url, args.http_client, args.n)
    call = functools.partial(invoke_chat, models[Role.AGENT])  # what a node calls: our client, retries, pool
    if args.bare_client == "stock":  # langchain's own ChatOpenAI on the same HTTP client
        from langchain_openai import ChatOpenAI

        call = ChatOpenAI(base_url=args.url, api_key="x", model="default", max_retries=0, timeout=120,
                          http_async_client=next(iter(models.http_clients.values()))).ainvoke
    cuts, _ = workloads.load_cuts(Path(args.cuts))
    messages, kwargs = workloads.agent_request(_median(cuts))
    await call(messages, **kwargs)  # warm: imports, connection
    base = rss_mb()
    deadline = time.perf_counter() + args.ramp + args.window + 1.0

    async def loop() -> None:
        while time.perf_counter() < deadline:
            await call(messages, **kwargs)

    tasks = [asyncio.create_task(loop()) for _ in range(args.n)]
    result = await measure(args.url, args.server_pid, args.ramp, args.window, base)
    await asyncio.gather(*tasks)
    await models.aclose()
    result["request_messages"] = len(messages)
    return result


def _median(cuts: list) -> object | None:
    """The cut with the median history length (None for the light workload)."""
    return sorted(cuts, key=lambda s: len(s.messages))[len(cuts) // 2] if cuts else None


async def graph_worker(args: argparse.Namespace) -> dict:
    from langgraph.runtime import RunControl

    from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
    from dialogforge.runs.engine import Job, run_jobs
    from dialogforge.runs.planning import graph_input
    from dialogforge.runs.tool_backends import executor_factory, load_domain

    models = build_models(args.url, args.http_client, args.n)
    cuts, extra = workloads.load_cuts(Path(args.cuts))
    states = workloads.expand(args.worker, cuts, args.jobs or 3 * args.n)
    workdir = workloads.scratch_dir()
    db = workdir / "run.db"
    manifest = Manifest(db, create=True)
    manifest.record_planned(PlannedTrajectory(thread_id=f"t{i:05d}", run_id="bench", seed=s.seed, mode=s.mode.value,
                                              domain=s.scenario.domain, config_hash="bench", initial_state="{}",
                                              tool_exec=s.tool_exec.value)
                            for i, s in enumerate(states))
    manifest.close()
    jobs = [Job(f"t{i:05d}", s.mode, graph_input(s), as_node="propose_task" if s.tasks else None)
            for i, s in enumerate(states)]
    domain = load_domain(extra["domain_db"]) if extra.get("domain_db") else None
    executor_for = executor_factory(db, models, domain)
    control = RunControl()
    progress = None
    if args.progress:
        from dialogforge.progress import ProgressTally

        progress = ProgressTally()
    history = workloads.history_lengths(states[: args.n]) if cuts else (0.0, 0)
    del states, cuts
    base = rss_mb()
    run = asyncio.create_task(run_jobs(db, jobs, models, executor_for, concurrency=args.n,
                                       control=control, progress=progress))
    profiler = None
    if args.profile:  # CPU time, not wall time: the box is shared, wall time lies
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    collections = _GcClock()
    result = await measure(args.url, args.server_pid, args.ramp, args.window, base, on_window=collections.start)
    result.update(collections.stop())
    if profiler:
        _write_profile(profiler, args.profile)
    control.request_drain("benchmark window over")
    summary = await run
    await models.aclose()
    shutil.rmtree(workdir, ignore_errors=True)
    result.update(trajectories_done=summary.done, trajectories_failed=summary.failed, failures=summary.failures,
                  history_mean=history[0], history_max=history[1])
    return result


class _GcClock:
    """Time in Python's cyclic garbage collector over the window, and its longest pause: a pause
    holds every dialogue's ready step, so it shows in the loop lag."""

    def __init__(self) -> None:
        self.total = self.longest = 0.0
        self.runs = [0, 0, 0]
        self._began = 0.0
        self._on = False

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        if self._on:
            pause = time.perf_counter() - self._began
            self.total += pause
            self.longest = max(self.longest, pause)
            self.runs[info["generation"]] += 1

    def start(self) -> None:
        import gc

        self._on = True
        gc.callbacks.append(self._callback)

    def stop(self) -> dict:
        import gc

        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        return {"gc_s": self.total, "gc_longest_ms": 1000 * self.longest, "gc_runs": self.runs}


def _write_profile(profiler, path: str) -> None:
    import io
    import pstats

    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(80)
    stats.sort_stats("tottime").print_stats(50)
    Path(path).write_text(text.getvalue())


# ------------------------------------------------------------ orchestration


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialogforge.testing.stub_server", "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"stub server did not start: {line!r}")
    return proc, line.split("listening on", 1)[1].strip()


def run_worker(kind: str, n: int, url: str, server_pid: int, cuts: Path, args: argparse.Namespace) -> dict:
    # The bare loop is steady within seconds; the graph needs its first steps (the warm starts'
    # first checkpoints) behind it.
    graph = kind not in ("bare", "client")
    ramp = args.ramp if graph else min(args.ramp, BARE_RAMP_S)
    command = [sys.executable, __file__, "--worker", kind if graph else "bare", "--n", str(n), "--url", url,
               "--server-pid", str(server_pid), "--ramp", str(ramp), "--window", str(args.window), "--cuts", str(cuts),
               "--http-client", args.http_client, "--bare-client", "dialogforge" if kind == "client" else "stock"]
    if args.progress:
        command.append("--progress")
    if args.profile and graph:
        command += ["--profile", f"{args.profile}.{kind}.{n}.txt"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    spy = _start_py_spy(proc.pid, ramp, args, f"{kind}.{n}") if args.py_spy and graph else None
    try:
        out, err = proc.communicate(timeout=args.ramp + args.window + 600)
    finally:
        if spy is not None:
            spy.wait(timeout=args.window + 60)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker (N={n}) failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _start_py_spy(pid: int, ramp: float, args: argparse.Namespace, label: str) -> subprocess.Popen:
    """py-spy (``pip install py-spy``) over the window, collapsed stacks per thread, for ``spy_summary.py``."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "--pid", str(pid), "--duration", str(int(args.window)), "--rate", "100",
               "--format", "raw", "--threads", "--nonblocking", "--output", f"{args.py_spy}.{label}.txt"]
    delay = f"sleep {ramp + 1.0:.1f}; exec " + " ".join(command)
    return subprocess.Popen(["sh", "-c", delay], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def table(rows: list[dict], latency: float) -> str:
    head = ("N", "workload", "ideal/s", "graph/s", "%ideal", "in flight at server", "graph ms/call", "bare ms/call",
            "our client ms/call", "server ms/call", "worker cores", "loop lag ms", "RSS/dialogue MB",
            "history at start (mean/max msgs)")
    lines = [" | ".join(head), " | ".join("-" * len(h) for h in head)]
    for r in rows:
        ideal = r["n"] / latency
        for name, g in r["graphs"].items():
            per_dialogue = max(0.0, g["peak_rss_mb"] - g["base_rss_mb"]) / r["n"]
            lines.append(" | ".join([
                str(r["n"]), name, f"{ideal:.0f}", f"{g['calls_per_s']:.1f}", f"{100 * g['calls_per_s'] / ideal:.0f}%",
                f"{g['in_flight']:.0f}", f"{g['cpu_ms_per_call']:.2f}", f"{r['bare']['cpu_ms_per_call']:.2f}",
                f"{r['client']['cpu_ms_per_call']:.2f}", f"{g['server_cpu_ms_per_call']:.2f}", f"{g['cpu_cores']:.2f}",
                f"{g.get('loop_lag_ms', 0.0):.1f}", f"{per_dialogue:.2f}", f"{g['history_mean']:.0f}/{g['history_max']}",
            ]))
    return "\n".join(lines)


def prepare_cuts(workload: str, workdir: Path) -> Path:
    """Warm-start states, made once per run of the benchmark (in-process scripted dialogues)."""
    path = workdir / f"cuts-{workload}.json"
    cuts, extra = workloads.warm_cuts(workload, workdir)
    workloads.save_cuts(path, cuts, extra)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help=f"dialogues in flight (repeatable; default {DEFAULT_NS})")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the server holds each call (default 1)")
    parser.add_argument("--workload", action="append", choices=["simulated", "sql", "light"],
                        help=f"graph workloads (repeatable; default {' '.join(DEFAULT_WORKLOADS)})")
    parser.add_argument("--ramp", type=float, default=30.0, help="seconds before the graph's window opens (default 30)")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured (default 20)")
    parser.add_argument("--http-client", choices=["auto", "aiohttp", "httpx"], default="auto")
    parser.add_argument("--progress", action="store_true", help="graph runs with a progress tally attached")
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile (CPU time) of each graph worker to PREFIX.KIND.N.txt")
    parser.add_argument("--py-spy", metavar="PREFIX", help="py-spy collapsed stacks of each graph worker's window to PREFIX.KIND.N.txt")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["bare", "simulated", "sql", "light"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cuts", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-client", choices=["stock", "dialogforge"], default="stock", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.n = args.n[0]
        worker = bare_worker if args.worker == "bare" else graph_worker
        print(json.dumps(asyncio.run(worker(args))))
        return 0
    kinds = args.workload or list(DEFAULT_WORKLOADS)
    workdir = workloads.scratch_dir()
    loads = [os.getloadavg()[0]]
    try:
        cuts = {kind: prepare_cuts(kind, workdir) for kind in kinds}
        server, url = start_server(args.latency)
        rows = []
        try:
            for n in args.n or DEFAULT_NS:
                row: dict = {"n": n, "graphs": {}}
                for kind in ("bare", "client", *kinds):
                    client = kind in ("bare", "client")
                    result = run_worker(kind, n, url, server.pid, cuts[kinds[0] if client else kind], args)
                    (row if client else row["graphs"])[kind] = result
                    loads.append(os.getloadavg()[0])
                    print(f"N={n} {kind}: {result['calls_per_s']:.1f} calls/s, {result['cpu_ms_per_call']:.2f} ms CPU/call, "
                          f"load {loads[-1]:.1f}", file=sys.stderr, flush=True)
                rows.append(row)
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    from dialogforge.models.openai_client import aiohttp_available

    transport = args.http_client if args.http_client != "auto" else "aiohttp" if aiohttp_available() else "httpx"
    print(f"\nlatency {args.latency} s, window {args.window} s after {args.ramp} s ramp, transport {transport}, "
          f"{os.cpu_count()} cores shared by worker and server, load average (1 min) {min(loads):.1f}-{max(loads):.1f}\n")
    print(table(rows, args.latency))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
