"""Throughput of one dialogforge process against a fixed-latency OpenAI-compatible server.

    python benchmarks/throughput.py                       # N = 64 128 256 512, 1 s latency
    python benchmarks/throughput.py --n 128 --latency 0.5 --window 20 --http-client httpx

The stub server (``dialogforge.testing.stub_server``, the scripted model
behind real HTTP) runs in its own process and holds every call for
``--latency`` seconds. For each N, three fresh worker processes are measured
over the same steady-state window (after a ramp):

- ``bare``: N coroutines looping stock ``ChatOpenAI.ainvoke`` on a
  mid-dialogue agent request (tools bound) -- the HTTP client alone;
- ``client``: the same loop on our ``ReasoningChatOpenAI`` (request fields
  sent verbatim, JSON parsed directly), to show where the CPU goes;
- ``graph``: ``dialogforge.runs.engine.run_jobs`` with ``concurrency=N`` over enough
  trajectories to stay full, ``openai`` backend, SQLite checkpointing and
  the manifest: everything a real run does.

Reported: LLM calls/s (counted at the server) against the ideal N / latency;
CPU per call of the worker process (all threads, so the checkpoint writer
too) and of the stub server; the graph's overhead per call over the bare
client; and peak RSS growth per in-flight dialogue. A worker is its own
process so its memory and CPU are its own. Not a test: figures depend on
the machine (this one has 2 cores shared by worker and server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_NS = (64, 128, 256, 512)
BARE_RAMP_S = 5.0


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


def server_calls(url: str) -> int:
    import httpx

    return httpx.get(url.rstrip("/").removesuffix("/v1") + "/stats", timeout=10).json()["calls"]


class Window:
    """Samples the worker and the server at the start and end of the steady-state window."""

    def __init__(self, url: str, server_pid: int) -> None:
        self.url, self.server_pid = url, server_pid
        self.peak_rss = rss_mb()

    def mark(self) -> dict:
        return {"t": time.perf_counter(), "cpu": cpu_s(), "server_cpu": cpu_s(self.server_pid),
                "calls": server_calls(self.url)}

    async def watch_rss(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_mb())
            await asyncio.sleep(0.25)


async def measure(url: str, server_pid: int, ramp_s: float, window_s: float, base_rss: float) -> dict:
    window = Window(url, server_pid)
    stop = asyncio.Event()
    watcher = asyncio.create_task(window.watch_rss(stop))
    await asyncio.sleep(ramp_s)
    start = await asyncio.to_thread(window.mark)
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
        "peak_rss_mb": window.peak_rss, "base_rss_mb": base_rss,
    }


# ------------------------------------------------------------ workers


def agent_request() -> tuple[list, dict]:
    """A mid-dialogue agent call (system prompt, eight turns, four tools): what most graph calls look like."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    from dialogforge.nodes.prompting import render

    tools = [{"type": "function", "function": {
        "name": f"{verb}_order", "description": f"{verb.title()} an order of the online store.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
                       "required": ["order_id"]}}} for verb in ("get", "update", "cancel", "search")]
    messages = [
        SystemMessage(render("run_agent", domain="customer support for an online store", reference_time="2026-03-04T10:15:00Z", language="")),
        HumanMessage("Hi, I ordered a lamp last week and it still has not shipped. Order A1234."),
        AIMessage("", tool_calls=[{"id": "call_1", "name": "get_order", "args": {"order_id": "A1234"}, "type": "tool_call"}]),
        ToolMessage(json.dumps({"order_id": "A1234", "status": "processing", "items": ["desk lamp"], "eta": "2026-03-09"}), tool_call_id="call_1"),
        AIMessage("Your order A1234 (a desk lamp) is still processing; it should ship by March 9."),
        HumanMessage("Can you add a note asking for gift wrapping, and tell me if that delays it?"),
        AIMessage("", tool_calls=[{"id": "call_2", "name": "update_order", "args": {"order_id": "A1234", "note": "gift wrap"}, "type": "tool_call"}]),
        ToolMessage(json.dumps({"order_id": "A1234", "updated": True}), tool_call_id="call_2"),
    ]
    return messages, {"tools": tools, "seed": 7}


