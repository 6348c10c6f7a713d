"""Run configuration: which model plays each role, and what to generate.

Validated strictly (unknown keys rejected) because a typo in an overnight
run's config should fail in the first second, not after ten thousand calls.
API keys are never stored here: only the name of the environment variable
that holds one.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from dialogforge.records import Limits, Mode, ToolExec, ToolSimulation, ToolSource


class Role(StrEnum):
    TASK_PROPOSER = "task_proposer"
    TOOL_SYNTHESIZER = "tool_synthesizer"
    USER_SIMULATOR = "user_simulator"
    AGENT = "agent"
    TOOL_SIMULATOR = "tool_simulator"
    JUDGE = "judge"


class StructuredMethod(StrEnum):
    """How a role asks for JSON; ``auto`` tries them in this order."""

    AUTO = "auto"
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    TOOL_CALLING = "tool_calling"


Backend = Literal["scripted", "openai", "local"]

# The async HTTP transport under the OpenAI SDK. aiohttp measured ~35% less
# client CPU per call than httpx at hundreds of calls in flight (see
# benchmarks/README.md), so it is the default when installed.
HttpClient = Literal["auto", "aiohttp", "httpx"]

# How messages and tool calls travel. native: system/tool roles and tool calls as the
# chat-completions API defines them. plain: user/assistant text only, tool calls as JSON
# (models.plain_chat), for chat templates that drop roles -- llama.cpp with Gemma does;
# JSON answers then go as llama.cpp's {"type": "json_object", "schema": ...}.
# auto: plain for the embedded local model, native otherwise.
ChatProtocol = Literal["auto", "native", "plain"]


class ToolPrep(StrEnum):
    """When a run without fixed tools prepares them."""

    LIBRARY = "library"  # once per domain, before any trajectory starts: a tool library in the database
    PER_TRAJECTORY = "per_trajectory"  # anew in every trajectory, after its task is proposed


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointConfig(Strict):
    """One server of a role's endpoint list, with limits of its own.

    Limits left unset fall back to the role's ``max_in_flight`` and
    ``requests_per_second`` (which apply to each endpoint, not to their sum).
    """

    url: str = Field(min_length=1)
    max_in_flight: int | None = Field(default=None, ge=1)
    requests_per_second: float | None = Field(default=None, gt=0)


class ModelConfig(Strict):
    """One role's endpoint and sampling settings."""

    backend: Backend = "local"
    # One URL, or several servers of the same model: requests go to the least
    # busy one, and one that keeps failing is set aside for a while.
    base_url: str | list[str | EndpointConfig] | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str = "default"
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    structured_method: StructuredMethod = StructuredMethod.AUTO
    extra_body: dict[str, JsonValue] = Field(default_factory=dict)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    max_parse_retries: int = Field(default=2, ge=0, le=10)
    # Per endpoint: requests in flight at once, and requests started per second.
    max_in_flight: int | None = Field(default=None, ge=1)
    requests_per_second: float | None = Field(default=None, gt=0)
    http_client: HttpClient = "auto"
    chat_protocol: ChatProtocol = "auto"
    # The assistant-message field the agent's earlier reasoning of a tool loop goes back in
    # (interleaved thinking): "reasoning_content" (vLLM, SGLang, DeepSeek), "reasoning"
    # (OpenRouter), or "none" for an endpoint that refuses it.
    reasoning_field: str = Field(default="reasoning_content", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

    @field_validator("base_url")
    @classmethod
    def _endpoint_list_not_empty(cls, value: object) -> object:
        if isinstance(value, list) and not value:
            raise ValueError("the endpoint list is empty; give at least one URL")
        return value

    def sent_reasoning_field(self) -> str | None:
        """The field earlier reasoning is sent in, or None when it is not sent."""
        return None if self.reasoning_field == "none" else self.reasoning_field

    def plain_chat(self) -> bool:
        return self.chat_protocol == "plain" or (self.chat_protocol == "auto" and self.backend == "local")

    def endpoints(self) -> list[EndpointConfig]:
        """Every server of this role, its limits resolved (empty without a base_url)."""
        urls = self.base_url if isinstance(self.base_url, list) else [self.base_url] if self.base_url else []
        resolved = []
        for entry in urls:
            endpoint = entry if isinstance(entry, EndpointConfig) else EndpointConfig(url=entry)
            resolved.append(endpoint.model_copy(update={
                "max_in_flight": endpoint.max_in_flight or self.max_in_flight,
                "requests_per_second": endpoint.requests_per_second or self.requests_per_second,
            }))
        return resolved


class ModelsConfig(Strict):
    """A default model plus per-role overrides (only the fields that differ)."""

    default: ModelConfig = Field(default_factory=ModelConfig)
    roles: dict[Role, dict[str, JsonValue]] = Field(default_factory=dict)

    def for_role(self, role: Role) -> ModelConfig:
        overrides = self.roles.get(role, {})
        return ModelConfig.model_validate({**self.default.model_dump(), **overrides})


class GenerationSettings(Strict):
    """What one ``generate`` call produces; recorded with the run for resume."""

    mode: Mode = Mode.USER
    n: int = Field(default=4, ge=1)
    seed: int = 0
    domains: list[str] = Field(default_factory=lambda: ["customer support for an online store"])
    personas: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    simulation: ToolSimulation = Field(default_factory=ToolSimulation)  # the simulated tool backend
    tool_source: ToolSource = ToolSource.SYNTHESIZE
    tools_file: str | None = None
    # Tools prepared once per domain (a tool library, stored in the run's database), or per trajectory.
    tool_prep: ToolPrep = ToolPrep.LIBRARY
    # Tool library files (or directories of them) to run against; recorded as given, the
    # libraries themselves are stored in the database.
    tool_libraries: list[str] = Field(default_factory=list)
    # Tools per trajectory drawn from its library as a coherent subset; None: the whole library.
    tool_subset: int | None = Field(default=None, ge=1)
    concurrency: int = Field(default=8, ge=1)
    # Tool-Exec: real SQL over a SQLite domain instead of the simulated world model.
    tool_exec: ToolExec = ToolExec.SIMULATED
    domain_db: str | None = None  # the domain's SQLite database
    domain_tools: str | None = None  # its SQL tools; default <stem>.tools.json beside it, else drafted from the schema
    # MCP: a server whose tools seed the run, and which answers the calls with tool_exec "mcp".
    mcp_server: str | None = None  # stdio: the command that starts it (one process per trajectory)
    mcp_url: str | None = None  # streamable HTTP: a running server, shared by every trajectory
    mcp_pool: int = Field(default=4, ge=1)  # stdio servers running at once
    mcp_timeout_s: float = Field(default=30.0, gt=0)  # per request (start-up, list, call)


def config_hash(*parts: BaseModel) -> str:
    """A short stable digest, so trajectories can be grouped by the config that made them."""
    blob = json.dumps([p.model_dump(mode="json") for p in parts], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
