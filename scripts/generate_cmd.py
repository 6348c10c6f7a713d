"""``dialogforge generate``: plan, record and run a batch of trajectories."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dialogforge.config import ToolPrep
from dialogforge.errors import ConfigError
from dialogforge.records import Limits, Mode, ToolExec, ToolSimulation, ToolSource
from dialogforge.cli.model_options import add_model_options, config_file_from, models_config_from, running_models
from dialogforge.cli.options import add_db, positive_float, positive_int, share
from dialogforge.cli.ray_options import add_executor_options, check_executor_args, generate_on_processes, generate_on_ray, sharded
from dialogforge.cli.showcase import SHOW_UP_TO, show_what_was_made

if TYPE_CHECKING:
    from dialogforge.config import GenerationSettings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate", help="generate trajectories",
        description="Generate trajectories. Example: dialogforge generate --backend scripted --mode user --n 8 --seed 1 --db run.db",
    )
    add_db(parser)
    add_model_options(parser)
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="user (default) or task")
    parser.add_argument("--n", type=positive_int, help="number of trajectories (default 4)")
    parser.add_argument("--seed", type=int, help="run seed (default 0)")
    parser.add_argument("--domain", action="append", help="domain text; repeat for several (sampled per trajectory)")
    parser.add_argument("--persona", action="append", help="user persona; repeat for several")
    parser.add_argument("--personas", type=positive_int, metavar="N",
                        help="sample N distinct personas for the run's domains once (the persona_sampler role), "
                             "dealt evenly to the trajectories; stored with the run, reused by resume")
    parser.add_argument("--language", metavar="TAG",
                        help="BCP-47 tag the user and the agent write in and tasks are written in (e.g. de, pt-BR, ja); "
                             "a domain's or persona's own language in a seeds file wins; `validate` flags turns in another")
    parser.add_argument("--budget-usd", type=positive_float, metavar="USD",
                        help="stop starting trajectories once the run has cost this much (in-flight ones finish; "
                             "needs models.prices in --config); resume --budget-usd raises it")
    parser.add_argument("--license", metavar="ID", help="the dataset's license for the card of an hf export (e.g. apache-2.0)")
    parser.add_argument("--tools", metavar="FILE", help="seed tools: OpenAI tools JSON or BFCL func-doc JSONL")
    parser.add_argument("--synthesize-more", action="store_true", help="with --tools: also synthesize complementary tools")
    parser.add_argument("--tool-library", action="append", metavar="FILE|DIR",
                        help="run against a tool library (from `dialogforge tools build`); repeat, or give a directory "
                             "of them: each trajectory gets one, and its domain")
    parser.add_argument("--tool-subset", type=positive_int, metavar="N",
                        help="give each trajectory N tools of its library that share entities (ids), drawn from its "
                             "seed (default: the whole library)")
    parser.add_argument("--tools-per-trajectory", action="store_true",
                        help="synthesize tools anew in every trajectory after its task is proposed, instead of one "
                             "tool library per domain built before the run starts (the default)")
    parser.add_argument("--tool-exec", choices=[t.value for t in ToolExec],
                        help="what answers tool calls: simulated (an LLM world model, default), sql (real SQL over --domain-db) "
                             "or mcp (a real MCP server: --mcp-server or --mcp-url)")
    parser.add_argument("--domain-db", metavar="FILE", help="Tool-Exec: the domain's SQLite database (implies --tool-exec sql); "
                        "build examples with: python -m dialogforge.cli.build_example_dbs DIR")
    parser.add_argument("--domain-tools", metavar="FILE",
                        help="Tool-Exec: the domain's SQL tools (default: <db stem>.tools.json beside the database, else drafted from its schema)")
    mcp = parser.add_argument_group("MCP server (its tools seed the run; it answers the calls unless --tool-exec simulated)")
    mcp.add_argument("--mcp-server", metavar='"COMMAND ARGS"',
                     help="a stdio MCP server: the command that starts it; one server process per trajectory")
    mcp.add_argument("--mcp-url", metavar="URL", help="a running streamable-HTTP MCP server (e.g. http://127.0.0.1:8000/mcp), "
                     "shared by every trajectory")
    mcp.add_argument("--mcp-pool", type=positive_int, metavar="N", help="stdio servers running at once (default 4)")
    mcp.add_argument("--mcp-timeout", type=positive_float, metavar="S", help="seconds per MCP request (default 30)")
    parser.add_argument("--max-turns", type=positive_int, help=f"max user turns (default {Limits().max_user_turns})")
    parser.add_argument("--max-tool-steps", type=positive_int, help=f"max tool rounds per user request (default {Limits().max_tool_steps})")
    parser.add_argument("--max-tasks", type=positive_int, help=f"max tasks per trajectory (default {Limits().max_tasks})")
    parser.add_argument("--token-budget", type=positive_int, help=f"stop a trajectory after this many tokens, all roles (default {Limits().token_budget})")
    parser.add_argument("--concurrency", type=positive_int, help="trajectories in flight (default 8)")
    context = parser.add_argument_group("context budgets (estimated tokens of one whole request; the tool simulator's: --tool-context-tokens)")
    context.add_argument("--agent-context-tokens", type=positive_int, metavar="N",
                         help=f"the agent's request budget; past it the oldest exchanges leave its window "
                              f"(default {Limits().agent_context_tokens})")
    context.add_argument("--user-context-tokens", type=positive_int, metavar="N",
                         help=f"the user simulator's request budget (default {Limits().user_context_tokens})")
    simulated = parser.add_argument_group("the simulated tool backend")
    simulated.add_argument("--tool-error-rate", type=share, metavar="P",
                           help=f"share of valid calls that meet a transient backend failure, at most 0.5; 0 disables "
                                f"(default {ToolSimulation().tool_error_rate})")
    simulated.add_argument("--tool-context-tokens", type=positive_int, metavar="N",
                           help=f"the tool simulator's request budget, in estimated tokens (default {ToolSimulation().context_tokens})")
    simulated.add_argument("--max-result-chars", type=positive_int, metavar="N",
                           help=f"longest simulated result the agent reads; a longer one is cut, with a note "
                                f"(default {ToolSimulation().max_result_chars})")
    parser.add_argument("--from-conversations", metavar="FILE",
                        help="start from existing conversations, one per JSONL line: OpenAI-style {\"messages\", \"tools\"?} "
                             "or BFCL multi-turn entries; --n takes the first N (default all)")
    seeds = parser.add_argument_group("seeds from files (sampled per trajectory from --seed)")
    seeds.add_argument("--domains-file", metavar="FILE", help="domains, one per line or JSONL ({\"domain\": ...}); replaces --domain")
    seeds.add_argument("--personas-file", metavar="FILE", help="personas, one per line or JSONL ({\"persona\": ...}); replaces --persona")
    seeds.add_argument("--tools-dir", metavar="DIR", help="a directory of seed tool files (*.json, *.jsonl), one tool set each; "
                       "each trajectory gets one set")
    add_executor_options(parser)
    display = parser.add_argument_group("progress")
    display.add_argument("--progress", choices=["auto", "rich", "plain"], default="auto",
                         help="rich: live panel; plain: a summary line every --progress-interval seconds; "
                              "auto (default): rich on a terminal, plain otherwise")
    display.add_argument("--progress-interval", type=positive_float, default=10.0, metavar="S", help="seconds between plain lines (default 10)")
    display.add_argument("--quiet", action="store_true", help="no progress display")
    display.add_argument("--no-show", dest="show", action="store_false",
                         help=f"a run of up to {SHOW_UP_TO} trajectories ends by printing one and writing it as an HTML "
                              "file beside the database; this leaves that out")
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace, base: GenerationSettings) -> GenerationSettings:
    """The config file's generation section, overridden by the flags actually given."""
    from pydantic import ValidationError

    from dialogforge.config import GenerationSettings
    from dialogforge.inputs.seed_files import load_seeds, seed_languages
    from dialogforge.languages import normalize_tag

    limit_flags = {"max_user_turns": args.max_turns, "max_tool_steps": args.max_tool_steps,
                   "max_tasks": args.max_tasks, "token_budget": args.token_budget,
                   "agent_context_tokens": getattr(args, "agent_context_tokens", None),
                   "user_context_tokens": getattr(args, "user_context_tokens", None)}
    limits = base.limits.model_copy(update={k: v for k, v in limit_flags.items() if v is not None})
    simulation_flags = {"tool_error_rate": getattr(args, "tool_error_rate", None),
                        "context_tokens": getattr(args, "tool_context_tokens", None),
                        "max_result_chars": getattr(args, "max_result_chars", None)}
    simulation = {**base.simulation.model_dump(), **{k: v for k, v in simulation_flags.items() if v is not None}}
    flags = {"mode": Mode(args.mode) if args.mode else None, "n": args.n, "seed": args.seed,
             "domains": args.domain, "personas": args.persona, "tools_file": args.tools,
             "language": getattr(args, "language", None), "sample_personas": getattr(args, "personas", None),
             "budget_usd": getattr(args, "budget_usd", None), "license": getattr(args, "license", None),
             "concurrency": args.concurrency, "domain_db": args.domain_db, "domain_tools": args.domain_tools,
             "mcp_server": args.mcp_server, "mcp_url": args.mcp_url, "mcp_pool": args.mcp_pool, "mcp_timeout_s": args.mcp_timeout,
             "tool_exec": ToolExec(args.tool_exec) if args.tool_exec else ToolExec.SQL if args.domain_db
             else ToolExec.MCP if args.mcp_server or args.mcp_url else None,
             "tool_libraries": getattr(args, "tool_library", None), "tool_subset": getattr(args, "tool_subset", None),
             "tool_prep": ToolPrep.PER_TRAJECTORY if getattr(args, "tools_per_trajectory", False) else None}
    if getattr(args, "domains_file", None):
        seeds = load_seeds(args.domains_file, "domain")
        flags.update(domains=[s.text for s in seeds], domain_languages=seed_languages(args.domains_file, seeds, "domain"))
    if getattr(args, "personas_file", None):
        seeds = load_seeds(args.personas_file, "persona")
        flags.update(personas=[s.text for s in seeds], persona_languages=seed_languages(args.personas_file, seeds, "persona"))
    if flags["sample_personas"] and (args.persona or getattr(args, "personas_file", None)):
        raise ConfigError("give --personas N (sampled) or --persona / --personas-file (given), not both")
    if flags["language"] is not None:
        flags["language"] = normalize_tag(flags["language"])
    settings = base.model_copy(update={k: v for k, v in flags.items() if v is not None})
    if settings.sample_personas and settings.personas and flags["sample_personas"] is None:
        settings = settings.model_copy(update={"sample_personas": None})  # the config's personas are given ones
    source = ToolSource.SEED_PLUS if args.synthesize_more else settings.tool_source
    if (settings.tools_file or getattr(args, "tools_dir", None)) and source is ToolSource.SYNTHESIZE:
        source = ToolSource.SEED
    try:
        return GenerationSettings.model_validate({**settings.model_dump(), "limits": limits.model_dump(),
                                                  "simulation": simulation, "tool_source": source})
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"invalid flag value: {'.'.join(map(str, error['loc']))}: {error['msg']}") from exc


