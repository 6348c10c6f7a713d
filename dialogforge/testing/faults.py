"""How the stub server misbehaves: capability refusals and injected faults.

Everything that makes the stub deviate from a perfect server lives here:
``check_capabilities`` refuses (400) what an emulated server lacks, and a
``FaultInjector`` decides each call's fault and counts what happened.

The stub server asks the injector once per well-formed chat call which fault,
if any, to inject. Two sources decide:

* a FIFO of forced faults (``fail_next(kind, n)``), for unit tests that need
  "the next two calls answer 429" exactly; ``fail_next(kind, n, when=...)``
  takes a predicate over the request body, so a full-graph test can aim a
  fault at one role's call (e.g. the agent's: the request offering tools);
* otherwise a seeded RNG: with probability ``rate`` a fault is drawn from
  ``mix`` (weights by kind), for soak runs and benchmarks.

The draw order is deterministic for a given seed, but under concurrency which
request gets which draw depends on arrival order: the *counts* are
reproducible, the victims are not.

The state is shared between the server's event-loop thread and the test's
thread (``fail_next`` from a test, ``snapshot`` from a test), so it is guarded
by a plain lock; every critical section is a few dictionary operations.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Callable
from typing import Any

from aiohttp import web
from langchain_core.messages import AIMessage


class FaultKind(str, Enum):
    """What a faulted call looks like to the client."""

    TIMEOUT = "timeout"  # held past the client's timeout, then a 504
    RATE_LIMIT = "429"  # 429 with Retry-After
    SERVER_ERROR = "500"
    UNAVAILABLE = "503"
    CONNECTION_RESET = "connection_reset"  # TCP RST, no response at all
    TRUNCATED_BODY = "truncated_body"  # Content-Length larger than what is sent
    MALFORMED_JSON = "malformed_json"  # 200, body is not JSON
    SCHEMA_INVALID = "schema_invalid"  # 200, content "{}" (tool-call arguments "{}")
    EMPTY = "empty"  # 200, empty content, no tool calls
    UNKNOWN_TOOL = "unknown_tool"  # 200, a tool call naming a tool not offered


# A predicate over a chat request's JSON body (aims a forced fault at some calls).
RequestMatch = Callable[[dict], bool]


class Rejected(Exception):
    """A request this server (as configured) refuses with 400, like a real one would."""


def check_capabilities(body: dict, options: Any) -> None:
    """Refuse, as the emulated server would, what it does not support."""
    if body.get("stream") and not options.supports_stream:
        raise Rejected("stream not supported by this server; send stream=false")
    if body.get("tools") and not options.supports_tools:
        raise Rejected("tools are not supported by this server")
    fmt = body.get("response_format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        if not options.supports_json_schema:
            raise Rejected("response_format type 'json_schema' is not supported; use 'json_object' or 'text'")
        if not isinstance(fmt.get("json_schema"), dict) or "schema" not in fmt["json_schema"]:
            raise Rejected("response_format.json_schema.schema is required")
    elif kind == "json_object":
        if "schema" in fmt and not options.json_object_schema_field:
            raise Rejected("response_format: additional property 'schema' is not allowed for 'json_object'")
    elif kind != "text":
        raise Rejected(f"response_format type must be 'text', 'json_object' or 'json_schema', got {kind!r}")


def parse_mix(text: str) -> dict[FaultKind, float]:
    """Parse ``"429=2,500=1,timeout=0.5"`` (or a bare ``"429,500"``) into weights.

    Raises ValueError naming the bad entry, so a CLI flag error is one line.
    """
    mix: dict[FaultKind, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition("=")
        try:
            kind = FaultKind(name.strip())
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"unknown fault kind {name!r}; known: {known}") from None
        mix[kind] = float(weight) if weight else 1.0
    if not mix or sum(mix.values()) <= 0:
        raise ValueError(f"fault mix {text!r} has no positive weight")
    return mix


@dataclass
class FaultConfig:
    """How often and which faults to inject, and the knobs of the slow ones."""

    rate: float = 0.0
    # Weight per kind; default: every kind equally likely.
    mix: dict[FaultKind, float] = field(default_factory=lambda: dict.fromkeys(FaultKind, 1.0))
    seed: int = 0
    # A "timeout" fault holds the request this long; set it above the client timeout.
    timeout_hold_s: float = 30.0
    retry_after_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within [0, 1], got {self.rate}")
        self.mix = {FaultKind(k): float(w) for k, w in self.mix.items()}
        if self.rate > 0 and sum(self.mix.values()) <= 0:
            raise ValueError("fault rate > 0 needs a fault mix with a positive weight")


class FaultInjector:
    """Decides the fault of each call and counts calls, faults and concurrency."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._forced: list[tuple[FaultKind, RequestMatch | None]] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reset_stats()

    def fail_next(self, kind: FaultKind | str, n: int = 1, when: RequestMatch | None = None) -> None:
        """Force the next ``n`` chat calls (those whose body ``when`` accepts, if given)
        to fail with ``kind``, before any random draw."""
        with self._lock:
            self._forced.extend([(FaultKind(kind), when)] * n)

    def set_rate(self, rate: float, mix: dict[FaultKind, float] | None = None) -> None:
        """Change the random fault rate (and mix) of a running server."""
        with self._lock:
            self.config = FaultConfig(
                rate=rate,
                mix=mix or self.config.mix,
                seed=self.config.seed,
                timeout_hold_s=self.config.timeout_hold_s,
                retry_after_s=self.config.retry_after_s,
            )

    def begin_call(self) -> None:
        """Count a call entering the server (every call, even one rejected with 400)."""
        with self._lock:
            self._calls += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def draw(self, body: dict | None = None) -> FaultKind | None:
        """The fault of a well-formed call (None: answer normally).

        Called only once the request has passed validation, so a request
        rejected with 400 neither consumes a forced fault nor an RNG draw.
        """
        with self._lock:
            forced = next((i for i, (_, when) in enumerate(self._forced) if when is None or when(body or {})), None)
            if forced is not None:
                kind: FaultKind | None = self._forced.pop(forced)[0]
            elif self.config.rate > 0 and self._rng.random() < self.config.rate:
                kinds = list(self.config.mix)
                kind = self._rng.choices(kinds, weights=[self.config.mix[k] for k in kinds])[0]
            else:
                kind = None
            if kind is not None:
                self._faults[kind] += 1
            return kind

    def end_call(self, outcome: str) -> None:
        """Count a call leaving the server; ``outcome`` is ``ok``, ``fault``, ``rejected``
        (a 400 for a malformed or unsupported request) or ``model_error``."""
        with self._lock:
            self._in_flight -= 1
            self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1

    def reset_stats(self) -> None:
        """Zero the counters; calls in flight stay counted so the gauge stays right."""
        with self._lock:
            self._calls = 0
            self._max_in_flight = self._in_flight
            self._faults = dict.fromkeys(FaultKind, 0)
            self._outcomes: dict[str, int] = {}

    def snapshot(self) -> dict:
        """A JSON-ready copy of the counters (what ``GET /stats`` returns)."""
        with self._lock:
            return {
                "calls": self._calls,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "ok": self._outcomes.get("ok", 0),
                "rejected": self._outcomes.get("rejected", 0),
                "model_errors": self._outcomes.get("model_error", 0),
                "faults": {k.value: n for k, n in self._faults.items()},
                "faults_total": sum(self._faults.values()),
                "forced_pending": len(self._forced),
                "fault_rate": self.config.rate,
            }


