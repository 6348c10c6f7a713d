"""The run config file (TOML or YAML) and how flags and the environment override it.

Precedence, lowest first: built-in defaults, the config file, CLI flags.
API keys only ever come from the environment; the file names the variable.
Every problem is a ``ConfigError`` with one line naming the file and field.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import Field, ValidationError, model_validator

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig, Role, Strict
from dialogforge.errors import ConfigError

DEFAULT_KEY_ENV = ModelConfig().api_key_env


class ConfigFile(Strict):
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    generation: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _roles_and_generation_are_valid(self) -> "ConfigFile":
        for role in Role:
            self.models.for_role(role)  # raises on an unknown or mistyped override
        GenerationSettings.model_validate(self.generation)
        return self


def load_config_file(path: str | Path) -> ConfigFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__})") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {first}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/mapping")
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-")) or "(top level)"
        raise ConfigError(f"{path}: {where}: {error['msg']}") from exc


def apply_flags(config: ModelsConfig, *, backend: str | None, base_url: str | None, model: str | None) -> ModelsConfig:
    """CLI flags override the file's default model; ``--base-url`` implies the openai backend."""
    updates: dict[str, Any] = {}
    if base_url:
        urls = [u.strip() for u in base_url.split(",") if u.strip()]  # several servers: comma-separated
        updates.update(base_url=urls if len(urls) > 1 else base_url, backend=backend or "openai")
    elif backend:
        updates["backend"] = backend
    if model:
        updates["model"] = model
    if not updates:
        return config
    try:
        default = ModelConfig.model_validate({**config.default.model_dump(), **updates})
    except ValidationError as exc:
        raise ConfigError(f"invalid flag value: {exc.errors()[0]['msg']}") from exc
    return config.model_copy(update={"default": default})


def check_api_keys(config: ModelsConfig) -> None:
    """A key variable the config names on purpose must be set; the default one is optional
    because local servers (vLLM, llama.cpp) need no key."""
    for role in Role:
        role_config = config.for_role(role)
        if role_config.backend == "openai" and role_config.api_key_env != DEFAULT_KEY_ENV and not os.environ.get(role_config.api_key_env):
            raise ConfigError(f"{role.value}: environment variable {role_config.api_key_env} (api_key_env) is not set")


def masked_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def effective_view(config: ModelsConfig) -> dict[str, Any]:
    """The resolved per-role config, safe to print or store: keys are shown as set/unset only."""
    view: dict[str, Any] = {}
    for role in Role:
        c = config.for_role(role).model_dump(mode="json")
        urls = c["base_url"]
        if isinstance(urls, list):  # several servers: mask each
            c["base_url"] = [{**u, "url": masked_url(u["url"])} if isinstance(u, dict) else masked_url(u) for u in urls]
        else:
            c["base_url"] = masked_url(urls)
        c["api_key"] = "set (masked)" if os.environ.get(c["api_key_env"]) else "unset"
        view[role.value] = c
    return view
