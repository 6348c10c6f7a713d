"""Live progress of a generation run: a rich display, plain log lines, or nothing.

The engine reports four events (``ProgressSink``): a trajectory started, a
node finished (with the state update it wrote), a trajectory finished, and a
note to show the user. ``ProgressTally`` turns them into counters with O(1)
work per event -- new user and tool-call messages are counted from the
update itself, tokens and LLM calls from the change in the trajectory's
usage counters -- so progress costs nothing measurable at hundreds of calls
per second. Displays read the tally on their own clock: ``RichProgress``
redraws a few times a second on a terminal, ``PlainProgress`` prints one
summary line every ``interval_s`` (for logs and non-TTY output).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TextIO

Outcome = Literal["done", "failed", "interrupted"]
ProgressMode = Literal["auto", "rich", "plain", "none"]

# Rates (calls/s, tokens/s) are measured over this trailing window.
RATE_WINDOW_S = 10.0


class ProgressSink(Protocol):
    def run_started(self, total: int) -> None: ...
    def trajectory_started(self, thread_id: str, *, resumed: bool) -> None: ...
    def step(self, thread_id: str, node: str, update: Any) -> None: ...
    def trajectory_finished(self, thread_id: str, outcome: Outcome) -> None: ...
    def note(self, text: str) -> None: ...
    def run_finished(self) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    """What a display shows at one moment."""

    elapsed_s: float
    total: int
    done: int
    failed: int
    interrupted: int
    in_flight: int
    user_turns: int
    tool_calls: int
    llm_calls: int
    tokens: int
    calls_per_s: float
    tokens_per_s: float
    eta_s: float | None

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def queued(self) -> int:
        return max(0, self.total - self.finished - self.interrupted - self.in_flight)


class ProgressTally:
    """Counts events; a base for the displays, usable alone (tests, scripts)."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.started_at = clock()
        self.total = 0
        self.done = self.failed = self.interrupted = self.in_flight = 0
        self.user_turns = self.tool_calls = self.llm_calls = self.tokens = 0
        # Per running trajectory: (llm calls, tokens) as of its last update; None
        # until the first update of a resumed one (its earlier usage is not ours).
        self._seen: dict[str, tuple[int, int] | None] = {}
        self._samples: deque[tuple[float, int, int]] = deque()

    # -- events
    def run_started(self, total: int) -> None:
        self.total += total
        self.started_at = self.clock()

    def trajectory_started(self, thread_id: str, *, resumed: bool) -> None:
        self.in_flight += 1
        self._seen[thread_id] = None if resumed else (0, 0)

    def step(self, thread_id: str, node: str, update: Any) -> None:
        if not isinstance(update, dict):
            return
        for message in update.get("messages") or ():
            if message.role == "user":
                self.user_turns += 1
            elif message.role == "assistant":
                self.tool_calls += len(message.tool_calls)
        counters = update.get("counters")
        if counters is None:
            return
        calls = tokens = 0
        for usage in counters.usage.values():
            calls += usage.calls
            tokens += usage.prompt + usage.completion
        before = self._seen.get(thread_id)
        if before is not None:
            self.llm_calls += calls - before[0]
            self.tokens += tokens - before[1]
        self._seen[thread_id] = (calls, tokens)

    def trajectory_finished(self, thread_id: str, outcome: Outcome) -> None:
        self.in_flight -= 1
        self._seen.pop(thread_id, None)
        if outcome == "done":
            self.done += 1
        elif outcome == "failed":
            self.failed += 1
        else:
            self.interrupted += 1

    def note(self, text: str) -> None:
        pass

    def run_finished(self) -> None:
        pass

    # -- reading
    def snapshot(self) -> Snapshot:
        now = self.clock()
        samples = self._samples
        samples.append((now, self.llm_calls, self.tokens))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        t0, calls0, tokens0 = samples[0]
        span = now - t0
        calls_per_s = (self.llm_calls - calls0) / span if span > 0 else 0.0
        tokens_per_s = (self.tokens - tokens0) / span if span > 0 else 0.0
        elapsed = now - self.started_at
        finished = self.done + self.failed
        remaining = self.total - finished - self.interrupted
        eta = elapsed / finished * remaining if finished and elapsed > 0 else None
        return Snapshot(elapsed, self.total, self.done, self.failed, self.interrupted, self.in_flight,
                        self.user_turns, self.tool_calls, self.llm_calls, self.tokens,
                        calls_per_s, tokens_per_s, eta)


def clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "--:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def count_text(n: float) -> str:
    """1234 -> 1.2k, 3_400_000 -> 3.4M: compact, for rates and token totals."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}" if isinstance(n, int) or n >= 10 or n == 0 else f"{n:.1f}"


def summary_line(s: Snapshot) -> str:
    """The plain display's line; stable ``key value`` pairs so logs can be parsed."""
    return (
        f"[{clock_text(s.elapsed_s)}] done {s.done}/{s.total} failed {s.failed} in_flight {s.in_flight} "
        f"queued {s.queued} interrupted {s.interrupted} | user_turns {s.user_turns} tool_calls {s.tool_calls} "
        f"llm_calls {s.llm_calls} tokens {s.tokens} | calls/s {s.calls_per_s:.1f} tokens/s {s.tokens_per_s:.0f} "
        f"| eta {clock_text(s.eta_s)}"
    )


class PlainProgress(ProgressTally):
    """One summary line every ``interval_s`` on ``stream`` (stderr), and a last one at the end."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = 10.0, clock=time.monotonic) -> None:
        super().__init__(clock)
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self._task: asyncio.Task | None = None

    def run_started(self, total: int) -> None:
        super().run_started(total)
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._print(summary_line(self.snapshot()))

    def note(self, text: str) -> None:
        self._print(text)

    def run_finished(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._print(summary_line(self.snapshot()))

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class RichProgress(ProgressTally):
    """A live panel on a terminal, redrawn ``refresh_per_second`` times by rich's own thread."""

    def __init__(self, console: Any = None, refresh_per_second: float = 2.0, clock=time.monotonic) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__(clock)
        self.console = console or Console(stderr=True)
        self._live = Live(console=self.console, get_renderable=self.renderable,
                          refresh_per_second=refresh_per_second, transient=False, redirect_stdout=False,
                          redirect_stderr=False)

    def renderable(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        s = self.snapshot()
        head = Table.grid(padding=(0, 2))
        head.add_row(ProgressBar(total=max(s.total, 1), completed=s.finished, width=40),
                     f"{s.finished}/{s.total} {100 * s.finished / max(s.total, 1):.0f}%",
                     f"ETA {clock_text(s.eta_s)}", f"elapsed {clock_text(s.elapsed_s)}")
        rows = Table.grid(padding=(0, 2))
        rows.add_column(style="bold")
        rows.add_column()
        rows.add_row("trajectories", f"done {s.done}  failed {s.failed}  in flight {s.in_flight}  queued {s.queued}"
                     + (f"  interrupted {s.interrupted}" if s.interrupted else ""))
        rows.add_row("dialogue", f"user turns {s.user_turns}  tool calls {s.tool_calls}")
        rows.add_row("models", f"LLM calls {s.llm_calls} ({s.calls_per_s:.1f}/s)  "
                     f"tokens {count_text(s.tokens)} ({count_text(s.tokens_per_s)}/s)")
        return Group(head, rows)

    def run_started(self, total: int) -> None:
        super().run_started(total)
        self._live.start()

    def note(self, text: str) -> None:
        self.console.print(text)

    def run_finished(self) -> None:
        self._live.stop()  # draws the final state once more


def make_progress(mode: ProgressMode, stream: TextIO | None = None, *, interval_s: float = 10.0) -> ProgressSink | None:
    """``auto``: rich on a terminal, plain lines otherwise; ``none``: no display."""
    stream = stream or sys.stderr
    if mode == "none":
        return None
    if mode == "auto":
        mode = "rich" if stream.isatty() else "plain"
    if mode == "rich":
        from rich.console import Console

        return RichProgress(Console(file=stream))
    return PlainProgress(stream, interval_s)
