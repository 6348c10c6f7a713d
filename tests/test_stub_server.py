"""The stub OpenAI-compatible server, driven by real clients over real HTTP.

The openai SDK and ChatOpenAI check the protocol shape (they parse what a
user's endpoint would send); a raw httpx client checks each injected fault's
HTTP-level symptom, which the SDKs would otherwise hide behind retries.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from dialogforge.testing.faults import FaultConfig, FaultKind, parse_mix
from dialogforge.testing.stub_server import StubServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
USAGE = {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18, "output_token_details": {"reasoning": 3}}


class EchoModel(BaseChatModel):
    """Calls the first offered tool, answers JSON to a response_format, else echoes.

    ``seen`` collects ``(messages, kwargs)`` of every call so tests can check
    what the server handed the model.
    """

    seen: Any = None

    @property
    def _llm_type(self) -> str:
        return "echo"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if self.seen is not None:
            self.seen.append((messages, kwargs))
        last = messages[-1]
        if kwargs.get("tools") and not isinstance(last, ToolMessage):
            name = kwargs["tools"][0]["function"]["name"]
            call = {"name": name, "args": {"city": "Paris"}, "id": "call_abc"}
            reply = AIMessage(content="", tool_calls=[call], additional_kwargs={"reasoning_content": "I need the weather."})
        elif kwargs.get("response_format"):
            reply = AIMessage(content=json.dumps({"answer": "42"}))
        elif isinstance(last, ToolMessage):
            reply = AIMessage(content=f"The tool said {last.content} (for {last.tool_call_id}).")
        else:
            reply = AIMessage(
                content=f"echo: {last.content}",
                additional_kwargs={"reasoning_content": "thinking about it"},
                usage_metadata=USAGE,
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])


class Answer(BaseModel):
    answer: str


def echo_factory(seen: list | None = None):
    return lambda request: EchoModel(seen=seen)


@pytest.fixture
def server():
    with StubServer(echo_factory()) as srv:
        yield srv


def sdk(srv: StubServer, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=kwargs.pop("max_retries", 0), **kwargs)


def chat_openai(srv: StubServer, **kwargs) -> ChatOpenAI:
    return ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="scripted", max_retries=0, **kwargs)


def raw_post(srv: StubServer, body: dict | None = None, timeout: float = 5.0) -> httpx.Response:
    body = body or {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{srv.base_url}/chat/completions", json=body, timeout=timeout)


# --- protocol shape -------------------------------------------------------------


def test_plain_reply_with_usage_from_the_model(server):
    completion = sdk(server).chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hello"}])
    choice = completion.choices[0]
    assert choice.message.content == "echo: hello"
    assert choice.finish_reason == "stop"
    assert completion.object == "chat.completion" and completion.model == "scripted"
    assert completion.usage.prompt_tokens == 11 and completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == 18
    assert completion.usage.completion_tokens_details.reasoning_tokens == 3


def test_models_endpoint(server):
    assert [m.id for m in sdk(server).models.list()] == ["scripted"]


def test_request_fields_reach_the_model_as_kwargs():
    seen: list = []
    with StubServer(echo_factory(seen)) as srv:
        sdk(srv).chat.completions.create(
            model="scripted",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            seed=7,
            temperature=0.3,
            max_tokens=64,
        )
    messages, kwargs = seen[0]
    assert [m.type for m in messages] == ["system", "human"]
    assert kwargs == {"tools": [WEATHER_TOOL], "tool_choice": "auto", "seed": 7, "temperature": 0.3, "max_tokens": 64}


async def test_tool_call_round_trip_through_chat_openai():
    seen: list = []
    with StubServer(echo_factory(seen)) as srv:
        model = chat_openai(srv).bind_tools([WEATHER_TOOL])
        question = HumanMessage("What is the weather in Paris?")
        first = await model.ainvoke([question])
        assert first.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_abc", "type": "tool_call"}]
        result = ToolMessage('{"temp_c": 21}', tool_call_id="call_abc")
        second = await model.ainvoke([question, first, result])
    assert second.content == 'The tool said {"temp_c": 21} (for call_abc).'
    echoed = seen[1][0]  # the server rebuilt the assistant tool call and the tool result
    assert echoed[1].tool_calls[0]["args"] == {"city": "Paris"} and echoed[2].tool_call_id == "call_abc"


def test_tool_call_shape_in_the_raw_response(server):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL]}
    data = raw_post(server, body).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call == {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert choice["message"]["content"] is None
    assert choice["message"]["reasoning_content"] == "I need the weather."
    assert data["usage"]["completion_tokens"] > 0  # estimated: this reply has no usage_metadata


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_in_the_raw_response(field):
    with StubServer(echo_factory(), reasoning_field=field) as srv:
        raw = sdk(srv).chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "x"}])
    message = json.loads(raw.text)["choices"][0]["message"]
    assert message[field] == "thinking about it"
    assert {"reasoning_content", "reasoning"} - {field} - set(message) == {"reasoning_content", "reasoning"} - {field}


async def test_structured_output_json_schema_and_refusal():
    with StubServer(echo_factory()) as srv:
        parsed = await chat_openai(srv).with_structured_output(Answer, method="json_schema").ainvoke("q")
        assert parsed == Answer(answer="42")
    with StubServer(echo_factory(), supports_json_schema=False) as srv:
        with pytest.raises(openai.BadRequestError, match="json_schema"):
            await chat_openai(srv).with_structured_output(Answer, method="json_schema").ainvoke("q")
        parsed = await chat_openai(srv).with_structured_output(Answer, method="json_mode").ainvoke("answer in JSON")
        assert parsed == Answer(answer="42")
        assert srv.stats()["rejected"] == 1 and srv.stats()["ok"] == 1


def test_json_object_schema_field_is_llama_cpp_only():
    fmt = {"type": "json_object", "schema": Answer.model_json_schema()}
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": fmt}
    with StubServer(echo_factory()) as srv:
        assert raw_post(srv, body).status_code == 400
    with StubServer(echo_factory(), json_object_schema_field=True) as srv:
        reply = raw_post(srv, body)
    assert reply.status_code == 200 and json.loads(reply.json()["choices"][0]["message"]["content"]) == {"answer": "42"}


def test_tools_refused_when_switched_off():
    with StubServer(echo_factory(), supports_tools=False) as srv:
        with pytest.raises(openai.BadRequestError, match="tools are not supported"):
            sdk(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], tools=[WEATHER_TOOL])


def test_malformed_requests_get_400(server):
    assert raw_post(server, {"model": "m", "messages": []}).status_code == 400
    bad_role = {"model": "m", "messages": [{"role": "wizard", "content": "x"}]}
    assert "unsupported role" in raw_post(server, bad_role).json()["error"]["message"]
    tool_without_id = {"model": "m", "messages": [{"role": "tool", "content": "x"}]}
    assert raw_post(server, tool_without_id).status_code == 400


async def test_streaming_with_usage_through_chat_openai(server):
    model = chat_openai(server, streaming=True, stream_usage=True)
    chunks = [c async for c in model.astream("hello there")]
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.content == "echo: hello there"
    assert total.usage_metadata["input_tokens"] == 11 and total.usage_metadata["output_tokens"] == 7
    called = await model.bind_tools([WEATHER_TOOL]).ainvoke("weather?")
    assert called.tool_calls[0]["args"] == {"city": "Paris"}


def test_stream_refused_when_switched_off():
    with StubServer(echo_factory(), supports_stream=False) as srv:
        with pytest.raises(openai.BadRequestError, match="stream not supported"):
            sdk(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)


def test_model_failure_is_a_500_naming_it(caplog):
    class Broken(EchoModel):
        def _generate(self, *args, **kwargs):
            raise RuntimeError("script exhausted")

    with StubServer(lambda request: Broken()) as srv:
        reply = raw_post(srv)
        assert reply.status_code == 500 and "RuntimeError: script exhausted" in reply.json()["error"]["message"]
        assert srv.stats()["model_errors"] == 1


# --- faults ---------------------------------------------------------------------


def test_timeout_fault_holds_past_the_client_timeout():
    with StubServer(echo_factory(), faults=FaultConfig(timeout_hold_s=5.0)) as srv:
        srv.fail_next(FaultKind.TIMEOUT)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            raw_post(srv, timeout=0.3)
        assert time.monotonic() - started < 1.0
        deadline = time.monotonic() + 2  # the abandoned handler is cancelled, not left to sleep
        while srv.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.stats()["in_flight"] == 0
        assert raw_post(srv).status_code == 200  # only the next call was faulted


@pytest.mark.parametrize("kind,status", [("429", 429), ("500", 500), ("503", 503)])
def test_error_status_faults(server, kind, status):
    server.fail_next(kind)
    reply = raw_post(server)
    assert reply.status_code == status and reply.json()["error"]["message"].startswith("injected")
    if status == 429:
        assert reply.headers["Retry-After"] == "1"


def test_sdk_honours_retry_after_and_recovers():
    with StubServer(echo_factory(), faults=FaultConfig(retry_after_s=0.2)) as srv:
        srv.fail_next("429", 2)
        started = time.monotonic()
        completion = sdk(srv, max_retries=2).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert completion.choices[0].message.content == "echo: x"
        assert time.monotonic() - started >= 0.4
        assert srv.stats()["calls"] == 3 and srv.stats()["faults"]["429"] == 2


def test_connection_reset_fault(server):
    server.fail_next(FaultKind.CONNECTION_RESET)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        raw_post(server)


def test_truncated_body_fault(server):
    server.fail_next(FaultKind.TRUNCATED_BODY)
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message body"):
        raw_post(server)


def test_malformed_json_fault(server):
    server.fail_next(FaultKind.MALFORMED_JSON)
    reply = raw_post(server)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_message_level_faults(server):
    schema_body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "Answer", "schema": Answer.model_json_schema()}},
    }
    server.fail_next(FaultKind.SCHEMA_INVALID)
    message = raw_post(server, schema_body).json()["choices"][0]["message"]
    assert json.loads(message["content"]) == {}  # valid JSON, missing the required "answer"

    forced = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    server.fail_next(FaultKind.SCHEMA_INVALID)
    call = raw_post(server, forced).json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": "{}"}

    server.fail_next(FaultKind.EMPTY)
    choice = raw_post(server, forced).json()["choices"][0]
    assert choice["message"]["content"] == "" and "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"

    server.fail_next(FaultKind.UNKNOWN_TOOL)
    choice = raw_post(server, forced).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] not in {"get_weather"}
    assert server.stats()["faults"] | {} == {**dict.fromkeys([k.value for k in FaultKind], 0), "schema_invalid": 2, "empty": 1, "unknown_tool": 1}


def test_faults_also_break_streams(server):
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    server.fail_next(FaultKind.TRUNCATED_BODY)
    with pytest.raises(httpx.RemoteProtocolError):
        raw_post(server, body)
    server.fail_next(FaultKind.EMPTY)
    with sdk(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True) as stream:
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == ""


SDK_SYMPTOMS = {
    FaultKind.TIMEOUT: openai.APITimeoutError,
    FaultKind.RATE_LIMIT: openai.RateLimitError,
    FaultKind.SERVER_ERROR: openai.InternalServerError,
    FaultKind.UNAVAILABLE: openai.InternalServerError,
    FaultKind.CONNECTION_RESET: openai.APIConnectionError,
    FaultKind.TRUNCATED_BODY: openai.APIConnectionError,
    FaultKind.MALFORMED_JSON: json.JSONDecodeError,  # a ValueError: LangGraph's default retry skips it
}


@pytest.mark.parametrize("kind", list(FaultKind), ids=lambda k: k.value)
def test_every_fault_reaches_the_openai_sdk_fast(kind):
    """What a dialogforge client sees for each fault: a typed error or an odd 200, never a hang."""
    with StubServer(echo_factory(), faults=FaultConfig(timeout_hold_s=5.0)) as srv:
        client = sdk(srv, timeout=0.5)
        srv.fail_next(kind)
        started = time.monotonic()
        create = lambda: client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], tools=[WEATHER_TOOL])
        if kind in SDK_SYMPTOMS:
            with pytest.raises(SDK_SYMPTOMS[kind]):
                create()
        else:
            message = create().choices[0].message
            names = [c.function.name for c in message.tool_calls or []]
            args = [c.function.arguments for c in message.tool_calls or []]
            assert (names, args, message.content) != (["get_weather"], ['{"city": "Paris"}'], None)
        assert time.monotonic() - started < 1.5


def test_random_faults_follow_rate_mix_and_seed():
    def run() -> dict:
        config = FaultConfig(rate=0.5, mix=parse_mix("429=1,500=1,empty=2"), seed=3)
        with StubServer(echo_factory(), faults=config) as srv, httpx.Client(timeout=5) as client:
            for _ in range(80):
                client.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
            return srv.stats()

    first, second = run(), run()
    assert first == second  # same seed, same sequence of faults
    faults = first["faults"]
    assert 25 <= first["faults_total"] <= 55 and set(k for k, n in faults.items() if n) == {"429", "500", "empty"}
    assert faults["empty"] > faults["429"] and first["ok"] + first["faults_total"] == first["calls"] == 80


def test_stats_over_http_and_the_fail_next_control(server):
    assert httpx.post(f"http://127.0.0.1:{server.port}/control/fail-next", json={"kind": "503", "n": 2}).status_code == 200
    assert [raw_post(server).status_code for _ in range(3)] == [503, 503, 200]
    stats = httpx.get(f"http://127.0.0.1:{server.port}/stats").json()
    assert stats == server.stats()
    assert stats["calls"] == 3 and stats["ok"] == 1 and stats["faults"]["503"] == 2 and stats["in_flight"] == 0
    assert httpx.post(f"http://127.0.0.1:{server.port}/control/fail-next", json={"kind": "nope"}).status_code == 400
    server.faults.reset_stats()
    assert server.stats()["calls"] == 0


def test_bad_fault_config_is_refused():
    with pytest.raises(ValueError, match="unknown fault kind 'nope'"):
        parse_mix("429,nope=2")
    with pytest.raises(ValueError, match="rate"):
        FaultConfig(rate=1.5)


# --- concurrency and the process variant ------------------------------------------


async def test_300_concurrent_requests_share_one_event_loop():
    """0.5 s each, all at once: serial handling takes 150 s, a 64-thread pool 2.5 s.

    Measured about 1.1-1.4 s here: client and server share one process (and
    GIL), so most of the excess is the two sides' CPU, not waiting.
    """
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    with StubServer(echo_factory(), latency_s=0.5) as srv:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> int:
                async with session.post(f"{srv.base_url}/chat/completions", json=body) as reply:
                    await reply.json()
                    return reply.status

            started = time.monotonic()
            statuses = await asyncio.gather(*(one() for _ in range(300)))
            elapsed = time.monotonic() - started
        stats = srv.stats()
    print(f"300 concurrent requests at 0.5 s latency: {elapsed:.2f} s wall, max in flight {stats['max_in_flight']}")
    assert statuses == [200] * 300
    # Overlap is the property: a serial server peaks at 1 in flight, a 64-thread pool at 64. How
    # long the 300 take is a speed figure (printed above), left to benchmarks: under load it varies.
    assert stats["max_in_flight"] >= 250


def test_process_variant_serves_the_scripted_model():
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialogforge.testing.stub_server", "--port", "0", "--latency", "0.05", "--fault-rate", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("stub server listening on http://127.0.0.1:"), line
        base_url = line.rsplit(" ", 1)[1].strip()
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        completion = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hello"}])
        assert completion.choices[0].message.content and completion.usage.total_tokens > 0
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and json.loads(out.strip().splitlines()[-1])["ok"] == 1


def test_process_variant_names_a_missing_model_module():
    proc = subprocess.run(
        [sys.executable, "-m", "dialogforge.testing.stub_server", "--model-factory", "no_such_module:Model"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "cannot import 'no_such_module'" in proc.stderr and "--model-factory" in proc.stderr
