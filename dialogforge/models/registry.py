"""One way to get a model: ``get_model(role, config)``.

Nodes receive ``RoleModel`` objects through the graph's runtime context and
never build clients themselves, so a run can point each role at a different
endpoint and tests can swap in the scripted model without touching a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from dialogforge.config import ModelConfig, ModelsConfig, Role
from dialogforge.errors import ConfigError


@dataclass(frozen=True)
class RoleModel:
    role: Role
    config: ModelConfig
    chat: BaseChatModel
    # Which structured-output method this endpoint accepted; learnt on first use.
    method_memory: dict[str, object] = field(default_factory=dict, compare=False)


@dataclass
class ModelSet:
    """The six role models of one run; a shared client is reused across roles."""

    models: dict[Role, RoleModel] = field(default_factory=dict)

    def __getitem__(self, role: Role) -> RoleModel:
        return self.models[role]

    @classmethod
    def from_config(cls, config: ModelsConfig) -> ModelSet:
        return cls({role: get_model(role, config) for role in Role})


def get_model(role: Role, config: ModelsConfig) -> RoleModel:
    role_config = config.for_role(role)
    return RoleModel(role=role, config=role_config, chat=_build_chat(role, role_config))


def _build_chat(role: Role, config: ModelConfig) -> BaseChatModel:
    if config.backend == "scripted":
        from dialogforge.testing.scripted_model import ScriptedChatModel

        return ScriptedChatModel(role=role.value)
    if config.backend in ("openai", "local"):
        from dialogforge.models.openai_client import build_openai_chat

        return build_openai_chat(config)
    raise ConfigError(f"unknown backend {config.backend!r}; use scripted, openai or local")