def run(args: argparse.Namespace) -> int:
    from dialogforge.checkpoints.store_kinds import check_store
    from dialogforge.config import GenerationSettings
    from dialogforge.inputs.seed_files import load_tool_sets
    from dialogforge.inputs.seed_tools import load_tools_file
    from dialogforge.interrupt import resume_hint
    from dialogforge.models.preflight import check_endpoints
    from dialogforge.progress import make_progress
    from dialogforge.runs.budget import run_budget
    from dialogforge.runs.generate import generate
    from dialogforge.runs.mcp_backend import server_of, survey
    from dialogforge.runs.tool_backends import domain_for

    check_store(args.db, must_exist=False)
    check_executor_args(args)
    file = config_file_from(args)
    settings = settings_from(args, GenerationSettings.model_validate(file.generation))
    domain_for(settings)  # Tool-Exec: refuse a bad domain before any model starts or anything is written
    mcp_server = server_of(settings)  # likewise contradictory MCP flags
    if mcp_server is not None:
        if sharded(args) and settings.tool_exec is ToolExec.MCP:
            raise ConfigError(f"--tool-exec mcp runs its servers from this process; it cannot run with "
                              f"{'--executor ray' if sharded(args) == 'ray' else '--processes'}")
        if args.tools_dir or getattr(args, "from_conversations", None):
            raise ConfigError("--mcp-server/--mcp-url take the tools from the server; "
                              "--tools-dir and --from-conversations cannot be combined with them")
    if args.tools_dir and settings.tools_file:
        raise ConfigError("give --tools or --tools-dir, not both")
    tools = load_tools_file(settings.tools_file) if settings.tools_file else None
    tool_sets = load_tool_sets(args.tools_dir) if args.tools_dir else None
    libraries = _tool_libraries(args, settings)
    surveyed = survey(settings) if mcp_server is not None else None  # listed before any model starts
    starts = _conversation_starts(args, settings, tools)
    if starts is not None:
        settings = settings.model_copy(update={"n": len(starts)})
    if sharded(args) and settings.budget_usd is not None:
        raise ConfigError(f"--budget-usd is kept by one driver's engine; it cannot run with "
                          f"{'--executor ray' if sharded(args) == 'ray' else '--processes'} yet")
    models = models_config_from(args, file)
    run_budget(settings, models)  # a budget needs prices: refused before the model server starts
    _language_note(settings)
    with running_models(models, args.gguf) as models_config:
        check_endpoints(models_config)
        if args.executor == "ray":
            run_id, thread_ids, s = generate_on_ray(args, settings, models_config, tools, tool_sets, starts, libraries, surveyed)
            interrupted = False
        elif sharded(args) == "processes":
            run_id, thread_ids, s, interrupted = generate_on_processes(args, settings, models_config, tools, tool_sets,
                                                                       starts, libraries, surveyed)
        else:
            progress = None if args.quiet else make_progress(args.progress, sys.stderr, interval_s=args.progress_interval)
            result = generate(args.db, settings, models_config, tools, tool_sets=tool_sets, tool_libraries=libraries,
                              progress=progress, handle_signals=True, initial_states=starts, mcp_survey=surveyed)
            run_id, thread_ids, s, interrupted = result.run_id, result.thread_ids, result.summary, result.interrupted
    print(f"run {run_id}: {s.done} done, {s.failed} failed, stored in {args.db}")
    for reason, count in sorted(s.failures.items()):
        print(f"  failed: {count} x {reason}")
    print_budget(s, settings.budget_usd)
    if interrupted:
        sys.stderr.write(f"dialogforge: interrupted; unfinished trajectories are checkpointed: {resume_hint(args.db)}\n")
        return 130
    if args.show and len(thread_ids) <= SHOW_UP_TO:
        show_what_was_made(args.db, thread_ids)
    print(f"next: dialogforge list --db {args.db}   |   dialogforge show {thread_ids[0]} --db {args.db}")
    return 0


