"""ChatOpenAI clients for any OpenAI-compatible endpoint."""

from __future__ import annotations

import os

from langchain_openai import ChatOpenAI

from dialogforge.config import ModelConfig
from dialogforge.errors import ConfigError


def build_openai_chat(config: ModelConfig) -> ChatOpenAI:
    if not config.base_url:
        if config.backend == "local":
            raise ConfigError("the local backend's server is not running; start LocalLlamaServer and set its base_url")
        raise ConfigError("backend 'openai' needs a base_url (--base-url or the config file)")
    api_key = os.environ.get(config.api_key_env) or "not-needed"
    return ChatOpenAI(
        base_url=config.base_url,
        api_key=api_key,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        extra_body=config.extra_body or None,
    )
