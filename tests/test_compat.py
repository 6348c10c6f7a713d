"""One test per assumption ``dialogforge.compat`` makes about LangGraph's and LangChain's internals.

An upgrade of either library that breaks an assumption fails here, by name,
instead of deep inside a run (the versions CI tests are pinned in pyproject.toml).
"""

from __future__ import annotations

import operator
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
import ormsgpack
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from dialogforge.compat import langgraph as lg
from dialogforge.compat.openai_chat import ReasoningChatOpenAI
from dialogforge.records import Message, Mode, append_messages


def _ext_codes(data: bytes) -> list[tuple[int, Any]]:
    """Every msgpack extension in ``data`` with its decoded payload, outermost first."""
    found: list[tuple[int, Any]] = []

    def hook(code: int, payload: bytes) -> Any:
        inner = ormsgpack.unpackb(payload, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
        found.append((code, inner))
        return None

    ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
    return found


def test_a_pydantic_record_is_stored_as_module_name_kwargs():
    kind, data = JsonPlusSerializer().dumps_typed(Message(role="user", content="hi"))
    assert kind == "msgpack"
    code, payload = _ext_codes(data)[-1]
    assert code == lg.EXT_PYDANTIC_V2
    assert payload[0] == "dialogforge.records" and payload[1] == "Message" and payload[2]["content"] == "hi"


def test_an_enum_is_stored_as_a_single_argument_constructor():
    _, data = JsonPlusSerializer().dumps_typed(Mode.TASK)
    (code, payload), = _ext_codes(data)
    assert code == lg.EXT_CONSTRUCTOR_SINGLE_ARG and payload == ["dialogforge.records", "Mode", "task"]


def test_a_delta_snapshot_round_trips_and_rebuilds_its_channel():
    snapshot = lg.DeltaSnapshot([Message(role="user", content="a")])
    _, data = JsonPlusSerializer().dumps_typed(snapshot)
    assert _ext_codes(data)[-1][0] == lg.EXT_DELTA_SNAPSHOT
    channel = DeltaChannel(append_messages).from_checkpoint(snapshot)
    assert [m.content for m in channel.get()] == ["a"]
    assert snapshot.value == [Message(role="user", content="a")]


def test_the_safe_type_lists_cover_what_checkpoints_may_hold():
    assert ("datetime", "datetime") in lg.SAFE_MSGPACK_TYPES and ("uuid", "UUID") in lg.SAFE_MSGPACK_TYPES
    assert ("datetime", "datetime", "fromisoformat") in lg.SAFE_MSGPACK_METHODS
    assert ("os", "system") not in lg.SAFE_MSGPACK_TYPES


def test_the_stock_hook_revives_safe_types():
    when = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    _, data = JsonPlusSerializer().dumps_typed(when)
    assert ormsgpack.unpackb(data, ext_hook=lg.stock_ext_hook(), option=ormsgpack.OPT_NON_STR_KEYS) == when


def test_a_serializer_decodes_extensions_with_the_given_hook():
    seen: list[int] = []

    def hook(code: int, payload: bytes) -> Any:
        seen.append(code)
        return "ours"

    serde = lg.serializer_with_ext_hook(hook)
    assert serde.loads_typed(JsonPlusSerializer().dumps_typed(Mode.USER)) == "ours"
    assert seen == [lg.EXT_CONSTRUCTOR_SINGLE_ARG]


def test_a_checkpoint_on_top_has_the_checkpoint_shape_and_a_later_id():
    base = empty_checkpoint()
    base["versions_seen"] = {"node": {"x": 1}}
    base["updated_channels"] = ["x"]
    made = lg.checkpoint_on_top(base, step=3, channel_values={"x": 2}, channel_versions={"x": 2})
    assert set(made) == set(Checkpoint.__annotations__)
    assert made["id"] > base["id"] and made["v"] == base["v"]
    assert made["versions_seen"] == base["versions_seen"] and made["versions_seen"] is not base["versions_seen"]
    assert made["updated_channels"] == ["x"]


class _PathRecorder(InMemorySaver):
    def __init__(self) -> None:
        super().__init__()
        self.task_paths: list[str] = []

    def put_writes(self, config, writes, task_id, task_path: str = "") -> None:
        self.task_paths.append(task_path)
        super().put_writes(config, writes, task_id, task_path)


class _Numbers(TypedDict):
    n: Annotated[list[int], operator.add]


def test_a_stored_write_names_its_node_in_the_task_path():
    graph = StateGraph(_Numbers)
    graph.add_node("first", lambda s: {"n": [1]})
    graph.add_node("second", lambda s: {"n": [2]})
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    saver = _PathRecorder()
    graph.compile(checkpointer=saver).invoke({"n": []}, {"configurable": {"thread_id": "t"}})
    assert all(p.startswith("~__pregel_pull, ") for p in saver.task_paths if p), saver.task_paths
    nodes = [lg.node_of_task_path(p) for p in saver.task_paths if p]
    assert [n for n in nodes if n != "__start__"] == ["first", "second"]


def _chat() -> ReasoningChatOpenAI:
    return ReasoningChatOpenAI(model="m", api_key="not-used", base_url="http://127.0.0.1:9/v1", max_retries=0)


def test_chat_openai_payload_hook_lets_bulky_fields_travel_in_extra_body():
    payload = _chat()._get_request_payload([HumanMessage("hi")])
    assert payload["messages"] == []
    assert payload["extra_body"]["messages"] == [{"role": "user", "content": "hi"}]


def test_chat_openai_makes_one_request_dict_per_message_in_order_so_reasoning_goes_back_on_its_turn():
    call = {"id": "c1", "name": "get_order", "args": {"order_id": "A1"}, "type": "tool_call"}
    messages = [SystemMessage("sys"), HumanMessage("hi"),
                AIMessage("", tool_calls=[call], additional_kwargs={"reasoning_content": "look it up"}),
                ToolMessage("{}", tool_call_id="c1"), AIMessage("done")]
    wire = _chat()._get_request_payload(messages)["extra_body"]["messages"]
    assert [m["role"] for m in wire] == ["system", "user", "assistant", "tool", "assistant"]
    assert wire[2]["reasoning_content"] == "look it up" and "reasoning_content" not in wire[4]
    renamed = ReasoningChatOpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1", reasoning_field="reasoning")
    assert renamed._get_request_payload(messages)["extra_body"]["messages"][2]["reasoning"] == "look it up"
    silent = ReasoningChatOpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1", reasoning_field=None)
    assert not any("reasoning" in key for m in silent._get_request_payload(messages)["extra_body"]["messages"] for key in m)


def test_chat_openai_builds_its_result_from_a_plain_dict_and_we_keep_reasoning():
    response = {
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "done", "reasoning_content": "thinking"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    result = _chat()._create_chat_result(response)
    message = result.generations[0].message
    assert message.content == "done" and message.additional_kwargs["reasoning_content"] == "thinking"


def test_chat_openai_private_error_translators_and_responses_switch_exist():
    from dialogforge.compat import openai_chat

    assert callable(openai_chat._handle_openai_api_error) and callable(openai_chat._handle_openai_bad_request)
    assert _chat()._use_responses_api({"model": "m", "messages": []}) is False


def _sent(payload: dict) -> dict:
    """The JSON ChatOpenAI's payload puts on the wire: extra_body merged over the arguments."""
    body = {k: v for k, v in payload.items() if k != "extra_body"}
    return {**body, **payload.get("extra_body", {})}


def test_the_lean_body_is_what_chat_openai_would_send():
    # acomplete builds the body from _default_params, the message converters and ChatOpenAI's
    # renames itself; a langchain-openai that sends something else fails here.
    call = {"id": "c1", "name": "get_order", "args": {"order_id": "A1"}, "type": "tool_call"}
    bad = {"id": "c2", "name": "get_order", "args": "{not json", "error": None, "type": "invalid_tool_call"}
    messages = [SystemMessage("sys"), HumanMessage("hi"),
                AIMessage("", tool_calls=[call], invalid_tool_calls=[bad], additional_kwargs={"reasoning_content": "look"}),
                ToolMessage("{}", tool_call_id="c1", name="get_order"), AIMessage("done")]
    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {"type": "object", "properties": {}}}}]
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    cases = [{}, {"tools": tools, "tool_choice": "auto", "seed": 3}, {"response_format": fmt, "max_tokens": 50, "stop": ["\n"]}]
    for model in (_chat(), ReasoningChatOpenAI(model="o3-mini", api_key="x", base_url="http://127.0.0.1:9/v1"),
                  ReasoningChatOpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1", legacy_max_tokens=True,
                                      temperature=0.3, reasoning_field="reasoning", extra_body={"top_k": 5})):
        for kwargs in cases:
            assert model._chat_body(messages, dict(kwargs)) == _sent(model._get_request_payload(messages, **kwargs))


