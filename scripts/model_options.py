"""Model selection flags shared by every command that calls an LLM."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from dialogforge.config import ModelsConfig
    from dialogforge.config_file import ConfigFile


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument("--config", metavar="FILE", help="run config file (TOML or YAML): models per role, generation defaults")
    group.add_argument("--backend", choices=["local", "openai", "scripted"],
                       help="local: embedded llama.cpp model (the default); openai: any OpenAI-compatible "
                            "endpoint (implied by --base-url); scripted: the deterministic test model")
    group.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; "
                                          "several servers of one model: comma-separated (least busy first)")
    group.add_argument("--model", help="model name at the endpoint")
    group.add_argument("--gguf", metavar="PATH", help="GGUF file for the local backend (default: the packaged Gemma 3 270M)")


def config_file_from(args: argparse.Namespace) -> ConfigFile:
    from dialogforge.config_file import ConfigFile, load_config_file

    return load_config_file(args.config) if args.config else ConfigFile()


def models_config_from(args: argparse.Namespace, file: ConfigFile | None = None) -> ModelsConfig:
    from dialogforge.config_file import apply_flags, check_api_keys

    file = file or config_file_from(args)
    config = apply_flags(file.models, backend=args.backend, base_url=args.base_url, model=args.model)
    check_api_keys(config)
    return config


@contextmanager
def running_models(config: ModelsConfig, gguf: str | None) -> Iterator[ModelsConfig]:
    """Start the embedded model server when the local backend is chosen, and stop it after."""
    if config.default.backend != "local" or config.default.base_url:
        yield config
        return
    from dialogforge.models.local_server import LocalLlamaServer, served_config

    with LocalLlamaServer(gguf) as server:
        default = served_config(config.default, server.base_url)
        yield config.model_copy(update={"default": default})
