"""The embedded llama.cpp server: it serves the packaged model, and it never outlives us.

Marked `embedded`: these need xllamacpp (llama-server, a prebuilt wheel) and the packaged GGUF installed;
run them with `python -m pytest -m embedded tests/test_local_server.py`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request

import pytest

from dialogforge.models.local_server import LocalLlamaServer, LocalModelError, default_gguf_path

pytestmark = pytest.mark.embedded

USER_TURN = {
    "type": "object",
    "properties": {"user_message": {"type": "string"}, "is_task_complete": {"type": "boolean"}},
    "required": ["user_message", "is_task_complete"],
}


def _post(base_url: str, body: dict) -> dict:
    request = urllib.request.Request(f"{base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _gone(pid: int, port: int) -> bool:
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        pass
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_default_model_answers_json_object_with_schema_and_stops():
    with LocalLlamaServer() as server:
        assert server.model_path == default_gguf_path()
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
        pid, port = server._proc.pid, server.port
        reply = _post(server.base_url, {
            "model": server.model,
            "messages": [{"role": "system", "content": "You are a traveller talking to a booking assistant."},
                         {"role": "user", "content": "Say what you want, as JSON."}],
            "max_tokens": 120, "seed": 0,
            "response_format": {"type": "json_object", "schema": USER_TURN},
        })
        content = reply["choices"][0]["message"]["content"]
        assert reply["choices"][0]["finish_reason"] == "stop"
        # The server's grammar lets raw control characters (newlines) into strings, which
        # strict JSON parsers reject; everything else about the reply is well-formed JSON.
        turn = json.loads(content, strict=False)
        assert isinstance(turn["user_message"], str) and isinstance(turn["is_task_complete"], bool)
        assert reply["usage"]["completion_tokens"] > 0
    assert _gone(pid, port)


async def test_async_context_manager_stops_the_server():
    async with LocalLlamaServer() as server:
        pid, port = server._proc.pid, server.port
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as response:
            assert json.loads(response.read())["data"][0]["id"] == server.model
    assert _gone(pid, port)


def test_missing_gguf_fails_in_one_line_before_any_process(monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("a server process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with pytest.raises(LocalModelError) as caught:
        LocalLlamaServer("/nonexistent/model.gguf").start()
    message = str(caught.value)
    assert "/nonexistent/model.gguf" in message and "\n" not in message


def test_a_server_that_dies_while_starting_fails_fast_with_its_stderr(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(4096))
    server = LocalLlamaServer(broken, startup_timeout=60)
    with pytest.raises(LocalModelError, match="exited with code .* Failed to load model") as caught:
        server.start()
    assert "\n" not in str(caught.value)
    assert server._proc is None and server.log_path is None