def test_a_wire_message_is_made_once_per_message_and_never_changed_by_reasoning():
    from dialogforge.compat.openai_chat import wire_message

    turn = AIMessage("ok", additional_kwargs={"reasoning_content": "why"})
    first = _chat()._chat_body([turn], {})
    assert first is not None and first["messages"][0]["reasoning_content"] == "why"
    assert wire_message(turn) is wire_message(turn) and "reasoning_content" not in wire_message(turn)


def _append(old: list, new: list) -> list:
    return [*old, *new]


class _Log(TypedDict):
    log: Annotated[list, DeltaChannel(_append, snapshot_frequency=1)]


def test_delta_snapshot_is_what_langgraph_checkpoints_for_a_delta_channel_and_restores_from():
    """The SQLite saver recognises LangGraph's periodic message snapshots by this class, and
    hands back one it rebuilt as ``lg.DeltaSnapshot(list)``: both must be what LangGraph uses."""
    graph = StateGraph(_Log)
    graph.add_node("say", lambda state: {"log": ["said"]})
    graph.add_edge(START, "say")
    saver = InMemorySaver()
    config = {"configurable": {"thread_id": "t"}}
    final = graph.compile(checkpointer=saver).invoke({"log": ["hi"]}, config)
    stored = saver.get_tuple(config).checkpoint["channel_values"]["log"]
    assert isinstance(stored, lg.DeltaSnapshot) and stored.value == final["log"]
    assert DeltaChannel(_append).from_checkpoint(lg.DeltaSnapshot(["a", "b"])).value == ["a", "b"]