def build_models(url: str, http_client: str, concurrency: int):
    from dialogforge.config import ModelConfig, ModelsConfig
    from dialogforge.models import ModelSet

    config = ModelsConfig(default=ModelConfig(backend="openai", base_url=url, http_client=http_client, timeout_s=60))
    return ModelSet.from_config(config, connections=concurrency)


async def bare_worker(args: argparse.Namespace) -> dict:
    from dialogforge.config import Role

    models = build_models(args.url, args.http_client, args.n)
    chat = models[Role.AGENT].chat
    if args.bare_client == "stock":  # langchain's own ChatOpenAI on the same HTTP client
        from langchain_openai import ChatOpenAI

        chat = ChatOpenAI(base_url=args.url, api_key="x", model="default", max_retries=0, timeout=60,
                          http_async_client=next(iter(models.http_clients.values())))
    messages, kwargs = agent_request()
    await chat.ainvoke(messages, **kwargs)  # warm: imports, connection
    base = rss_mb()
    deadline = time.perf_counter() + args.ramp + args.window + 1.0

    async def loop() -> None:
        while time.perf_counter() < deadline:
            await chat.ainvoke(messages, **kwargs)

    tasks = [asyncio.create_task(loop()) for _ in range(args.n)]
    result = await measure(args.url, args.server_pid, args.ramp, args.window, base)
    await asyncio.gather(*tasks)
    await models.aclose()
    return result


async def graph_worker(args: argparse.Namespace) -> dict:
    from langgraph.runtime import RunControl

    from dialogforge.checkpoints.manifest import Manifest, PlannedTrajectory
    from dialogforge.config import GenerationSettings, Role
    from dialogforge.runs.engine import Job, run_jobs
    from dialogforge.runs.planning import graph_input, initial_state
    from dialogforge.executors.simulated import SimulatedToolExecutor

    models = build_models(args.url, args.http_client, args.n)
    settings = GenerationSettings(n=args.jobs or 3 * args.n, seed=1, concurrency=args.n)
    db = Path(tempfile.mkdtemp(prefix="df-bench-")) / "run.db"
    states = [initial_state(settings, i, []) for i in range(settings.n)]
    manifest = Manifest(db, create=True)
    manifest.record_planned(PlannedTrajectory(thread_id=f"t{i:05d}", run_id="bench", seed=s.seed, mode=s.mode.value,
                                              domain=s.scenario.domain, config_hash="bench", initial_state="{}")
                            for i, s in enumerate(states))
    manifest.close()
    jobs = [Job(f"t{i:05d}", s.mode, graph_input(s)) for i, s in enumerate(states)]
    executor = SimulatedToolExecutor(models[Role.TOOL_SIMULATOR])
    control = RunControl()
    progress = None
    if args.progress:
        from dialogforge.progress import ProgressTally

        progress = ProgressTally()
    base = rss_mb()
    run = asyncio.create_task(run_jobs(db, jobs, models, lambda _t: executor, concurrency=args.n,
                                       control=control, progress=progress))
    profiler = None
    if args.profile:  # CPU time, not wall time: the box is shared, wall time lies
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    result = await measure(args.url, args.server_pid, args.ramp, args.window, base)
    if profiler:
        import io
        import pstats

        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(80)
        stats.sort_stats("tottime").print_stats(50)
        Path(args.profile).write_text(text.getvalue())
    control.request_drain("benchmark window over")
    summary = await run
    await models.aclose()
    result["trajectories_done"] = summary.done
    result["trajectories_failed"] = summary.failed
    result["failures"] = summary.failures
    return result


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


