"""ChatOpenAI for any OpenAI-compatible endpoint, keeping the reasoning text.

Stock ChatOpenAI drops the ``reasoning_content`` (vLLM, SGLang, DeepSeek) or
``reasoning`` (OpenRouter) field of a chat completion; training data for
reasoning models needs it, so this subclass copies it into the message's
``additional_kwargs`` where ``convert.reasoning_of`` finds it. Retries are
ours (``models.call``), so the SDK's own are switched off.
"""

from __future__ import annotations

import os
from typing import Any

import openai
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI

from dialogforge.config import ModelConfig
from dialogforge.errors import ConfigError

REASONING_FIELDS = ("reasoning_content", "reasoning")


class ReasoningChatOpenAI(ChatOpenAI):
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


def build_openai_chat(config: ModelConfig) -> ChatOpenAI:
    if not config.base_url:
        if config.backend == "local":
            raise ConfigError("the local backend's server is not running; start LocalLlamaServer and set its base_url")
        raise ConfigError("backend 'openai' needs a base_url (--base-url or the config file)")
    api_key = os.environ.get(config.api_key_env) or "not-needed"
    return ReasoningChatOpenAI(
        base_url=config.base_url,
        api_key=api_key,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout_s,
        max_retries=0,
        extra_body=config.extra_body or None,
    )
