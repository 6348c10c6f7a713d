"""One way to get a model: ``get_model(role, config)``.

Nodes receive ``RoleModel`` objects through the graph's runtime context and
never build clients themselves, so a run can point each role at a different
endpoint and tests can swap in the scripted model without touching a node.

A role with several servers (``base_url`` a list) gets an ``EndpointPool``;
``models.call.invoke_chat`` leases a server from it for each attempt. Every
role has a pool, even with one server, so limits and counters work the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from dialogforge.config import EndpointConfig, ModelConfig, ModelsConfig, Role
from dialogforge.errors import ConfigError
from dialogforge.models.pool import EndpointPool, Endpoints, PoolMember
from dialogforge.pricing import Pricing

# Connections pooled per server when the caller does not say how many dialogues run at once.
DEFAULT_CONNECTIONS = 100


@dataclass(frozen=True)
class RoleModel:
    role: Role
    config: ModelConfig
    chat: BaseChatModel  # the first server's client (what single-server callers use)
    # Which structured-output method this endpoint accepted; learnt on first use.
    method_memory: dict[str, object] = field(default_factory=dict, compare=False)
    pool: EndpointPool | None = field(default=None, compare=False)


@dataclass
class ModelSet:
    """The role models of one run; a server's HTTP client and limits are shared across roles.
    ``pricing``: what their tokens cost (None without ``models.prices``)."""

    models: dict[Role, RoleModel] = field(default_factory=dict)
    http_clients: dict[str, Any] = field(default_factory=dict)
    endpoints: Endpoints = field(default_factory=Endpoints)
    pricing: Pricing | None = None

    def __getitem__(self, role: Role) -> RoleModel:
        return self.models[role]

    @classmethod
    def from_config(cls, config: ModelsConfig, *, connections: int = DEFAULT_CONNECTIONS) -> ModelSet:
        """``connections``: dialogues in flight, so each server's connection pool can hold them all."""
        models = cls(pricing=Pricing.from_models(config))  # an unpriced model fails here, before any call
        for role in Role:
            models.models[role] = _build_role(role, config.for_role(role), models, connections)
        return models

    async def aclose(self) -> None:
        """Close the shared HTTP clients (their connections belong to the current event loop)."""
        for client in self.http_clients.values():
            await client.aclose()
        self.http_clients.clear()


def get_model(role: Role, config: ModelsConfig) -> RoleModel:
    return _build_role(role, config.for_role(role), None, DEFAULT_CONNECTIONS)


def _build_role(role: Role, config: ModelConfig, shared: ModelSet | None, connections: int) -> RoleModel:
    endpoints = shared.endpoints if shared is not None else Endpoints()
    if config.backend == "scripted":
        from dialogforge.testing.scripted_model import ScriptedChatModel

        chat = ScriptedChatModel(role=role.value)
        member = PoolMember(endpoints.get(_in_process(role)), chat)
        return RoleModel(role=role, config=config, chat=chat, pool=EndpointPool([member], endpoints))
    if config.backend in ("openai", "local"):
        from dialogforge.models.openai_client import build_http_client, build_openai_chat

        if not config.endpoints():
            build_openai_chat(config)  # raises the missing-base_url error
        members = []
        for endpoint in config.endpoints():
            client = None
            if shared is not None:
                key = f"{config.http_client} {endpoint.url}"
                client = shared.http_clients.get(key)
                if client is None:
                    client = shared.http_clients[key] = build_http_client(config.http_client, connections, config.timeout_s)
            members.append(PoolMember(endpoints.get(endpoint), build_openai_chat(config, endpoint.url, client)))
        return RoleModel(role=role, config=config, chat=members[0].chat, pool=EndpointPool(members, endpoints))
    raise ConfigError(f"unknown backend {config.backend!r}; use scripted, openai or local")


def _in_process(role: Role) -> EndpointConfig:
    """The scripted model has no server; a per-role name keeps counters apart."""
    return EndpointConfig(url=f"scripted:{role.value}")