def run_worker(kind: str, n: int, url: str, server_pid: int, args: argparse.Namespace) -> dict:
    # The bare loop is steady within seconds; the graph needs about one dialogue's lifetime for
    # trajectories to finish and start at a steady rate (setup-heavy first steps included).
    ramp = min(args.ramp, BARE_RAMP_S) if kind != "graph" else args.ramp
    command = [sys.executable, __file__, "--worker", "graph" if kind == "graph" else "bare", "--n", str(n), "--url", url,
               "--server-pid", str(server_pid), "--ramp", str(ramp), "--window", str(args.window),
               "--http-client", args.http_client, "--bare-client", "dialogforge" if kind == "client" else "stock"]
    if args.progress:
        command.append("--progress")
    if args.profile and kind == "graph":
        command += ["--profile", f"{args.profile}.{n}.txt"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=args.ramp + args.window + 300)
    if out.returncode != 0:
        raise SystemExit(f"{kind} worker (N={n}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict], latency: float) -> str:
    head = ("N", "ideal/s", "bare/s", "graph/s", "graph %ideal", "bare ms/call", "our client ms/call", "graph ms/call",
            "overhead ms/call", "server ms/call", "worker cores", "RSS/dialogue MB")
    lines = [" | ".join(head), " | ".join("-" * len(h) for h in head)]
    for r in rows:
        b, g = r["bare"], r["graph"]
        ideal = r["n"] / latency
        overhead = g["cpu_ms_per_call"] - b["cpu_ms_per_call"]
        per_dialogue = max(0.0, g["peak_rss_mb"] - g["base_rss_mb"]) / r["n"]
        lines.append(" | ".join([
            str(r["n"]), f"{ideal:.0f}", f"{b['calls_per_s']:.1f}", f"{g['calls_per_s']:.1f}",
            f"{100 * g['calls_per_s'] / ideal:.0f}%", f"{b['cpu_ms_per_call']:.2f}", f"{r['client']['cpu_ms_per_call']:.2f}",
            f"{g['cpu_ms_per_call']:.2f}", f"{overhead:.2f}", f"{g['server_cpu_ms_per_call']:.2f}",
            f"{g['cpu_cores']:.2f}", f"{per_dialogue:.2f}",
        ]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help=f"dialogues in flight (repeatable; default {DEFAULT_NS})")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the server holds each call (default 1)")
    parser.add_argument("--ramp", type=float, default=30.0, help="seconds before the graph's window opens (default 30)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured (default 15)")
    parser.add_argument("--http-client", choices=["auto", "aiohttp", "httpx"], default="auto")
    parser.add_argument("--progress", action="store_true", help="graph runs with a progress tally attached")
    parser.add_argument("--profile", metavar="PREFIX", help="write a cProfile (CPU time) of each graph worker to PREFIX.N.txt")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    # worker mode (internal)
    parser.add_argument("--worker", choices=["bare", "graph"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare-client", choices=["stock", "dialogforge"], default="stock", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.n = args.n[0]
        worker = bare_worker if args.worker == "bare" else graph_worker
        print(json.dumps(asyncio.run(worker(args))))
        return 0
    server, url = start_server(args.latency)
    rows = []
    try:
        for n in args.n or DEFAULT_NS:
            row = {"n": n}
            for kind in ("bare", "client", "graph"):
                row[kind] = run_worker(kind, n, url, server.pid, args)
                print(f"N={n} {kind}: {row[kind]['calls_per_s']:.1f} calls/s, {row[kind]['cpu_ms_per_call']:.2f} ms CPU/call",
                      file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        server.terminate()
        server.wait(timeout=10)
    transport = args.http_client
    if transport == "auto":
        from dialogforge.models.openai_client import aiohttp_available

        transport = "aiohttp" if aiohttp_available() else "httpx"
    load = os.getloadavg()[0]
    print(f"\nlatency {args.latency} s, window {args.window} s after {args.ramp} s ramp, transport {transport}, "
          f"{os.cpu_count()} cores shared by worker and server, load average {load:.1f} at the end\n")
    print(table(rows, args.latency))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
