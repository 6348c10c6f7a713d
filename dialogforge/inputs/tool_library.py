"""The tool library file: the paper's tool preparation, done once and kept.

A library holds what tool preparation produced for one domain (from the
domain alone, or from seed tools): the realistic user questions, the tool
specs that answer them, the gap analysis's additions with the reason for
each, a result schema per tool, the harmonized type of every shared entity
(ids, timestamps), the drafts it refused and why, and provenance (models,
seed, prompt versions). ``dialogforge tools build`` writes one
(``dialogforge.runs.tool_libraries``); ``generate --tool-library`` and
``tools check`` read it here, so both see the same format and the same checks
(``dialogforge.inputs.library_checks``).

The file is JSON, one object::

    {"format": "dialogforge-tool-library", "version": 1, "name": "airline-bookings",
     "domain": "airline bookings", "questions": [...], "tools": [<ToolSpec>, ...],
     "gap_additions": [{"tool": "search_flights", "reason": "..."}],
     "predicted_results": ["get_booking", ...], "entity_types": {"booking_id": "string"},
     "rejected": [{"tool": "format_date", "stage": "draft", "reason": "..."}],
     "notes": [], "provenance": {...}}

Each tool is a ``ToolSpec`` (an OpenAI function plus its ``result_schema``
and ``source``: ``seed`` or ``synthesized``). A library's identity is a
digest of its domain and tools, so two runs that share it share byte-
identical specs. Unknown fields are errors: a typo must not pass silently.
This module is the library format only; seed tool files
(``dialogforge.inputs.seed_tools``) are another format with their own loader.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from dialogforge.errors import DialogforgeError
from dialogforge.records import Strict, TokenUsage, ToolSpec
from dialogforge.tool_checks import entity_types_in

FORMAT = "dialogforge-tool-library"
VERSION = 1
MAX_GAP_ADDITIONS = 10  # the paper's gap analysis proposes up to 10 complementary tools
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class ToolLibraryError(DialogforgeError):
    """A tool library file cannot be read, or holds something a run must not use."""


class GapAddition(Strict):
    tool: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class Rejection(Strict):
    """A draft tool preparation refused, and why (the paper's rules, an invalid schema, a duplicate)."""

    tool: str
    stage: Literal["draft", "gap", "result_schema"]
    reason: str = Field(min_length=1)


class SeedSource(Strict):
    file: str
    sha256: str
    tools: int = Field(ge=0)


class Provenance(Strict):
    dialogforge: str
    created_at: str
    seed: int
    models: dict[str, dict[str, str]] = Field(default_factory=dict)  # role -> backend, model
    prompts: dict[str, str] = Field(default_factory=dict)  # prompt name -> digest of its text
    seed_tools: SeedSource | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)


class ToolLibrary(Strict):
    format: Literal["dialogforge-tool-library"] = FORMAT
    version: Literal[1] = VERSION
    name: str = Field(pattern=NAME_PATTERN)
    domain: str = Field(min_length=1)
    questions: list[str] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(min_length=1)
    gap_additions: list[GapAddition] = Field(default_factory=list)
    predicted_results: list[str] = Field(default_factory=list)  # tools whose result schema was predicted
    entity_types: dict[str, str] = Field(default_factory=dict)
    rejected: list[Rejection] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # where the build got less than it asked for, and how much
    provenance: Provenance | None = None

    @cached_property
    def id(self) -> str:
        """What the library is, not where it came from: a digest of its domain and tools."""
        blob = json.dumps({"domain": self.domain, "tools": [t.model_dump(mode="json") for t in self.tools]},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    def origin(self, name: str) -> str:
        """seed, gap (the gap analysis added it) or draft."""
        tool = next(t for t in self.tools if t.name == name)
        if tool.source == "seed":
            return "seed"
        return "gap" if name in {g.tool for g in self.gap_additions} else "draft"

    def own_results(self) -> list[str]:
        """Seed tools whose result schema is their own (not predicted): never rewritten."""
        predicted = set(self.predicted_results)
        return [t.name for t in self.tools if t.source == "seed" and t.name not in predicted]

    def tools_named(self, names: list[str]) -> list[ToolSpec]:
        """The library's own spec objects for ``names``, in library order."""
        wanted = set(names)
        missing = wanted - set(self.tool_names())
        if missing:
            raise ToolLibraryError(f"library {self.name}: no tool {sorted(missing)[0]!r}")
        return [t for t in self.tools if t.name in wanted]


def slug(text: str) -> str:
    """A library name from a domain: lowercase words joined by dashes."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:64].strip("-") or "library"


# ------------------------------------------------------------ reading and writing


def parse_tool_library(path: str | Path, text: str) -> ToolLibrary:
    """The library in ``text`` (read from ``path``), its format checked; the first problem raised as one line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolLibraryError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ToolLibraryError(f'{path}: not a tool library (no "format": "{FORMAT}"); seed tool files go to --tools, '
                               "and `dialogforge tools build` makes a library")
    if data.get("version") != VERSION:
        raise ToolLibraryError(f"{path}: tool library version {data.get('version')!r} is not supported (this dialogforge reads {VERSION})")
    try:
        return ToolLibrary.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top level)"
        raise ToolLibraryError(f"{path}: {where}: {first['msg']}") from exc