def test_the_sdk_posts_bytes_given_as_content_as_they_are_with_the_json_type():
    # acomplete posts the body as orjson's bytes through post(content=...), with the JSON content type;
    # an SDK that re-encoded or refused them would fail here, against a real HTTP server.
    import asyncio
    import http.server
    import json
    import threading

    seen: list[bytes] = []
    types: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            types.append(self.headers["Content-Type"])
            reply = json.dumps({"id": "r", "object": "chat.completion", "created": 0, "model": "m", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        model = ReasoningChatOpenAI(model="m", api_key="x", base_url=f"http://127.0.0.1:{server.server_port}/v1",
                                    max_retries=0)
        messages = [SystemMessage("sys"), HumanMessage("héllo \u2028 «»")]
        reply = asyncio.run(model.acomplete(messages, seed=3))
        body = model._chat_body(messages, {"seed": 3})
        assert reply.content == "ok" and json.loads(seen[0]) == body
        assert seen[0] == orjson.dumps(body) and types == ["application/json"]  # the very bytes, as JSON
    finally:
        server.shutdown()


def _recording_server(replies: list[tuple[int, dict[str, str], bytes, float]]):
    """A real HTTP server answering POSTs with ``replies`` in turn (status, headers, body, delay);
    what it got (headers, body) in ``server.seen``."""
    import http.server
    import threading
    import time

    seen: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(int(self.headers["Content-Length"]))))
            status, headers, body, delay = replies[min(len(seen), len(replies)) - 1]
            time.sleep(delay)
            try:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.seen = seen
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


_OK = orjson.dumps({"id": "r", "object": "chat.completion", "created": 0, "model": "m", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]})


