"""ChatOpenAI internals dialogforge relies on (see ``dialogforge.compat``).

``ReasoningChatOpenAI`` overrides three private hooks of ``ChatOpenAI``:
``_get_request_payload`` (the request's bulky fields travel in ``extra_body``;
assistant messages get their reasoning back, in the endpoint's field, since
ChatOpenAI's conversion drops it and relies on one request dict per message),
``_agenerate`` (the raw JSON reply goes straight to ``_create_chat_result``)
and ``_create_chat_result`` (the reply's reasoning field is kept); it also
calls ``_use_responses_api``, ``_default_params``, langchain-openai's two
private error translators and its message converters
(``_convert_message_to_dict``, ``_convert_from_v1_to_chat_completions``).
``acomplete`` is the engine's way in: one completion without LangChain's
per-call machinery (see there). Each assumption has a test in
``tests/test_compat.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import openai
import orjson
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models._compat import _convert_from_v1_to_chat_completions
from langchain_openai.chat_models.base import _convert_message_to_dict, _handle_openai_api_error, _handle_openai_bad_request

from dialogforge.compat.openai_direct import post_chat
from dialogforge.identity import ByIdentity

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
            payload["messages"] = _with_reasoning(input_, payload.get("messages") or [], self.reasoning_field)
        raw = {key: payload.pop(key) for key in _RAW_FIELDS if key in payload}
        if self.legacy_max_tokens and "max_completion_tokens" in payload:
            raw["max_tokens"] = payload.pop("max_completion_tokens")
        if raw:
            payload["extra_body"] = {**(payload.get("extra_body") or {}), **raw}
            payload["messages"] = []  # required by the SDK's signature; replaced by extra_body's
        return payload

    def sends_chat_body(self, kwargs: dict[str, Any]) -> bool:
        """Whether ``acomplete`` with these arguments posts a chat-completions body (it may then be
        given wire messages), rather than taking LangChain's path (the Responses API, a stream)."""
        return self._posts_chat_body({**self._default_params, **kwargs})

    def _posts_chat_body(self, payload: dict[str, Any]) -> bool:
        return not (self._use_responses_api(payload) or payload.get("stream"))

    async def acomplete(self, messages: Sequence[BaseMessage | dict[str, Any]], **kwargs: Any) -> AIMessage:
        """One chat completion, the reply as ``ainvoke`` would give it, at a fraction of the CPU.

        A message may be given in its wire form already (a dict, as ``to_wire`` makes
        it, reasoning in this client's field), when ``sends_chat_body``: a caller that
        keeps a dialogue's history as its own records then holds one form per message,
        not a LangChain object beside its wire dict.

        ``ainvoke`` walks every call through LangChain's callback managers and
        run tracing, converts every message to the wire format again, and the
        SDK's ``create`` transforms its arguments by their types: milliseconds
        per call for a long dialogue. Here each message's wire form is
        converted once in its life (``wire_message``) and the body is posted as
        it is: on the client's own session with the headers the SDK built for it
        (``openai_direct.post_chat``), or else through ``post`` (the SDK's
        documented way to send a request it has no method for); the SDK's
        errors, timeouts and connection pool either way. No LangChain callbacks
        run: nothing of dialogforge uses them.
        """
        body = self._chat_body(messages, kwargs)
        if body is None:  # the Responses API or a stream: LangChain's own path
            if any(isinstance(m, dict) for m in messages):
                raise TypeError("wire messages need the chat-completions path: check sends_chat_body first")
            reply = await self.ainvoke(list(messages), **kwargs)
            assert isinstance(reply, AIMessage)
            return reply
        encoded = _encoded(body)
        with _langchain_errors():
            raw = await post_chat(self.root_async_client, encoded["content"]) if "content" in encoded else None
            if raw is None:
                raw = await self.root_async_client.post("/chat/completions", **encoded, cast_to=bytes)
        generation = self._create_chat_result(json.loads(raw)).generations[0]
        message = generation.message
        # What BaseChatModel.agenerate adds: the generation's info (finish_reason...) in the metadata.
        message.response_metadata = {**(generation.generation_info or {}), **message.response_metadata}
        assert isinstance(message, AIMessage)
        return message

    def _chat_body(self, messages: Sequence[BaseMessage | dict[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The chat-completions JSON body ``_get_request_payload`` and the SDK would send, or None when
        the Responses API or streaming applies (LangChain's own path then)."""
        payload = {**self._default_params, **kwargs}
        if not self._posts_chat_body(payload):
            return None
        extra = payload.pop("extra_body", None) or {}
        if "max_tokens" in payload:  # ChatOpenAI sends the limit as max_completion_tokens
            payload["max_completion_tokens"] = payload.pop("max_tokens")
        if self.legacy_max_tokens and "max_completion_tokens" in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        wire = [m if isinstance(m, dict) else wire_message(m) for m in messages]
        if self.reasoning_field:
            wire = _with_reasoning(messages, wire, self.reasoning_field)
        if self.model_name and re.match(r"^o\d", self.model_name):  # ChatOpenAI's rename for o-series models
            wire = [{**m, "role": "developer"} if m["role"] == "system" else m for m in wire]
        return {**payload, "messages": wire, **extra}

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        """Chat completions without the SDK's response models: the JSON body goes straight to
        ``_create_chat_result`` (which takes a dict), skipping a pydantic construction of the
        whole response, its dump back to a dict, and a thread-pool hop -- ~1.5 ms CPU per call."""
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        if self._use_responses_api(payload):
            return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        with _langchain_errors():
            raw = await self.async_client.with_raw_response.create(**payload)
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


def _encoded(body: dict[str, Any]) -> dict[str, Any]:
    """``post``'s body argument: JSON bytes by orjson as ``content`` (sent as they are, with the
    client's JSON content type), for the SDK's own ``json.dumps`` of a long dialogue's body was a
    tenth of a call's CPU; what orjson refuses (a lone surrogate, a key that is not a string) goes
    as ``body``, for the SDK to encode."""
    try:
        return {"content": orjson.dumps(body)}
    except TypeError:
        return {"body": body}


def to_wire(message: BaseMessage) -> dict[str, Any]:
    """A LangChain message as ChatOpenAI sends it (without reasoning: see ``_with_reasoning``)."""
    return _convert_message_to_dict(_convert_from_v1_to_chat_completions(message) if isinstance(message, AIMessage) else message)


# ``to_wire`` once per message object, for a message sent again as the same object (a system prompt
# kept by its node). Shared: never mutate.
wire_message: ByIdentity[BaseMessage, dict[str, Any]] = ByIdentity(to_wire)


def _with_reasoning(messages: Sequence[BaseMessage], wire: list[dict], field: str) -> list[dict]:
    """``wire`` with each AIMessage's ``reasoning_content`` in its request dict as ``field``: ChatOpenAI's
    message conversion leaves it out. Its dicts are one per message, in order: tests/test_compat.py
    holds that (a ChatOpenAI that changed it would fail there, not here). The dicts given are not
    changed (``wire_message``'s are shared): a turn with reasoning gets a copy, made once per message
    and field (``_reasoned``) as long as it is asked for with the same wire dict."""
    out = list(wire)
    for k, (message, entry) in enumerate(zip(messages, wire)):
        text = message.additional_kwargs.get("reasoning_content") if isinstance(message, AIMessage) else None
        if text and isinstance(entry, dict):
            made = _reasoned(message)
            hit = made.get(field)
            if hit is None or hit[0] is not entry or hit[1][field] != text:
                hit = made[field] = (entry, {**entry, field: text})
            out[k] = hit[1]
    return out


# A reasoning turn's request dict with its reasoning field, by message: (the wire dict it copies, the copy).
_reasoned: ByIdentity[BaseMessage, dict[str, tuple[dict, dict]]] = ByIdentity(lambda _message: {})


@contextmanager
def _langchain_errors() -> Iterator[None]:
    """The SDK's errors as ChatOpenAI raises them (its translators add context-overflow and other hints)."""
    try:
        yield
    except openai.BadRequestError as exc:
        _handle_openai_bad_request(exc)
        raise
    except openai.APIError as exc:
        _handle_openai_api_error(exc)
        raise


def _reasoning_field(message: Any) -> str | None:
    if message is None:
        return None
    extra = message if isinstance(message, dict) else {**(getattr(message, "model_extra", None) or {})}
    for name in REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return None
