"""Chat completions posted on the OpenAI SDK client's own aiohttp session, without its per-request build.

For every request the SDK builds options (a pydantic model whose defaults it
deep-copies), an httpx request with its URL parsed and its headers merged and
validated one by one, then hands that to the vendored aiohttp transport, which
turns it back into an aiohttp call. With a long dialogue's body already
encoded (``openai_chat._encoded``) that was about a third of the engine's CPU
per LLM call. Here the SDK builds one request per client, once; its URL,
headers and timeouts are kept (``_Route``) and each later body goes straight
to the same aiohttp session, so the same connection pool, headers and timeouts
apply. A reply that is not 2xx becomes the SDK's own error
(``_make_status_error_from_response``), a timeout ``APITimeoutError`` and any
other transport failure ``APIConnectionError``, as the SDK's ``request``
raises them.

Only a plain client takes this path: a static API key, no custom auth, key
provider, workload identity or provider runtime, no retries of the SDK's own
(ours are in ``models.call``), and the aiohttp transport without a proxy or a
Unix socket. Anything else, and a client before its first request (the SDK
detects the platform its headers name then), goes through ``post``.

Private names used: ``AsyncOpenAI._build_request``, ``_prepare_options``,
``_make_status_error_from_response``, ``_platform``, ``custom_auth``,
``_api_key_provider``, ``_provider_runtime``, ``_workload_identity_auth``,
``_idempotency_key``, the httpx client's ``_transport``, and the vendored
``AiohttpTransport`` (``client``, ``get_client``, ``proxy``, ``uds``,
``map_aiohttp_exceptions``). Each has a test in ``tests/test_compat.py``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import openai
from openai._models import FinalRequestOptions
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport, map_aiohttp_exceptions

PATH = "/chat/completions"
# Per-request headers the SDK sets itself: a fresh idempotency key each request, and the length.
_PER_REQUEST = frozenset({"content-length", "idempotency-key"})
# httpx offers the encodings it can decode (brotli, zstd when installed); the reply is decoded by
# aiohttp here, so only what aiohttp always decodes is offered.
_ACCEPT_ENCODING = "gzip, deflate"
_UNSET = object()


@dataclass(frozen=True)
class _Route:
    session: aiohttp.ClientSession
    url: str
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout
    idempotent: bool  # the SDK sent an Idempotency-Key: so does each request here
    request: httpx2.Request  # what errors carry as their request (URL and method, as the SDK's would)


# None: the client does not qualify (asked once per client).
_routes: weakref.WeakKeyDictionary[openai.AsyncOpenAI, _Route | None] = weakref.WeakKeyDictionary()


def plain_client(client: openai.AsyncOpenAI) -> bool:
    """Whether a request of this client is only its base URL, static headers and a body."""
    for private in ("custom_auth", "_api_key_provider", "_provider_runtime", "_workload_identity_auth"):
        if getattr(client, private, _UNSET) is not None:
            return False
    if client.max_retries != 0 or getattr(client, "_custom_query", None):
        return False
    transport = getattr(getattr(client, "_client", None), "_transport", None)
    return isinstance(transport, AiohttpTransport) and transport.proxy is None and transport.uds is None


async def _route(client: openai.AsyncOpenAI) -> _Route | None:
    if client in _routes:
        return _routes[client]
    if getattr(client, "_platform", None) is None:
        return None  # not yet: the SDK's first request detects the platform the headers name
    route = None
    if plain_client(client):
        options = await client._prepare_options(FinalRequestOptions.construct(method="post", url=PATH, content=b"{}"))
        request = client._build_request(options, retries_taken=0)
        transport: AiohttpTransport = client._client._transport
        if not isinstance(transport.client, aiohttp.ClientSession):
            transport.client = transport.get_client()  # what the transport does on its first request
        timeout = request.extensions.get("timeout", {})
        route = _Route(
            session=transport.client,
            url=str(request.url),
            headers={**{k: v for k, v in request.headers.items() if k.lower() not in _PER_REQUEST},
                     **({"accept-encoding": _ACCEPT_ENCODING} if "accept-encoding" in request.headers else {})},
            timeout=aiohttp.ClientTimeout(sock_connect=timeout.get("connect"), sock_read=timeout.get("read"),
                                          connect=timeout.get("pool")),
            idempotent="idempotency-key" in request.headers,
            request=httpx2.Request("POST", request.url),
        )
    _routes[client] = route
    return route


async def post_chat(client: openai.AsyncOpenAI, content: bytes) -> bytes | None:
    """The reply body of a chat completion whose JSON body is ``content``; None when this client
    must go through the SDK's ``post`` instead (see the module's docstring)."""
    route = await _route(client)
    if route is None:
        return None
    headers = route.headers
    if route.idempotent:
        headers = {**headers, "Idempotency-Key": client._idempotency_key()}
    try:
        with map_aiohttp_exceptions():
            async with route.session.post(route.url, data=content, headers=headers, allow_redirects=False,
                                          compress=False, timeout=route.timeout) as reply:
                status, raw_headers, body = reply.status, reply.raw_headers, await reply.read()
    except (httpx2.TimeoutException, TimeoutError) as err:
        raise openai.APITimeoutError(request=route.request) from err
    except Exception as err:  # as the SDK's ``request``: any other failure of the send is a connection error
        raise openai.APIConnectionError(request=route.request) from err
    if 200 <= status < 300:
        return body
    response = httpx2.Response(status_code=status, headers=raw_headers, content=body, request=route.request)
    raise client._make_status_error_from_response(response) from None


def forget(client: Any) -> None:
    """Drop a client's route (tests; a client whose settings changed)."""
    _routes.pop(client, None)
