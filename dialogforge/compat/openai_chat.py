"""ChatOpenAI internals dialogforge relies on (see ``dialogforge.compat``).

``ReasoningChatOpenAI`` overrides three private hooks of ``ChatOpenAI``:
``_get_request_payload`` (the request's bulky fields travel in ``extra_body``;
assistant messages get their reasoning back, in the endpoint's field, since
ChatOpenAI's conversion drops it and relies on one request dict per message),
``_agenerate`` (the raw JSON reply goes straight to ``_create_chat_result``)
and ``_create_chat_result`` (the reply's reasoning field is kept); it also
calls ``_use_responses_api`` and langchain-openai's two private error
translators. Each assumption has a test in ``tests/test_compat.py``.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models.base import _handle_openai_api_error, _handle_openai_bad_request

REASONING_FIELDS = ("reasoning_content", "reasoning")
# Request fields sent verbatim (see ReasoningChatOpenAI._get_request_payload).
_RAW_FIELDS = ("messages", "tools", "tool_choice", "response_format")


class ReasoningChatOpenAI(ChatOpenAI):
    # ChatOpenAI sends the limit as `max_completion_tokens`, which llama.cpp's server
    # ignores (a base model then writes until the context is full); it reads `max_tokens`.
    legacy_max_tokens: bool = False
    # The assistant-message field earlier reasoning goes back in (interleaved thinking); None: not sent.
    reasoning_field: str | None = "reasoning_content"

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
        if self.reasoning_field and isinstance(input_, list):
            _send_reasoning(input_, payload.get("messages") or [], self.reasoning_field)
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


def _send_reasoning(messages: list[BaseMessage], wire: list[dict], field: str) -> None:
    """Put each AIMessage's ``reasoning_content`` into its request dict as ``field``: ChatOpenAI's
    message conversion leaves it out. Its dicts are one per message, in order: tests/test_compat.py
    holds that (a ChatOpenAI that changed it would fail there, not here)."""
    for message, entry in zip(messages, wire):
        text = message.additional_kwargs.get("reasoning_content") if isinstance(message, AIMessage) else None
        if text and isinstance(entry, dict):
            entry[field] = text


def _reasoning_field(message: Any) -> str | None:
    if message is None:
        return None
    extra = message if isinstance(message, dict) else {**(getattr(message, "model_extra", None) or {})}
    for name in REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return None