def _aiohttp_model(url: str, timeout_s: float = 5.0) -> ReasoningChatOpenAI:
    from dialogforge.config import ModelConfig
    from dialogforge.models.openai_client import build_http_client, build_openai_chat

    config = ModelConfig(backend="openai", base_url=url, model="m", timeout_s=timeout_s)
    return build_openai_chat(config, url, build_http_client("aiohttp", 4, timeout_s))


def test_direct_chat_sends_what_the_sdk_sends_on_the_sdk_clients_own_session():
    # openai_direct: after the SDK's first request, a plain aiohttp client's chat completions go
    # straight to its session with the headers and URL the SDK built (its private _build_request,
    # _prepare_options, _platform, _idempotency_key, the transport's client): same body, same headers.
    import asyncio

    from dialogforge.compat import openai_direct

    server = _recording_server([(200, {}, _OK, 0.0)])
    try:
        model = _aiohttp_model(f"http://127.0.0.1:{server.server_port}/v1")
        client = model.root_async_client
        assert openai_direct.plain_client(client)
        messages = [SystemMessage("sys"), HumanMessage("héllo \u2028 «»")]

        async def twice() -> list[str]:
            replies = [(await model.acomplete(messages, seed=3)).content]
            assert openai_direct._routes.get(client) is None and client not in openai_direct._routes  # SDK path
            replies.append((await model.acomplete(messages, seed=3)).content)
            assert openai_direct._routes[client] is not None  # this one went direct
            replies.append((await model.acomplete(messages, seed=3)).content)
            await client.close()
            return replies

        assert asyncio.run(twice()) == ["ok", "ok", "ok"]
        (sdk_headers, sdk_body), (direct_headers, direct_body), (third_headers, _) = server.seen
        assert sdk_body == direct_body == orjson.dumps(model._chat_body(messages, {"seed": 3}))
        assert direct_headers["accept-encoding"] == "gzip, deflate"  # what aiohttp decodes
        volatile = {"idempotency-key", "accept-encoding"}
        assert {k: v for k, v in direct_headers.items() if k not in volatile} == \
            {k: v for k, v in sdk_headers.items() if k not in volatile}
        assert direct_headers["authorization"] == "Bearer not-needed" and "x-stainless-os" in direct_headers
        keys = [h.get("idempotency-key") for h in (sdk_headers, direct_headers, third_headers)]
        assert keys == [None, None, None] or len(set(keys)) == 3  # the SDK's choice, each request its own
    finally:
        server.shutdown()


def test_direct_chat_raises_the_sdk_errors_the_sdk_would_for_the_same_reply():
    # A refused reply, a timeout and a dead server: the SDK's own error classes, messages and
    # responses (its private _make_status_error_from_response), through the direct path and post alike.
    import asyncio

    import openai

    from dialogforge.compat import openai_direct

    too_long = orjson.dumps({"error": {"message": "This model's maximum context length is 8192 tokens",
                                       "type": "invalid_request_error", "code": "context_length_exceeded"}})
    busy = orjson.dumps({"error": {"message": "slow down", "type": "rate_limit"}})
    replies = [(200, {}, _OK, 0.0), (429, {"Retry-After": "7"}, busy, 0.0), (429, {"Retry-After": "7"}, busy, 0.0),
               (400, {}, too_long, 0.0), (400, {}, too_long, 0.0), (503, {}, b"down", 0.0), (503, {}, b"down", 0.0),
               (200, {}, _OK, 1.5), (200, {}, _OK, 1.5)]
    server = _recording_server(replies)
    dead = _recording_server([(200, {}, _OK, 0.0)])
    dead_url = f"http://127.0.0.1:{dead.server_port}/v1"
    dead.shutdown()
    dead.server_close()
    messages = [HumanMessage("hi")]

    async def outcome(model: ReasoningChatOpenAI, direct: bool) -> tuple[type, str, int | None, str | None]:
        client = model.root_async_client
        if not direct:
            openai_direct._routes[client] = None  # this call takes the SDK's post
        try:
            await model.acomplete(messages)
        except openai.APIError as exc:
            response = getattr(exc, "response", None)
            return (type(exc), str(exc), getattr(exc, "status_code", None),
                    response.headers.get("retry-after") if response is not None else None)
        finally:
            openai_direct.forget(client)
        raise AssertionError("no error")

    async def run() -> list[tuple]:
        model = _aiohttp_model(f"http://127.0.0.1:{server.server_port}/v1", timeout_s=0.5)
        await model.acomplete(messages)  # the SDK's first request: the direct path is open from here
        results = []
        for _ in range(4):  # 429, 400 (context overflow), 503, a timeout: SDK first, then direct
            results.append((await outcome(model, direct=False), await outcome(model, direct=True)))
        gone = _aiohttp_model(dead_url)
        with_sdk = await outcome(gone, direct=False)
        gone.root_async_client._platform = model.root_async_client._platform
        results.append((with_sdk, await outcome(gone, direct=True)))
        await model.root_async_client.close()
        await gone.root_async_client.close()
        return results

    try:
        results = asyncio.run(run())
    finally:
        server.shutdown()
    kinds = [sdk[0] for sdk, _ in results]
    expected = [openai.RateLimitError, openai.BadRequestError, openai.InternalServerError, openai.APITimeoutError,
                openai.APIConnectionError]  # LangChain's translators may raise subclasses of these
    assert all(issubclass(kind, base) for kind, base in zip(kinds, expected, strict=True)), kinds
    for sdk, direct in results:
        assert direct == sdk
    assert results[0][1][2:] == (429, "7") and "maximum context length" in results[1][1][1]


