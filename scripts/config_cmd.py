"""``dialogforge config --show``: the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import json

from dialogforge.cli.model_options import add_model_options, config_file_from, models_config_from


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "config", help="show the effective configuration",
        description="Show the effective configuration. Example: dialogforge config --show --config run.toml --base-url http://127.0.0.1:8000/v1",
    )
    parser.add_argument("--show", action="store_true", required=True, help="print the effective config as JSON")
    add_model_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.config import GenerationSettings
    from dialogforge.config_file import effective_view

    file = config_file_from(args)
    view = {
        "models": effective_view(models_config_from(args, file)),
        "generation": GenerationSettings.model_validate(file.generation).model_dump(mode="json"),
    }
    print(json.dumps(view, indent=2))
    return 0
