"""Options of the commands that continue runs (resume, fork): models, concurrency, progress."""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from dialogforge.cli.model_options import add_model_options, config_file_from, running_models
from dialogforge.cli.options import positive_float, positive_int

if TYPE_CHECKING:
    from dialogforge.config import ModelsConfig
    from dialogforge.progress import ProgressSink
    from dialogforge.runs.resume import ModelOverrides


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser)
    parser.add_argument("--concurrency", type=positive_int, help="trajectories in flight (default: the run's recorded value)")
    display = parser.add_argument_group("progress")
    display.add_argument("--progress", choices=["auto", "rich", "plain"], default="auto",
                         help="rich: live panel; plain: summary lines; auto (default): rich on a terminal")
    display.add_argument("--progress-interval", type=positive_float, default=10.0, metavar="S", help="seconds between plain lines (default 10)")
    display.add_argument("--quiet", action="store_true", help="no progress display")


def overrides_from(args: argparse.Namespace) -> ModelOverrides:
    """Model flags given on the command line; what is not given comes from the recorded run."""
    from dialogforge.runs.resume import ModelOverrides

    models = config_file_from(args).models if args.config else None
    return ModelOverrides(backend=args.backend, base_url=args.base_url, model=args.model, models=models)


def progress_from(args: argparse.Namespace) -> ProgressSink | None:
    from dialogforge.progress import make_progress

    return None if args.quiet else make_progress(args.progress, sys.stderr, interval_s=args.progress_interval)


def models_context(args: argparse.Namespace):
    """Per run: start the embedded model when needed, and check the endpoints before anything runs."""

    def wrap(config: ModelsConfig) -> AbstractContextManager[ModelsConfig]:
        return _checked(running_models(config, args.gguf))

    return wrap


class _checked:
    def __init__(self, inner: AbstractContextManager[ModelsConfig]):
        self.inner = inner

    def __enter__(self) -> ModelsConfig:
        from dialogforge.models.preflight import check_endpoints

        config = self.inner.__enter__()
        try:
            check_endpoints(config)
        except BaseException:
            self.inner.__exit__(None, None, None)
            raise
        return config

    def __exit__(self, *exc: object) -> bool | None:
        return self.inner.__exit__(*exc)
