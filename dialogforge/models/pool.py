"""Several servers behind one role: least-busy choice, per-server limits, back-off.

A fleet of inference servers (say eight vLLM replicas) serves one model.
Each request goes to the server with the fewest requests in flight; a
server may cap its requests in flight and the rate at which new ones start;
a server that fails several times in a row is set aside for a cool-down
(circuit breaker: closed -> open -> one probe -> closed or open again), so
retries land on the healthy ones instead of hammering a dead one.

A server is one ``Endpoint`` shared by every role that points at it, so its
limits hold across roles; each role holds its own client per server
(``PoolMember``), since model names and sampling differ per role. All of it
runs on one event loop and needs no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from langchain_core.language_models import BaseChatModel

from dialogforge.config import EndpointConfig

# Consecutive failures that open an endpoint's circuit.
FAILURE_THRESHOLD = 3
# Cool-down of the first opening; doubled on each re-opening, capped.
BASE_COOLDOWN_S = 2.0
MAX_COOLDOWN_S = 60.0

# Waiter queues are pruned of finished waiters past this length.
_PRUNE_AT = 4096

Clock = Callable[[], float]


@dataclass
class Endpoint:
    """One server and what we know of it right now."""

    url: str
    max_in_flight: int | None = None
    requests_per_second: float | None = None
    clock: Clock = time.monotonic
    in_flight: int = 0
    calls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    trips: int = 0  # openings since the last success
    open_until: float = 0.0
    probing: bool = False  # a half-open endpoint lets one request through
    next_start: float = 0.0  # rate limit: earliest start of the next request
    # Requests waiting for capacity here (a waiter may sit in several queues;
    # the first endpoint to free up wakes it, the others skip it as done).
    waiters: deque = field(default_factory=deque, repr=False)

    @classmethod
    def from_config(cls, config: EndpointConfig, clock: Clock = time.monotonic) -> Endpoint:
        return cls(config.url, config.max_in_flight, config.requests_per_second, clock)

    @property
    def is_open(self) -> bool:
        return self.trips > 0 and self.clock() < self.open_until

    def ready_in(self, now: float) -> float | None:
        """0 when a request may start now, seconds to wait for a time-based limit, None when only a release helps."""
        if self.trips > 0:
            if now < self.open_until:
                return self.open_until - now
            if self.probing:
                return None
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            return None
        return max(0.0, self.next_start - now)

    def start(self, now: float) -> None:
        self.in_flight += 1
        self.calls += 1
        if self.trips > 0:
            self.probing = True
        if self.requests_per_second:
            self.next_start = max(self.next_start, now) + 1.0 / self.requests_per_second

    def finish(self, *, failed: bool) -> None:
        self.in_flight -= 1
        was_probe, self.probing = self.probing, False
        if not failed:
            self.consecutive_failures = 0
            self.trips = 0
            return
        self.failures += 1
        self.consecutive_failures += 1
        if was_probe or self.consecutive_failures >= FAILURE_THRESHOLD:
            self.trips += 1
            self.open_until = self.clock() + min(MAX_COOLDOWN_S, BASE_COOLDOWN_S * 2 ** (self.trips - 1))
            self.consecutive_failures = 0

    def wake_one(self) -> None:
        waiters = self.waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return

    def snapshot(self) -> dict[str, Any]:
        return {"url": self.url, "in_flight": self.in_flight, "calls": self.calls,
                "failures": self.failures, "open": self.is_open}


class Endpoints:
    """The process's endpoints by URL, so roles sharing a server share its limits.

    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._by_url: dict[str, Endpoint] = {}

    def get(self, config: EndpointConfig) -> Endpoint:
        endpoint = self._by_url.get(config.url)
        if endpoint is None:
            endpoint = self._by_url[config.url] = Endpoint.from_config(config, self.clock)
        else:  # the tightest limits any role asked for win
            endpoint.max_in_flight = _tightest(endpoint.max_in_flight, config.max_in_flight)
            endpoint.requests_per_second = _tightest(endpoint.requests_per_second, config.requests_per_second)
        return endpoint

    def all(self) -> list[Endpoint]:
        return list(self._by_url.values())



def _tightest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


@dataclass
class PoolMember:
    endpoint: Endpoint
    chat: BaseChatModel


@dataclass
class EndpointPool:
    """One role's servers. ``acquire`` picks one (waiting while all are busy), ``release`` reports the outcome."""

    members: list[PoolMember]
    endpoints: Endpoints = field(default_factory=Endpoints)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("an endpoint pool needs at least one member")
        # One server: never set it aside (the retry back-off in models.call is
        # all the patience there is), and skip the bookkeeping fast.
        self._single = len(self.members) == 1
        if self._single:
            endpoint = self.members[0].endpoint
            self._unlimited = endpoint.max_in_flight is None and endpoint.requests_per_second is None
        else:
            self._unlimited = False

    async def acquire(self, avoid: Iterable[Endpoint] = ()) -> PoolMember:
        if self._unlimited:
            member = self.members[0]
            member.endpoint.in_flight += 1
            member.endpoint.calls += 1
            return member
        avoided = set(map(id, avoid))
        while True:
            now = self.endpoints.clock()
            member, wait = self._choose(now, avoided)
            if member is not None:
                member.endpoint.start(now)
                return member
            await self._wait(wait)

    def release(self, member: PoolMember, *, failed: bool) -> None:
        if self._single:
            member.endpoint.in_flight -= 1
            if failed:
                member.endpoint.failures += 1
        else:
            member.endpoint.finish(failed=failed)
        if not self._unlimited:
            member.endpoint.wake_one()

    async def _wait(self, timeout: float | None) -> None:
        """Until one of this pool's endpoints frees a slot (releases wake one waiter, first come first served) or ``timeout``."""
        future = asyncio.get_running_loop().create_future()
        for member in self.members:
            queue = member.endpoint.waiters
            if len(queue) > _PRUNE_AT:
                member.endpoint.waiters = queue = deque(f for f in queue if not f.done())
            queue.append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            if not future.done():
                future.cancel()

    def _choose(self, now: float, avoided: set[int]) -> tuple[PoolMember | None, float | None]:
        """The least busy ready member, preferring ones not tried yet; else how long to wait."""
        best: PoolMember | None = None
        best_key: tuple = ()
        wait: float | None = None
        for member in self.members:
            endpoint = member.endpoint
            if self._single:
                delay = _single_ready_in(endpoint, now)
            else:
                delay = endpoint.ready_in(now)
            if delay is None:
                continue
            if delay > 0:
                wait = delay if wait is None else min(wait, delay)
                continue
            key = (id(endpoint) in avoided, endpoint.in_flight, endpoint.calls)
            if best is None or key < best_key:
                best, best_key = member, key
        return best, wait


def _single_ready_in(endpoint: Endpoint, now: float) -> float | None:
    if endpoint.max_in_flight is not None and endpoint.in_flight >= endpoint.max_in_flight:
        return None
    return max(0.0, endpoint.next_start - now)
