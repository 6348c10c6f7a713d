"""``dialogforge tools``: build a tool library once, show it, check it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dialogforge.cli.model_options import add_model_options, config_file_from, models_config_from, running_models

if TYPE_CHECKING:
    from dialogforge.inputs.tool_library import ToolLibrary
    from dialogforge.records import JsonObject


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "tools", help="build, show or check a tool library",
        description="Tool preparation, once per domain: build a tool library (questions, specs, gap analysis, "
                    "result schemas, entity types), show it, check it; `generate --tool-library FILE` runs against it. "
                    "Example: dialogforge tools build --backend scripted --domain 'airline bookings' --out airline.json",
    )
    kinds = parser.add_subparsers(dest="tools_kind", required=True, metavar="{build,show,check}")
    build = kinds.add_parser(
        "build", help="build a tool library for a domain",
        description="Generate 20-30 user questions for the domain, draft tools that answer them (beside the seed "
                    "tools, kept as they are), add up to 10 complementary tools by gap analysis, predict every "
                    "result schema and type shared entities alike; write the library. "
                    "Example: dialogforge tools build --backend scripted --domain 'support tickets' "
                    "--tools ../shared/data/bfcl/func_doc/ticket_api.jsonl --out tickets.json",
    )
    build.add_argument("--domain", required=True, help="the assistant's domain, e.g. 'airline bookings'")
    build.add_argument("--tools", metavar="SEED_FILE", help="seed tools (OpenAI tools JSON or BFCL func-doc JSONL), kept intact")
    build.add_argument("--out", required=True, metavar="FILE", help="where to write the library (JSON)")
    build.add_argument("--seed", type=int, default=0, help="seed of every model call (default 0)")
    build.add_argument("--name", help="the library's name (default: from the domain)")
    add_model_options(build)
    build.set_defaults(func=run_build)
    for kind, text, func in (("show", "print a tool library readably", run_show),
                             ("check", "validate a tool library: one line per problem", run_check)):
        sub = kinds.add_parser(kind, help=text, description=f"{text[0].upper()}{text[1:]}. "
                               f"Example: dialogforge tools {kind} airline.json")
        sub.add_argument("file", metavar="FILE")
        sub.set_defaults(func=func)


def run_build(args: argparse.Namespace) -> int:
    from dialogforge.inputs.tool_library import check_out_path
    from dialogforge.models.preflight import check_endpoints
    from dialogforge.runs.tool_libraries import build_tool_library

    check_out_path(args.out)
    if args.name is not None:
        _check_name(args.name)
    file = config_file_from(args)
    with running_models(models_config_from(args, file), args.gguf) as models_config:
        check_endpoints(models_config)
        library = build_tool_library(args.domain, models_config, tools_file=args.tools, seed=args.seed,
                                     name=args.name, out=args.out)
    print(f"wrote {args.out}: {_summary(library)}")
    print(f"next: dialogforge tools show {args.out}   |   dialogforge generate --tool-library {args.out} --db run.db")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from dialogforge.inputs.library_checks import library_problems
    from dialogforge.inputs.tool_library import parse_tool_library, read_library_text

    library = parse_tool_library(args.file, read_library_text(args.file))
    for line in show_lines(library):
        print(line)
    problems = library_problems(library)
    if problems:
        print(f"problems: {len(problems)} (dialogforge tools check {args.file})")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from dialogforge.inputs.library_checks import library_problems
    from dialogforge.inputs.tool_library import ToolLibraryError, parse_tool_library, read_library_text

    library = parse_tool_library(args.file, read_library_text(args.file))
    problems = library_problems(library)
    for problem in problems:
        print(f"{args.file}: {problem}")
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ToolLibraryError(f"{args.file}: {len(problems)} problem{plural}, the first: {problems[0]}")
    print(f"{args.file}: ok: {_summary(library)}")
    return 0


def _check_name(name: str) -> None:
    import re

    from dialogforge.inputs.tool_library import NAME_PATTERN, ToolLibraryError

    if not re.match(NAME_PATTERN, name):
        raise ToolLibraryError(f"--name {name!r}: use lowercase letters, digits, '-', '_' or '.' (at most 64)")


def _summary(library: ToolLibrary) -> str:
    origins = [library.origin(name) for name in library.tool_names()]
    return (f"library {library.name} ({library.domain}): {len(library.tools)} tools ({origins.count('seed')} seed, "
            f"{origins.count('draft')} drafted, {origins.count('gap')} from the gap analysis), "
            f"{len(library.questions)} questions, {len(library.entity_types)} entity types, {len(library.rejected)} drafts refused")


def show_lines(library: ToolLibrary) -> list[str]:
    lines = [_summary(library), f"id {library.id}"]
    if library.provenance is not None:
        p = library.provenance
        models = ", ".join(f"{role} {m.get('backend')}/{m.get('model')}" for role, m in p.models.items())
        seeds = f", seed tools {p.seed_tools.file} ({p.seed_tools.tools})" if p.seed_tools else ""
        lines.append(f"built {p.created_at} by dialogforge {p.dialogforge}: {models}; seed {p.seed}{seeds}; "
                     f"{p.usage.calls} calls, {p.usage.total} tokens")
    lines += ["", "questions:", *(f"  {i}. {q}" for i, q in enumerate(library.questions, 1)), "", "tools:"]
    predicted = set(library.predicted_results)
    for tool in library.tools:
        params = tool.function.parameters
        required = set(params.get("required") or [])
        args = ", ".join(f"{name}{'*' if name in required else ''}: {(spec or {}).get('type', 'any')}"
                         for name, spec in (params.get("properties") or {}).items())
        result = _schema_text(tool.result_schema) + (" (predicted)" if tool.name in predicted else "")
        lines.append(f"  {tool.name}({args}) -> {result}   [{library.origin(tool.name)}]")
        text = tool.function.description
        if text:
            lines.append(f"      {text if len(text) <= 200 else text[:90] + ' ... ' + text[-100:]}")
    if library.gap_additions:
        lines += ["", "gap analysis added:", *(f"  {g.tool}: {g.reason}" for g in library.gap_additions)]
    if library.entity_types:
        lines += ["", "entity types: " + ", ".join(f"{name} {kind}" for name, kind in library.entity_types.items())]
    if library.rejected:
        lines += ["", "refused:", *(f"  {r.tool} ({r.stage}): {r.reason}" for r in library.rejected)]
    if library.notes:
        lines += ["", "notes:", *(f"  {note}" for note in library.notes)]
    return lines


def _schema_text(schema: JsonObject, limit: int = 6) -> str:
    """A result schema in a few words: its type and first properties."""
    kind = schema.get("type", "any")
    items = schema.get("items")
    if kind == "array" and isinstance(items, dict):
        return f"array of {_schema_text(items, limit)}"
    properties = schema.get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    if not names:
        return str(kind)
    return f"{kind} {{{', '.join(names[:limit])}{', ...' if len(names) > limit else ''}}}"
