"""ChatOpenAI for any OpenAI-compatible endpoint, keeping the reasoning text.

Stock ChatOpenAI drops the ``reasoning_content`` (vLLM, SGLang, DeepSeek) or
``reasoning`` (OpenRouter) field of a chat completion; training data for
reasoning models needs it, so this subclass copies it into the message's
``additional_kwargs`` where ``convert.reasoning_of`` finds it. Retries are
ours (``models.call``), so the SDK's own are switched off. The subclass
(``ReasoningChatOpenAI``) overrides private ChatOpenAI hooks, so it lives in
``dialogforge.compat.openai_chat``.

One HTTP client per server, shared by every role that talks to it, with its
connection pool sized to the run's concurrency: the SDK's default keeps only
100 idle connections, so with hundreds of dialogues in flight most requests
would open a new TCP connection. The transport (``http_client``) is aiohttp
when installed (``openai[aiohttp]``), else httpx: aiohttp measured markedly
less CPU per call (benchmarks/README.md).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import openai
from langchain_openai import ChatOpenAI

from dialogforge.compat.openai_chat import ReasoningChatOpenAI
from dialogforge.config import HttpClient, ModelConfig
from dialogforge.errors import ConfigError

# Connections kept per server beyond the run's concurrency (probes, retries).
CONNECTION_HEADROOM = 16


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
        reasoning_field=config.sent_reasoning_field(),
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
