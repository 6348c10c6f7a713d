"""``dialogforge validate``: rule checks, the optional rubric judge and dedup, stored in the database."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Iterator

from dialogforge.dataset.options import DEFAULT_JUDGE_CONTEXT_TOKENS, DEFAULT_THRESHOLD, MIN_JUDGE_CONTEXT_TOKENS
from dialogforge.errors import ConfigError
from dialogforge.cli.model_options import add_model_options, models_config_from, running_models
from dialogforge.cli.options import add_db, add_json, positive_int

if TYPE_CHECKING:
    from dialogforge.dataset.validate import JudgeModelFor, ValidationSummary


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "validate", help="check trajectories: rules, rubric judge, duplicates",
        description="Run the rule checks and dedup on every finished trajectory, and with --judge the rubric "
                    "judge; results go to the database's validations table. Re-running is idempotent. "
                    "A capped trajectory that completed a task is cut after its last completed task and checked as "
                    "that. Once judged, a trajectory is valid only with a valid verdict; one whose judge call failed "
                    "stays unjudged (not valid) until a later --judge run judges it. "
                    "Without model flags the judge uses each run's recorded models. "
                    "Example: dialogforge validate --db run.db --judge --backend scripted",
    )
    add_db(parser)
    add_json(parser)
    parser.add_argument("--judge", action="store_true", help="also ask the judge role model to grade each task against its rubric")
    parser.add_argument("--rejudge", action="store_true", help="with --judge: judge again trajectories that already have a verdict")
    parser.add_argument("--concurrency", type=positive_int, default=8, help="trajectories judged at once")
    parser.add_argument("--judge-context-tokens", type=_context_tokens, metavar="N",
                        help=f"with --judge: most tokens one judge request may hold (default {DEFAULT_JUDGE_CONTEXT_TOKENS}); "
                             "a longer conversation has earlier tool results condensed, then its oldest exchanges left out")
    parser.add_argument("--threshold", type=_similarity, default=DEFAULT_THRESHOLD,
                        help=f"near-duplicate similarity, 0-1 (default {DEFAULT_THRESHOLD})")
    add_model_options(parser)
    parser.set_defaults(func=run)


def _similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value}")
    return value


def _context_tokens(text: str) -> int:
    value = positive_int(text)
    if value < MIN_JUDGE_CONTEXT_TOKENS:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_JUDGE_CONTEXT_TOKENS} tokens, got {value}")
    return value


def check_judge_flags(args: argparse.Namespace) -> None:
    """Flags that only mean something with --judge are an error without it, not silently ignored."""
    if args.judge:
        return
    given = [flag for flag, value in (("--rejudge", args.rejudge), ("--judge-context-tokens", args.judge_context_tokens),
                                      ("--config", args.config), ("--backend", args.backend), ("--base-url", args.base_url),
                                      ("--model", args.model), ("--gguf", args.gguf)) if value]
    if given:
        raise ConfigError(f"{given[0]} configures the judge, but --judge is not given (without it validate runs the rules only)")


def run(args: argparse.Namespace) -> int:
    from dialogforge.checkpoints.sqlite_file import check_db_path
    from dialogforge.dataset.validate import validate

    check_judge_flags(args)
    check_db_path(args.db, must_exist=True)
    if args.judge:
        with judge_models(args) as model_for:
            summary = validate(args.db, judge_model_for=model_for, concurrency=args.concurrency,
                               rejudge=args.rejudge, threshold=args.threshold,
                               judge_context_tokens=args.judge_context_tokens or DEFAULT_JUDGE_CONTEXT_TOKENS)
    else:
        summary = validate(args.db, threshold=args.threshold)
    print(json.dumps(summary.as_dict(), indent=1) if args.json else describe(summary))
    return 1 if summary.judge_errors else 0


@contextmanager
def judge_models(args: argparse.Namespace) -> Iterator[JudgeModelFor]:
    """The judge model per run: from the flags if any are given, else each run's recorded config."""
    from dialogforge.config import ModelsConfig, Role
    from dialogforge.config_file import check_api_keys
    from dialogforge.dataset.validate import recorded_models
    from dialogforge.models import get_model
    from dialogforge.models.preflight import check_endpoints

    if any([args.config, args.backend, args.base_url, args.model]):
        configs = {None: models_config_from(args)}
    else:
        configs = dict(recorded_models(args.db))
        for run_id, config in configs.items():
            if config is None:
                raise ConfigError(f"{args.db}: run {run_id} has no recorded models; choose the judge with --backend, --base-url or --config")
            check_api_keys(config)
    with ExitStack() as stack:
        models = {}
        for run_id, config in configs.items():
            judge_only = ModelsConfig(default=config.for_role(Role.JUDGE))
            running = stack.enter_context(running_models(judge_only, args.gguf))
            check_endpoints(running)
            models[run_id] = get_model(Role.JUDGE, running)
        yield (lambda run_id: models[None]) if None in models else (lambda run_id: models[run_id])


def describe(summary: ValidationSummary) -> str:
    cut = f" ({summary.cut} of them capped and cut after their last completed task)" if summary.cut else ""
    lines = [
        f"validated {summary.checked} trajectories: {summary.passed_rules} pass the rules{cut}, "
        f"{summary.judged_invalid} judged invalid, {summary.unjudged} unjudged, {summary.duplicates} duplicates, "
        f"{summary.valid} valid and unique"
    ]
    if summary.judge_asked:
        lines.append(f"judge: {summary.judged_now} judged now, {summary.judge_errors} failed after their retries"
                     + (" (re-run validate --judge to retry them)" if summary.judge_errors else ""))
    elif summary.judged or summary.unjudged:
        lines.append(f"judge: not run (no --judge); {summary.judged} keep their earlier verdict")
    else:
        lines.append("judge: not run (no --judge): nothing was judged, so validity here is the rules' alone")
    if summary.not_judged and (summary.judge_asked or summary.judged or summary.unjudged):
        lines.append(f"  {summary.not_judged} passing the rules were never put to the judge: valid by the rules alone")
    if summary.unjudged:
        lines.append(f"unjudged: {summary.unjudged} pass the rules but have no verdict, so they are not valid "
                     "(export --valid-only --include-unjudged admits them); why:")
        for reason, count in summary.unjudged_reasons.most_common(5):
            lines.append(f"  {count:>5} x {reason}")
    for sample in summary.judge_error_samples:
        lines.append(f"  judge error: {sample}")
    for reason, count in sorted(summary.failure_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {count:>5} x {reason}")
    return "\n".join(lines)
