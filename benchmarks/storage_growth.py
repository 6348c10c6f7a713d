"""Checkpoint storage against dialogue length: bytes per trajectory, and time per step.

Drives the real dialogue graph with the scripted model through one long
trajectory per length (the user never runs out of tasks; the turn cap ends
it), each in a fresh database, and prints for every length:

* ``db bytes``: the database file (one trajectory, WAL folded in);
* ``export bytes``: the trajectory's exported JSON (messages and tools);
* ``ratio``: db bytes / export bytes (the target is at most 3, at every length);
* ``ms/step``: time inside the checkpointer (put + put_writes) per graph
  step, the median over the whole run and over its last tenth (flat =
  linear storage; medians, because an awaited async put also counts the
  time other tasks held the event loop).

    python benchmarks/storage_growth.py                       # 50 200 800 turns, our saver
    python benchmarks/storage_growth.py --turns 50 200 --stock   # also LangGraph's stock SqliteSaver
    python benchmarks/storage_growth.py --branches 10 --turns 200   # and 10 in-place branches of it
    python benchmarks/storage_growth.py --json

``--branches K`` then branches each trajectory in place K times, as a
LangGraph user does (``update_state`` on a past user turn with a new seed,
then ``invoke``), from user turns spread over its second half, and prints
what the branches added: their new checkpoints, their bytes, bytes per new
checkpoint against the first line's (about 1 = a branch costs its own new
steps), the branches' bytes against K copies of the first line (what a
branch into a new thread would cost at least), and ms/step on the branches.

The stock saver re-stores every channel at every step (quadratic); past a
few hundred turns it takes minutes and gigabytes, so ``--stock`` is opt-in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiosqlite  # noqa: E402
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402

from dialogforge.checkpoints.sqlite import LinearSqliteSaver  # noqa: E402
from dialogforge.checkpoints.serde import strict_serializer  # noqa: E402
from dialogforge.channels import DELTA_CHANNELS  # noqa: E402
from dialogforge.checkpoints.sqlite_file import connect  # noqa: E402
from dialogforge.config import ModelConfig, ModelsConfig, Role  # noqa: E402
from dialogforge.models import ModelSet  # noqa: E402
from dialogforge.graphs.builder import compile_graph  # noqa: E402
from dialogforge.graphs.context import GraphContext  # noqa: E402
from dialogforge.runs.engine import RECURSION_LIMIT  # noqa: E402
from dialogforge.runs.planning import graph_input  # noqa: E402
from dialogforge.graphs.state import DialogueState  # noqa: E402
from dialogforge.records import Limits, Mode, Scenario  # noqa: E402
from dialogforge.executors.simulated import SimulatedToolExecutor  # noqa: E402


@dataclass
class Measurement:
    saver: str
    turns: int
    messages: int
    checkpoints: int
    db_bytes: int
    export_bytes: int
    ratio: float
    ms_per_step: float
    ms_per_step_last_tenth: float
    seconds: float


@dataclass
class BranchMeasurement:
    turns: int
    branches: int
    new_checkpoints: int
    branch_bytes: int  # what the database grew by
    bytes_per_new_checkpoint: float
    line_bytes_per_checkpoint: float  # the first line's, for comparison
    step_cost_ratio: float  # bytes per new checkpoint / the first line's
    copy_ratio: float  # branch bytes / (branches x the first line's bytes)
    ms_per_step: float  # in the checkpointer, on the branches


class _Timer:
    """Time spent in the checkpointer, per step (one put per step)."""

    def __init__(self) -> None:
        self.spans: list[float] = []
        self.pending = 0.0

    def writes(self, seconds: float) -> None:
        self.pending += seconds

    def checkpoint(self, seconds: float) -> None:
        self.spans.append(self.pending + seconds)
        self.pending = 0.0


class TimedLinearSaver(LinearSqliteSaver):
    timer: _Timer

    def put(self, *args: Any, **kwargs: Any):
        started = time.perf_counter()
        try:
            return super().put(*args, **kwargs)
        finally:
            self.timer.checkpoint(time.perf_counter() - started)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            super().put_writes(*args, **kwargs)
        finally:
            self.timer.writes(time.perf_counter() - started)


class TimedStockSaver(AsyncSqliteSaver):
    timer: _Timer

    async def aput(self, *args: Any, **kwargs: Any):
        started = time.perf_counter()
        try:
            return await super().aput(*args, **kwargs)
        finally:
            self.timer.checkpoint(time.perf_counter() - started)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await super().aput_writes(*args, **kwargs)
        finally:
            self.timer.writes(time.perf_counter() - started)


def long_dialogue(turns: int, seed: int = 3) -> DialogueState:
    """A user with more goals than turns: the trajectory ends at exactly ``turns`` user turns."""
    return DialogueState(
        seed=seed,
        scenario=Scenario(domain="customer support for an online store", target_tasks=100_000),
        limits=Limits(max_user_turns=turns, max_tasks=100_000, max_tool_steps=8),
    )


def export_bytes(state: DialogueState) -> int:
    exported = {
        "messages": [m.model_dump(mode="json") for m in state.messages],
        "tools": [t.openai_tool() for t in state.tools],
    }
    return len(json.dumps(exported, ensure_ascii=False).encode())


def measure(turns: int, directory: Path, *, stock: bool = False, seed: int = 3) -> Measurement:
    db = directory / f"{'stock' if stock else 'linear'}-{turns}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    state, timer = asyncio.run(_run(db, long_dialogue(turns, seed), stock))
    seconds = time.perf_counter() - started
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        table = "checkpoints" if stock else "cp_checkpoints"
        checkpoints = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()
    size, exported = db.stat().st_size, export_bytes(state)
    spans = timer.spans
    tail = spans[-max(1, len(spans) // 10):]
    return Measurement(
        saver="stock" if stock else "linear", turns=turns, messages=len(state.messages), checkpoints=checkpoints,
        db_bytes=size, export_bytes=exported, ratio=round(size / exported, 2),
        ms_per_step=round(1000 * statistics.median(spans), 3), ms_per_step_last_tenth=round(1000 * statistics.median(tail), 3),
        seconds=round(seconds, 1),
    )


def measure_branches(turns: int, branches: int, directory: Path, *, seed: int = 3) -> tuple[Measurement, BranchMeasurement]:
    """One trajectory of ``turns`` turns, then ``branches`` in-place branches of it."""
    line = measure(turns, directory, seed=seed)
    db = directory / f"linear-{turns}.db"
    timer = asyncio.run(_branch(db, branches))
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        checkpoints = conn.execute("SELECT count(*) FROM cp_checkpoints").fetchone()[0]
    finally:
        conn.close()
    grown, new = db.stat().st_size - line.db_bytes, checkpoints - line.checkpoints
    per_line = line.db_bytes / line.checkpoints
    return line, BranchMeasurement(
        turns=turns, branches=branches, new_checkpoints=new, branch_bytes=grown,
        bytes_per_new_checkpoint=round(grown / new, 1), line_bytes_per_checkpoint=round(per_line, 1),
        step_cost_ratio=round(grown / new / per_line, 2), copy_ratio=round(grown / (branches * line.db_bytes), 3),
        ms_per_step=round(1000 * statistics.median(timer.spans), 3),
    )


async def _branch(db: Path, branches: int) -> _Timer:
    models = ModelSet.from_config(ModelsConfig(default=ModelConfig(backend="scripted")))
    context = GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))
    timer = _Timer()
    conn = connect(db)
    try:
        saver = TimedLinearSaver(conn, serde=strict_serializer(), delta_channels=DELTA_CHANNELS)
        saver.timer = _Timer()
        saver.setup()
        graph = compile_graph(Mode.USER, saver)
        # User turns, found from the raw checkpoints (a pending trigger of simulate_user), not from
        # get_state_history, which rebuilds every state's whole message list.
        turns = [t.config for t in saver.list({"configurable": {"thread_id": "t", "checkpoint_ns": ""}})
                 if "branch:to:simulate_user" in t.checkpoint["channel_values"]]
        turns.reverse()
        half = turns[len(turns) // 2:]
        for k in range(branches):
            config = await graph.aupdate_state(half[(k * len(half)) // branches], {"seed": 1000 + k})
            saver.timer = timer
            await graph.ainvoke(None, {**config, "recursion_limit": RECURSION_LIMIT}, context=context)
            saver.timer = _Timer()
    finally:
        conn.close()
    await models.aclose()
    return timer


async def _run(db: Path, start: DialogueState, stock: bool) -> tuple[DialogueState, _Timer]:
    models = ModelSet.from_config(ModelsConfig(default=ModelConfig(backend="scripted")))
    context = GraphContext(models=models, executor=SimulatedToolExecutor(models[Role.TOOL_SIMULATOR]))
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": RECURSION_LIMIT}
    timer = _Timer()
    if stock:
        async with aiosqlite.connect(str(db)) as conn:
            saver = TimedStockSaver(conn, serde=strict_serializer())
            saver.timer = timer
            await saver.setup()
            values = await compile_graph(Mode.USER, saver).ainvoke(graph_input(start), config, context=context)
    else:
        conn = connect(db)
        try:
            saver = TimedLinearSaver(conn, serde=strict_serializer(), delta_channels=DELTA_CHANNELS)
            saver.timer = timer
            saver.setup()
            values = await compile_graph(Mode.USER, saver).ainvoke(graph_input(start), config, context=context)
        finally:
            conn.close()
    await models.aclose()
    return DialogueState.model_validate(values), timer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--stock", action="store_true", help="also measure LangGraph's stock SqliteSaver")
    parser.add_argument("--branches", type=int, default=0, metavar="K", help="then branch each trajectory in place K times")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", metavar="DIR", help="keep the databases in DIR")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(args.keep) if args.keep else Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        branched = []
        for turns in args.turns:
            for stock in ([False, True] if args.stock else [False]):
                if args.branches and not stock:
                    line, branches = measure_branches(turns, args.branches, directory)
                    results.append(line)
                    branched.append(branches)
                else:
                    results.append(measure(turns, directory, stock=stock))
                if not args.json:
                    _row(results[-1], header=len(results) == 1)
    if args.json:
        print(json.dumps([asdict(r) for r in results + branched], indent=1))
    elif branched:
        print(f"\n{'turns':>6}{'branches':>9}{'new ckpts':>10}{'bytes':>12}{'B/new ckpt':>11}{'B/line ckpt':>12}"
              f"{'ratio':>7}{'vs copies':>10}{'ms/step':>9}")
        for b in branched:
            print(f"{b.turns:>6}{b.branches:>9}{b.new_checkpoints:>10}{b.branch_bytes:>12,}{b.bytes_per_new_checkpoint:>11.0f}"
                  f"{b.line_bytes_per_checkpoint:>12.0f}{b.step_cost_ratio:>7.2f}{b.copy_ratio:>10.3f}{b.ms_per_step:>9.3f}")
    return 0


def _row(m: Measurement, *, header: bool) -> None:
    if header:
        print(f"{'saver':<7}{'turns':>6}{'msgs':>7}{'ckpts':>7}{'db bytes':>13}{'export bytes':>14}{'ratio':>8}"
              f"{'ms/step':>9}{'last 10%':>10}{'run s':>8}")
    print(f"{m.saver:<7}{m.turns:>6}{m.messages:>7}{m.checkpoints:>7}{m.db_bytes:>13,}{m.export_bytes:>14,}{m.ratio:>8.2f}"
          f"{m.ms_per_step:>9.3f}{m.ms_per_step_last_tenth:>10.3f}{m.seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
