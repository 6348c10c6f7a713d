"""ChatOpenAI for any OpenAI-compatible endpoint, keeping the reasoning text.

Stock ChatOpenAI drops the ``reasoning_content`` (vLLM, SGLang, DeepSeek) or
``reasoning`` (OpenRouter) field of a chat completion; training data for
reasoning models needs it, so this subclass copies it into the message's
``additional_kwargs`` where ``convert.reasoning_of`` finds it. Retries are
ours (``models.call``), so the SDK's own are switched off.

One HTTP client per server, shared by every role that talks to it, with its
connection pool sized to the run's concurrency: the SDK's default keeps only
100 idle connections, so with hundreds of dialogues in flight most requests
would open a new TCP connection. The transport (``http_client``) is aiohttp
when installed (``openai[aiohttp]``), else httpx: aiohttp measured markedly
less CPU per call (benchmarks/README.md).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import openai
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import _handle_openai_api_error, _handle_openai_bad_request

from dialogforge.config import HttpClient, ModelConfig
from dialogforge.errors import ConfigError

REASONING_FIELDS = ("reasoning_content", "reasoning")
# Request fields sent verbatim (see ReasoningChatOpenAI._get_request_payload).
_RAW_FIELDS = ("messages", "tools", "tool_choice", "response_format")
# Connections kept per server beyond the run's concurrency (probes, retries).
CONNECTION_HEADROOM = 16


class ReasoningChatOpenAI(ChatOpenAI):
    # ChatOpenAI sends the limit as `max_completion_tokens`, which llama.cpp's server
    # ignores (a base model then writes until the context is full); it reads `max_tokens`.
    legacy_max_tokens: bool = False

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
        """The request body's bulky fields travel in ``extra_body``: the same JSON on the wire.

        The SDK walks every ``create`` argument through a type-driven transform
        (aliases, file encodings -- none apply to chat messages) that cost
        several ms of CPU per call for a long dialogue, and a ``response_format``
        makes ChatOpenAI take the ``parse`` path, which transforms and parses
        again. ``extra_body`` is merged into the JSON as it is, so a call with
        hundreds of dialogues in flight costs a fraction of the CPU. The reply
        is validated by us (``models.structured``), not by the SDK.
        """
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        if self._use_responses_api(payload):
            return payload
        raw = {key: payload.pop(key) for key in _RAW_FIELDS if key in payload}
        if self.legacy_max_tokens and "max_completion_tokens" in payload:
            raw["max_tokens"] = payload.pop("max_completion_tokens")
        if raw:
            payload["extra_body"] = {**(payload.get("extra_body") or {}), **raw}
            payload["messages"] = []  # required by the SDK's signature; replaced by extra_body's
        return payload

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        """Chat completions without the SDK's response models: the JSON body goes straight to
        ``_create_chat_result`` (which takes a dict), skipping a pydantic construction of the
        whole response, its dump back to a dict, and a thread-pool hop -- ~1.5 ms CPU per call."""
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        if self._use_responses_api(payload):
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        try:
            raw = await self.async_client.with_raw_response.create(**payload)
        except openai.BadRequestError as exc:
            _handle_openai_bad_request(exc)
            raise
        except openai.APIError as exc:
            _handle_openai_api_error(exc)
            raise
        return self._create_chat_result(json.loads(raw.http_response.content))

    def _create_chat_result(self, response: dict | openai.BaseModel, generation_info: dict | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        choices = response.get("choices") if isinstance(response, dict) else getattr(response, "choices", None)
        for generation, choice in zip(result.generations, choices or []):
            message = choice.get("message") if isinstance(choice, dict) else getattr(choice, "message", None)
            text = _reasoning_field(message)
            if text:
                generation.message.additional_kwargs["reasoning_content"] = text
        return result


def _reasoning_field(message: Any) -> str | None:
    if message is None:
        return None
    extra = message if isinstance(message, dict) else {**(getattr(message, "model_extra", None) or {})}
    for name in REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def build_openai_chat(config: ModelConfig, url: str | None = None, http_client: Any = None) -> ChatOpenAI:
    """A client for one server of the role (``url``; the first of ``base_url`` by default)."""
    if url is None:
        endpoints = config.endpoints()
        if not endpoints:
            if config.backend == "local":
                raise ConfigError("the local backend's server is not running; start LocalLlamaServer and set its base_url")
            raise ConfigError("backend 'openai' needs a base_url (--base-url or the config file)")
        url = endpoints[0].url
    api_key = os.environ.get(config.api_key_env) or "not-needed"
    return ReasoningChatOpenAI(
        base_url=url,
        api_key=api_key,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout_s,
        max_retries=0,
        extra_body=config.extra_body or None,
        http_async_client=http_client,
        legacy_max_tokens=config.plain_chat(),
    )


@cache
def aiohttp_available() -> bool:
    try:
        openai.DefaultAioHttpClient()
    except RuntimeError:
        return False
    return True


def build_http_client(kind: HttpClient, connections: int, timeout_s: float) -> Any:
    """An async HTTP client for the OpenAI SDK, pooling ``connections`` per server."""
    import httpx2

    limits = httpx2.Limits(max_connections=connections + CONNECTION_HEADROOM,
                           max_keepalive_connections=connections + CONNECTION_HEADROOM, keepalive_expiry=30.0)
    timeout = httpx2.Timeout(timeout_s, connect=min(timeout_s, 10.0))
    if kind == "aiohttp" or (kind == "auto" and aiohttp_available()):
        try:
            return openai.DefaultAioHttpClient(limits=limits, timeout=timeout)
        except RuntimeError as exc:
            raise ConfigError("http_client 'aiohttp' needs the aiohttp extra: pip install 'openai[aiohttp]'") from exc
    return openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