def print_budget(summary, budget_usd: float | None) -> None:
    """What the budget did (generate and resume)."""
    if budget_usd is None or summary.spent_usd is None:
        return
    from dialogforge.pricing import dollars

    print(f"spent {dollars(summary.spent_usd)} of the {dollars(budget_usd)} budget")
    if summary.not_started:
        print(f"budget reached: {summary.not_started} trajectories not started (still pending); "
              "`dialogforge resume --budget-usd MORE` runs them")


def _language_note(settings: GenerationSettings) -> None:
    from dialogforge.languages import detectable

    tags = {settings.language, *settings.domain_languages.values(), *settings.persona_languages.values()} - {None}
    for tag in sorted(t for t in tags if not detectable(t)):
        sys.stderr.write(f"dialogforge: note: the language check cannot identify {tag}; `validate` will not check "
                         "the language of its turns\n")


def _tool_libraries(args: argparse.Namespace, settings: GenerationSettings) -> list | None:
    """``--tool-library``: every library loaded and checked before anything starts; what contradicts it is refused."""
    from dialogforge.inputs.tool_library import load_tool_libraries

    if not settings.tool_libraries:
        return None
    given = [flag for flag, value in (("--domain", args.domain), ("--domains-file", args.domains_file),
                                      ("--synthesize-more", args.synthesize_more),
                                      ("--tools-per-trajectory", args.tools_per_trajectory)) if value]
    if given:
        raise ConfigError(f"--tool-library brings its own domain and tools; drop {given[0]}")
    return load_tool_libraries(settings.tool_libraries)


def _conversation_starts(args: argparse.Namespace, settings: GenerationSettings, tools: list | None) -> list | None:
    """``--from-conversations``: every line validated before anything starts (see ``dialogforge.inputs.conversations``)."""
    from dialogforge.inputs.conversations import load_conversations
    from dialogforge.runs.planning import conversation_states

    if not getattr(args, "from_conversations", None):
        return None
    if args.tools_dir or settings.tool_exec is ToolExec.SQL:
        raise ConfigError("--from-conversations cannot be combined with --tools-dir or --tool-exec sql")
    conversations = load_conversations(args.from_conversations)[: args.n or None]
    return conversation_states(settings.model_copy(update={"n": len(conversations)}), conversations, tools)
