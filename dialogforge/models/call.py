"""The single place where a chat model is invoked.

Transport failures (timeouts, 429, 5xx, refused connections) are retried by
the OpenAI client itself with backoff that honours Retry-After; what is still
failing afterwards becomes a ``ModelCallError`` naming the role and the cause,
which the node turns into the trajectory's failure reason.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage

from dialogforge.errors import ModelCallError
from dialogforge.models.registry import RoleModel

_TRANSPORT_ERRORS = (openai.APIError, httpx.HTTPError, TimeoutError, ConnectionError)


async def invoke_chat(model: RoleModel, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
    try:
        reply = await model.chat.ainvoke(messages, **kwargs)
    except openai.APIStatusError as exc:
        raise ModelCallError(f"{model.role}: HTTP {exc.status_code}: {_first_line(exc)}") from exc
    except _TRANSPORT_ERRORS as exc:
        raise ModelCallError(f"{model.role}: {type(exc).__name__}: {_first_line(exc)}") from exc
    if not isinstance(reply, AIMessage):
        raise ModelCallError(f"{model.role}: the model returned {type(reply).__name__}, not a message")
    return reply


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
