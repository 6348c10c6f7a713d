"""A real OpenAI-compatible HTTP server that answers from a LangChain chat model.

Tests and benchmarks must exercise the HTTP path a user's vLLM, llama.cpp or
OpenAI endpoint does (serialisation, retries, timeouts, the client's pool)
without a GPU or the internet. Each request becomes LangChain messages for a
``BaseChatModel`` built per request by ``model_factory``; its AIMessage goes
back in the exact OpenAI shape, with ``reasoning_content`` and usage.
Capability switches emulate servers without ``json_schema`` or tools, or with
llama.cpp's ``json_object`` + ``schema``; ``faults.py`` injects faults. One
asyncio loop (aiohttp) serves all: a held request is a coroutine, not a thread.

In-process: ``with StubServer(lambda req: MyModel()) as srv: srv.base_url``.
As a process: ``python -m dialogforge.testing.stub_server --port 0 --latency 1.0``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from dialogforge.testing.openai_wire import (
    model_kwargs, openai_message, prompt_tokens, stream_events, to_langchain_messages, usage_of,
)
from dialogforge.testing.faults import TRANSPORT_FAULTS, FaultConfig, FaultInjector, FaultKind, Rejected, parse_mix
from dialogforge.testing.faults import check_capabilities, error_response, faulty_message, transport_fault

log = logging.getLogger(__name__)

ModelFactory = Callable[[dict], BaseChatModel]
DEFAULT_FACTORY = "dialogforge.testing.scripted_model:ScriptedChatModel"


@dataclass(frozen=True)
class ServerOptions:
    """What the emulated server supports and how slow it is."""

    latency_s: float = 0.0
    supports_json_schema: bool = True
    supports_tools: bool = True
    # llama.cpp style: {"type": "json_object", "schema": {...}}; off, the field is refused.
    json_object_schema_field: bool = False
    supports_stream: bool = True
    # "reasoning_content" (vLLM, SGLang, DeepSeek) or "reasoning" (OpenRouter).
    reasoning_field: str = "reasoning_content"
    model_names: tuple[str, ...] = ("scripted",)
    # A model's context: a request whose prompt (``openai_wire.prompt_tokens``) is longer is refused
    # with a 400 as vLLM words it, and usage reports that count as the prompt tokens. None: no limit.
    max_context_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.reasoning_field not in ("reasoning_content", "reasoning"):
            raise ValueError(f"reasoning_field must be 'reasoning_content' or 'reasoning', not {self.reasoning_field!r}")


# --- the aiohttp application -------------------------------------------------


class StubApp:
    """The request handlers, holding the model factory, options and fault injector."""

    def __init__(self, model_factory: ModelFactory, options: ServerOptions, injector: FaultInjector,
                 recorded: list[dict] | None = None) -> None:
        self.model_factory = model_factory
        self.options = options
        self.injector = injector
        self.recorded = recorded  # every chat request body, in arrival order, when a list is given
        self._ids = itertools.count(1)

    def build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/control/fail-next", self.control_fail_next)
        app.router.add_delete("/stats", self.reset_stats)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.injector.begin_call()
        outcome = "rejected"
        try:
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise Rejected("the request body must be a JSON object")
                if self.recorded is not None:
                    self.recorded.append(body)
                messages = to_langchain_messages(body.get("messages"))
                check_capabilities(body, self.options)
                counted = self._within_context(body)
            except (Rejected, json.JSONDecodeError) as exc:
                return error_response(400, str(exc), "invalid_request_error")
            fault = self.injector.draw(body)
            outcome = "fault" if fault else "ok"
            if self.options.latency_s:
                await asyncio.sleep(self.options.latency_s)
            stream = bool(body.get("stream"))
            if fault in TRANSPORT_FAULTS:
                return await transport_fault(fault, request, self.injector.config, stream=stream)
            if fault is not None:
                ai = faulty_message(fault, body)
            else:
                ai = await self._invoke(body, messages)
                if isinstance(ai, web.Response):
                    outcome = "model_error"
                    return ai
            return await self._answer(request, body, ai, messages, stream, counted)
        finally:
            self.injector.end_call(outcome)

    def _within_context(self, body: dict) -> int | None:
        """The prompt's token count under a context limit; a longer prompt is Rejected."""
        limit = self.options.max_context_tokens
        if limit is None:
            return None
        counted = prompt_tokens(body)
        if counted > limit:
            raise Rejected(f"This model's maximum context length is {limit} tokens. However, your request has "
                           f"{counted} input tokens. Please reduce the length of the input messages.")
        return counted

    async def _invoke(self, body: dict, messages: list[BaseMessage]) -> AIMessage | web.Response:
        """Ask the model; its failure becomes a 500 naming the error (and is logged), not a hang."""
        try:
            model = self.model_factory(body)
            ai = await model.ainvoke(messages, **model_kwargs(body))
        except Exception as exc:  # surfaced to the client and the log, with its type and text
            log.exception("stub server: the model failed")
            return error_response(500, f"stub model error: {type(exc).__name__}: {exc}", "model_error")
        if not isinstance(ai, AIMessage):
            return error_response(500, f"stub model returned {type(ai).__name__}, not AIMessage", "model_error")
        return ai

    async def _answer(
        self, request: web.Request, body: dict, ai: AIMessage, messages: list[BaseMessage], stream: bool,
        counted: int | None = None,
    ) -> web.StreamResponse:
        message = openai_message(ai, self.options.reasoning_field)
        finish = ai.response_metadata.get("finish_reason") or ("tool_calls" if ai.tool_calls else "stop")
        usage = usage_of(ai, message, messages)
        if counted is not None:  # the server's own count of the prompt, as a real one reports it
            usage = {**usage, "prompt_tokens": counted, "total_tokens": counted + usage["completion_tokens"]}
        head = {"id": f"chatcmpl-stub{next(self._ids)}", "object": "chat.completion.chunk" if stream else "chat.completion",
                "created": int(time.time()), "model": body.get("model") or self.options.model_names[0]}  # fmt: skip
        if not stream:
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            return web.json_response({**head, "choices": [choice], "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(stream_events(head, message, finish, usage if include_usage else None, self.options.reasoning_field))
        await response.write_eof()
        return response

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "dialogforge-stub"} for n in self.options.model_names]
        return web.json_response({"object": "list", "data": data})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.injector.snapshot())

    async def control_fail_next(self, request: web.Request) -> web.Response:
        """``{"kind": "429", "n": 2}``: the process variant's ``fail_next``."""
        body = await request.json()
        try:
            self.injector.fail_next(body["kind"], int(body.get("n", 1)))
        except (KeyError, ValueError) as exc:
            return error_response(400, f"need {{'kind': <fault kind>, 'n': int}}: {exc}", "invalid_request_error")
        return web.json_response(self.injector.snapshot())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.injector.reset_stats()
        return web.json_response(self.injector.snapshot())