def read_library_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolLibraryError(f"{path}: cannot read tool library ({exc.__class__.__name__})") from exc


def load_tool_library(path: str | Path) -> ToolLibrary:
    """A library a run may use: parsed, and every check passed (the first problem is the error)."""
    from dialogforge.inputs.library_checks import library_problems

    library = parse_tool_library(path, read_library_text(path))
    problems = library_problems(library)
    if problems:
        more = f" (and {len(problems) - 1} more: dialogforge tools check {path})" if len(problems) > 1 else ""
        raise ToolLibraryError(f"{path}: {problems[0]}{more}")
    return library


def load_tool_libraries(paths: list[str | Path]) -> list[ToolLibrary]:
    """Every library in ``paths`` (files, or directories of ``*.json`` files), each once, names unique."""
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(p for p in given.iterdir() if p.is_file() and p.suffix == ".json")
            if not found:
                raise ToolLibraryError(f"{given}: no tool libraries (*.json) in the directory")
            files.extend(found)
        else:
            files.append(given)
    libraries: list[ToolLibrary] = []
    for path in files:
        library = load_tool_library(path)
        clash = next((other for other in libraries if other.name == library.name), None)
        if clash is not None:
            same = "the same library" if clash.id == library.id else "another library"
            raise ToolLibraryError(f"{path}: library name {library.name!r} is taken by {same} given before it")
        libraries.append(library)
    return libraries


def library_json(library: ToolLibrary) -> str:
    return json.dumps(library.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"


def write_tool_library(library: ToolLibrary, out: str | Path) -> Path:
    """Write atomically: a kill never leaves a half-written library at ``out``."""
    out = Path(out)
    fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.name}.tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(library_json(library))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def check_out_path(out: str | Path) -> Path:
    """Refuse an unusable ``--out`` before any model is asked anything."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise ToolLibraryError(f"{out}: is a directory; give a file path for the library")
    if not parent.is_dir():
        raise ToolLibraryError(f"{out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ToolLibraryError(f"{out}: directory {parent} is not writable")
    return out


# ------------------------------------------------------------ a coherent subset per trajectory


def entity_keys(tool: ToolSpec) -> set[str]:
    """What ties a tool to others: the ids it takes or returns (``order_id``), and the thing it
    acts on (``order`` in get_order / search_orders). Bare ``id`` and timestamps tie everything
    to everything, so they do not count."""
    keys = {name for schema in (tool.function.parameters, tool.result_schema)
            for name, _ in entity_types_in(schema) if name.endswith("_id")}
    verb, _, rest = tool.name.partition("_")
    if rest:
        keys.add("noun:" + rest.split("_")[0].rstrip("s"))
    return keys


def coherent_subset(library: ToolLibrary, size: int, rng: random.Random) -> list[str]:
    """``size`` tools that belong together: from a random anchor, grow by the tool sharing
    the most entities with those chosen (ties in a random order); a tool sharing none joins
    only when nothing else does. Returned in library order, so subsets list tools alike."""
    tools = library.tools
    if size >= len(tools):
        return library.tool_names()
    keys = {t.name: entity_keys(t) for t in tools}
    order = [t.name for t in tools]
    rng.shuffle(order)
    chosen = [order[0]]
    covered = set(keys[order[0]])
    while len(chosen) < size:
        rest = [name for name in order if name not in chosen]
        best = max(rest, key=lambda name: len(keys[name] & covered))  # max keeps the first of equals: rng order
        chosen.append(best)
        covered |= keys[best]
    wanted = set(chosen)
    return [name for name in library.tool_names() if name in wanted]
