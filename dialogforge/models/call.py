"""The single place where a chat model is invoked, with bounded retries.

Retried, with exponential backoff and full jitter, honouring Retry-After:
timeouts, connection errors, 429, 5xx, and replies the client could not
parse (a truncated or non-JSON body). Anything else (401, 400, 404...) fails
at once; a 400 saying the request exceeds the model's context is a
``ContextOverflowError``, which the agent and the user simulator answer by
sending a shorter window. What still fails becomes a ``ModelCallError`` naming the role and
the cause, which the node records as the trajectory's failure reason. (The
SDK's own retries are off: they do not cover malformed bodies, and one loop
is easier to reason about than two.)

Each attempt leases a server from the role's ``EndpointPool``; a retry
prefers servers this call has not tried yet, and every retryable failure
counts against the server that produced it (see ``models.pool``).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Any

import httpx
import openai
from langchain_core.messages import AIMessage

from dialogforge.compat.openai_chat import ReasoningChatOpenAI
from dialogforge.errors import ContextOverflowError, ModelCallError
from dialogforge.models.convert import Sendable, langchain_of, wire_of
from dialogforge.models.plain_chat import to_plain_chat
from dialogforge.models.pool import Endpoint
from dialogforge.models.registry import RoleModel

BASE_DELAY_S = 0.5
MAX_DELAY_S = 30.0

_RETRYABLE = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APIResponseValidationError,
    httpx.TransportError,
    TimeoutError,
    ConnectionError,
    json.JSONDecodeError,
)
# Malformed response bodies surface from the client as these.
_MALFORMED = (ValueError, KeyError, TypeError)


async def invoke_chat(model: RoleModel, messages: list[Sendable], **kwargs: Any) -> AIMessage:
    if model.config.plain_chat():
        messages = to_plain_chat(langchain_of(messages), reasoning=model.config.sent_reasoning_field() is not None)
    attempts = model.config.max_retries + 1
    tried: list[Endpoint] = []
    for attempt in range(attempts):
        try:
            reply = await _attempt(model, messages, kwargs, tried)
        except openai.APIStatusError as exc:
            if context_overflow(exc):
                raise ContextOverflowError(f"{model.role}: HTTP {exc.status_code}: {_first_line(exc)}",
                                           model_context_of(exc)) from exc
            if not _status_retryable(exc.status_code) or attempt == attempts - 1:
                raise ModelCallError(f"{model.role}: HTTP {exc.status_code}: {_first_line(exc)}") from exc
            await asyncio.sleep(_delay(attempt, _retry_after(exc)))
        except _RETRYABLE as exc:
            if attempt == attempts - 1:
                raise ModelCallError(f"{model.role}: {_kind(exc)} after {attempts} attempts: {_detail(exc)}") from exc
            await asyncio.sleep(_delay(attempt, None))
        except _MALFORMED as exc:
            if attempt == attempts - 1:
                raise ModelCallError(f"{model.role}: malformed response after {attempts} attempts: {_first_line(exc)}") from exc
            await asyncio.sleep(_delay(attempt, None))
        else:
            if not isinstance(reply, AIMessage):
                raise ModelCallError(f"{model.role}: the model returned {type(reply).__name__}, not a message")
            return reply
    raise AssertionError("unreachable")  # the loop returns or raises


async def _attempt(model: RoleModel, messages: list[Sendable], kwargs: dict[str, Any], tried: list[Endpoint]) -> Any:
    """One request on a leased server; the outcome is reported to the pool before any back-off sleep."""
    pool = model.pool
    if pool is None:
        return await _complete(model.chat, messages, kwargs)
    member = await pool.acquire(avoid=tried)
    tried.append(member.endpoint)
    failed = False
    try:
        return await _complete(member.chat, messages, kwargs)
    except openai.APIStatusError as exc:
        failed = _status_retryable(exc.status_code)
        raise
    except (*_RETRYABLE, *_MALFORMED):
        failed = True
        raise
    finally:
        pool.release(member, failed=failed)


async def _complete(chat: Any, messages: list[Sendable], kwargs: dict[str, Any]) -> Any:
    """Our OpenAI client's lean path (``ReasoningChatOpenAI.acomplete``, records as their wire dicts),
    else LangChain's ``ainvoke`` on LangChain messages made for the call."""
    if isinstance(chat, ReasoningChatOpenAI) and chat.sends_chat_body(kwargs):
        return await chat.acomplete(wire_of(messages, chat.reasoning_field), **kwargs)
    return await chat.ainvoke(langchain_of(messages), **kwargs)


# How servers say a request is longer than the model's context: vLLM and OpenAI ("maximum context
# length", code context_length_exceeded), llama.cpp ("exceeds the available context size",
# exceed_context_size_error), SGLang ("longer than the model's context length").
_OVERFLOW = re.compile(r"context[ _]length|context[ _]size|context window|maximum context|too many (input )?tokens", re.I)


def context_overflow(exc: openai.APIStatusError) -> bool:
    """A refusal of the request as longer than the model's context (not retried as it is: the
    caller shrinks its window, ``dialogforge.context_windows``)."""
    return exc.status_code in (400, 413) and bool(_OVERFLOW.search(f"{exc.message} {exc.body}"))


# The model's context length, where a refusal names it: vLLM and OpenAI in words, llama.cpp as n_ctx.
_MODEL_CONTEXT = re.compile(r"maximum context length is (\d+)|['\"]n_ctx['\"]: (\d+)", re.I)


def model_context_of(exc: openai.APIStatusError) -> int | None:
    found = _MODEL_CONTEXT.search(f"{exc.message} {exc.body}")
    return int(found.group(1) or found.group(2)) if found else None


def _status_retryable(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


def _retry_after(exc: openai.APIStatusError) -> float | None:
    header = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


def _delay(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_DELAY_S) + random.uniform(0, BASE_DELAY_S)
    return random.uniform(0, min(MAX_DELAY_S, BASE_DELAY_S * 2**attempt))


def _kind(exc: BaseException) -> str:
    # The aiohttp transport reports a connection reset as a *timeout* (APITimeoutError from
    # ConnectTimeout); the dropped connection underneath is what happened.
    if any(isinstance(cause, ConnectionError) for cause in _causes(exc)):
        return "connection error"
    if isinstance(exc, (openai.APITimeoutError, TimeoutError, httpx.TimeoutException)):
        return "timeout"
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError, ConnectionError)):
        return "connection error"
    return type(exc).__name__


# What the SDK says of every transport failure; the cause underneath says which one it was.
_GENERIC = ("Connection error.", "Request timed out.")


def _detail(exc: BaseException) -> str:
    """The first message along the cause chain that says more than the SDK's generic one
    (e.g. "Connection reset by peer", "received 76 of 588 bytes")."""
    for cause in _causes(exc):
        line = _first_line(cause)
        if line not in _GENERIC and line != type(cause).__name__:
            return line
    return _first_line(exc)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