class _Count(TypedDict):
    n: int


class _Route(TypedDict):
    n: int


def test_a_router_with_both_functions_runs_under_the_sync_api_and_on_the_loop_under_the_async_one():
    # compat.langgraph.router: LangGraph's RunnableCallable(func, afunc, trace=False) as a branch path
    # (schema inferred from func's annotations); sync invoke calls func, ainvoke awaits afunc with no
    # thread-pool hop (sync `validate`, `export` and the viewer read graphs synchronously).
    import asyncio
    from tests.support.executors import CountingExecutor

    calls: list[str] = []

    def route(state: _Route) -> str:
        calls.append("sync")
        return "end" if state["n"] > 1 else "again"

    async def aroute(state: _Route) -> str:
        calls.append("async")
        return "end" if state["n"] > 1 else "again"

    graph = StateGraph(_Count)
    graph.add_node("step", lambda state: {"n": state["n"] + 1})
    graph.add_edge(START, "step")
    graph.add_conditional_edges("step", lg.router(route, aroute), {"again": "step", "end": "__end__"})
    compiled = graph.compile()
    assert compiled.builder.branches["step"]["route"].input_schema is _Route
    assert compiled.invoke({"n": 0})["n"] == 2 and calls == ["sync", "sync"]

    counting = CountingExecutor()

    async def run() -> dict:
        asyncio.get_running_loop().set_default_executor(counting)
        return await compiled.ainvoke({"n": 0})

    calls.clear()
    graph_async = StateGraph(_Count)

    async def astep(state: _Count) -> dict:
        return {"n": state["n"] + 1}

    graph_async.add_node("step", astep)
    graph_async.add_edge(START, "step")
    graph_async.add_conditional_edges("step", lg.router(route, aroute), {"again": "step", "end": "__end__"})
    compiled = graph_async.compile()
    assert asyncio.run(run())["n"] == 2 and calls == ["async", "async"] and counting.submitted == 0


def test_wire_messages_go_only_where_a_chat_body_is_posted():
    """``models.call`` hands records over as wire dicts only when ``sends_chat_body`` says the lean
    path applies; a stream takes LangChain's path, which needs LangChain messages."""
    model = _chat()
    assert model.sends_chat_body({"seed": 1}) and not model.sends_chat_body({"stream": True})
    body = model._chat_body([{"role": "user", "content": "hi"}, HumanMessage("there")], {})
    assert body is not None and body["messages"] == [{"role": "user", "content": "hi"}, {"role": "user", "content": "there"}]