# Faults decided at the HTTP level: the model is never called for them.
TRANSPORT_FAULTS = frozenset(
    {
        FaultKind.TIMEOUT,
        FaultKind.RATE_LIMIT,
        FaultKind.SERVER_ERROR,
        FaultKind.UNAVAILABLE,
        FaultKind.CONNECTION_RESET,
        FaultKind.TRUNCATED_BODY,
        FaultKind.MALFORMED_JSON,
    }
)


def error_response(status: int, message: str, kind: str, headers: dict | None = None) -> web.Response:
    """An error in OpenAI's shape, which the openai SDK turns into its typed errors."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return web.json_response(body, status=status, headers=headers)


async def transport_fault(
    kind: FaultKind, request: web.Request, config: FaultConfig, *, stream: bool
) -> web.StreamResponse:
    """Answer a call with an HTTP-level fault.

    For the three faults that break the connection the bytes are written to
    (or the socket is closed under) aiohttp's transport directly; the empty
    response returned afterwards then fails to write, which aiohttp treats as
    a client disconnect and drops silently.
    """
    if kind is FaultKind.TIMEOUT:
        # Sleeps in the event loop; aiohttp cancels it if the client hangs up.
        await asyncio.sleep(config.timeout_hold_s)
        return error_response(504, "injected timeout: held past the client's patience", "timeout")
    if kind is FaultKind.RATE_LIMIT:
        s = config.retry_after_s
        headers = {"Retry-After": f"{s:g}", "retry-after-ms": str(round(s * 1000))}
        return error_response(429, "injected rate limit: retry later", "rate_limit_error", headers)
    if kind is FaultKind.SERVER_ERROR:
        return error_response(500, "injected internal server error", "server_error")
    if kind is FaultKind.UNAVAILABLE:
        return error_response(503, "injected: service unavailable", "service_unavailable")
    transport = request.transport
    if transport is None:  # the client is already gone; nothing to break
        return web.Response()
    if kind is FaultKind.CONNECTION_RESET:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    elif kind is FaultKind.TRUNCATED_BODY:
        ctype = "text/event-stream" if stream else "application/json"
        body = b'{"id":"chatcmpl-truncated","object":"chat.completion","choices":[{"index":0,'
        if stream:
            body = b"data: " + body
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body) + 512}\r\n\r\n"
        transport.write(head.encode() + body)
        transport.close()  # flushes what was written, then FIN: a short body
    elif kind is FaultKind.MALFORMED_JSON:
        garbage = '{"id": "chatcmpl-malformed", "choices": [{"message": <html>oops'
        if stream:
            return web.Response(text=f"data: {garbage}\n\ndata: [DONE]\n\n", content_type="text/event-stream")
        return web.Response(text=garbage, content_type="application/json")
    return web.Response()


def faulty_message(kind: FaultKind, body: dict) -> AIMessage:
    """The model reply of a message-level fault (schema_invalid, empty, unknown_tool).

    Built without calling the model, so a scripted model's script is not
    consumed by a reply the client will reject and retry.
    """
    tools = [t.get("function", {}).get("name") for t in body.get("tools") or []]
    if kind is FaultKind.EMPTY:
        return AIMessage(content="")
    if kind is FaultKind.SCHEMA_INVALID:
        if not tools:
            return AIMessage(content="{}")
        choice = body.get("tool_choice")
        forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        call = {"name": forced or tools[0], "args": {}, "id": "call_schema_invalid"}
        return AIMessage(content="", tool_calls=[call])
    if kind is FaultKind.UNKNOWN_TOOL:
        name = "get_unknown_thing"
        while name in tools:
            name += "_x"
        call = {"name": name, "args": {"id": "1"}, "id": "call_unknown_tool"}
        return AIMessage(content="", tool_calls=[call])
    raise ValueError(f"{kind.value} is not a message-level fault")