async def start_runner(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Serve ``app`` on an already-bound socket (so port 0 gives a known free port)."""
    # handler_cancellation: a client that gives up (timeout fault) frees its handler.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=4096).start()
    return runner


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class StubServer:
    """The stub server on a background thread with its own event loop (for tests).

    ``options`` are ``ServerOptions`` fields: ``latency_s``,
    ``supports_json_schema``, ``supports_tools``, ``json_object_schema_field``,
    ``supports_stream``, ``reasoning_field``, ``model_names``, ``max_context_tokens``. With
    ``record_requests=True``, ``requests`` holds every chat request body as
    received (what a role actually sent, on the wire).
    """

    def __init__(
        self, model_factory: ModelFactory, *, host: str = "127.0.0.1", port: int = 0, faults: FaultConfig | None = None,
        record_requests: bool = False, **options: Any,
    ) -> None:
        self.options = ServerOptions(**options)
        self.faults = FaultInjector(faults)
        self.requests: list[dict] = []
        self._app = StubApp(model_factory, self.options, self.faults, self.requests if record_requests else None)
        self._host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what an OpenAI client takes as ``base_url``."""
        return f"http://{self._host}:{self.port}/v1"

    def stats(self) -> dict:
        return self.faults.snapshot()

    def fail_next(self, kind: FaultKind | str, n: int = 1, when: Callable[[dict], bool] | None = None) -> None:
        self.faults.fail_next(kind, n, when)

    def start(self) -> StubServer:
        sock = bind(self._host, self.port)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stub-openai-server", daemon=True)
        self._thread.start()
        # .result() re-raises here whatever failed while starting.
        try:
            self._runner = asyncio.run_coroutine_threadsafe(start_runner(self._app.build(), sock), self._loop).result(10)
        except BaseException:  # stop the loop thread, then let the caller see why
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- run as a process ---------------------------------------------------------


def load_factory(path: str) -> ModelFactory:
    """``module:attr`` to a per-request factory.

    ``attr`` may be a factory ``(request_json) -> BaseChatModel``, or a
    BaseChatModel subclass: then its ``from_request(request_json)`` classmethod
    if it has one, else its no-argument constructor, per request.
    """
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise SystemExit(f"stub_server: cannot import {module_name!r} ({exc}); pass --model-factory module:attr") from None
    target = getattr(module, attr or "", None)
    if target is None:
        raise SystemExit(f"stub_server: {module_name!r} has no attribute {attr!r}; pass --model-factory module:attr")
    if isinstance(target, type) and issubclass(target, BaseChatModel):
        from_request = getattr(target, "from_request", None)
        return from_request if from_request is not None else (lambda request: target())
    if not callable(target):
        raise SystemExit(f"stub_server: {path} is neither a BaseChatModel subclass nor a factory")
    return target


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dialogforge.testing.stub_server",
        description="OpenAI-compatible stub server answering from a scripted chat model.",
        epilog="example: python -m dialogforge.testing.stub_server --port 0 --latency 1.0 --fault-rate 0.2",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds every chat call is held")
    p.add_argument("--model-factory", default=DEFAULT_FACTORY, help="module:attr of the model class or factory")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability a call gets a fault")
    p.add_argument("--fault-mix", default=None, help="weights, e.g. '429=2,500=1,timeout=1' (default: all kinds, equal)")
    p.add_argument("--fault-seed", type=int, default=0)
    p.add_argument("--timeout-hold", type=float, default=30.0, help="seconds a 'timeout' fault holds the request")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of a '429' fault, seconds")
    p.add_argument("--no-json-schema", action="store_true", help="refuse response_format json_schema (400)")
    p.add_argument("--no-tools", action="store_true", help="refuse requests carrying tools (400)")
    p.add_argument("--no-stream", action="store_true", help="refuse stream=true (400)")
    p.add_argument("--json-object-schema", action="store_true", help="accept llama.cpp's json_object + schema")
    p.add_argument("--reasoning-field", choices=("reasoning_content", "reasoning"), default="reasoning_content")
    p.add_argument("--max-context-tokens", type=int, default=None,
                   help="refuse (400) a request whose prompt is longer, counted at 3 characters a token")
    p.add_argument("--model-name", action="append", help="model id listed by /v1/models (repeatable)")
    return p.parse_args(argv)


async def serve_process(args: argparse.Namespace) -> None:
    try:
        mix = parse_mix(args.fault_mix) if args.fault_mix else None
        faults = FaultConfig(args.fault_rate, seed=args.fault_seed, timeout_hold_s=args.timeout_hold, retry_after_s=args.retry_after, **({"mix": mix} if mix else {}))
    except ValueError as exc:
        raise SystemExit(f"stub_server: {exc}") from None
    options = ServerOptions(
        args.latency, not args.no_json_schema, not args.no_tools, args.json_object_schema,
        not args.no_stream, args.reasoning_field, tuple(args.model_name or ("scripted",)), args.max_context_tokens,
    )  # fmt: skip
    injector = FaultInjector(faults)
    factory = load_factory(args.model_factory)  # fail before binding, with a clear message
    sock = bind(args.host, args.port)
    runner = await start_runner(StubApp(factory, options, injector).build(), sock)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    host, port = sock.getsockname()[:2]
    print(f"stub server listening on http://{host}:{port}/v1", flush=True)
    await stop.wait()
    await runner.cleanup()
    print(json.dumps(injector.snapshot()), flush=True)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_process(parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
