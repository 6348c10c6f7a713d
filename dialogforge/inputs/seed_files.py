"""Seeds at scale: domains and personas from files, tool sets from a directory.

A run of ten thousand dialogues wants thousands of domains and personas,
not a handful of ``--domain`` flags. A seeds file holds one per line (plain
text, ``#`` comments and blank lines skipped) or JSON Lines (each line a
string, or an object with a ``domain`` / ``persona`` / ``text`` field). A
tools directory holds one tool set per file (anything
``seed_tools.load_tools_file`` reads); each trajectory gets one set.

Sampling is reproducible from the run's ``--seed``: the domain and persona
come from ``dialogforge.runs.planning.initial_state`` as before, the tool set from
``dialogforge.runs.planning.tool_set_index``. The loaded lists are recorded with the
run, so resuming never needs the files again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dialogforge.errors import ConfigError, DialogforgeError
from dialogforge.inputs.seed_tools import load_tools_file
from dialogforge.languages import normalize_tag
from dialogforge.records import ToolSpec

SeedKind = Literal["domain", "persona"]
# What a tools directory may hold; anything else (README, .DS_Store) is skipped.
TOOL_FILE_SUFFIXES = (".json", ".jsonl")


class SeedFileError(DialogforgeError):
    """A domains/personas file or a tools directory cannot be used."""


@dataclass(frozen=True)
class ToolSet:
    name: str  # the file's name within the directory
    tools: list[ToolSpec]


@dataclass(frozen=True)
class Seed:
    text: str
    language: str | None = None  # a normalized BCP-47 tag


def load_seed_lines(path: str | Path, kind: SeedKind) -> list[str]:
    """Every domain (or persona) in ``path``, in file order, duplicates kept (they weight the sampling)."""
    return [seed.text for seed in load_seeds(path, kind)]


def seed_languages(path: str | Path, seeds: list[Seed], kind: SeedKind) -> dict[str, str]:
    """Each seed's own language, by its text; one text given two languages is an error."""
    languages: dict[str, str] = {}
    for seed in seeds:
        if seed.language is None:
            continue
        if languages.setdefault(seed.text, seed.language) != seed.language:
            raise SeedFileError(f"{path}: the {kind} {seed.text[:60]!r} is given two languages "
                                f"({languages[seed.text]}, {seed.language})")
    return languages


def load_seeds(path: str | Path, kind: SeedKind) -> list[Seed]:
    """``load_seed_lines`` with each line's ``language`` (JSON Lines objects only)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedFileError(f"{path}: cannot read {kind}s file ({exc.__class__.__name__})") from exc
    values = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        values.append(_json_value(path, number, stripped, kind) if stripped[0] in "{\"" else Seed(stripped))
    if not values:
        raise SeedFileError(f"{path}: no {kind}s in file")
    return values


def _json_value(path: Path, number: int, line: str, kind: SeedKind) -> Seed:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SeedFileError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
    language = None
    if isinstance(data, dict):
        language = data.get("language")
        data = next((data[k] for k in (kind, "text") if k in data), None)
        if data is None:
            raise SeedFileError(f"{path}: line {number}: a JSON object needs a {kind!r} or 'text' field")
    if not isinstance(data, str) or not data.strip():
        raise SeedFileError(f"{path}: line {number}: the {kind} must be a non-empty string")
    if language is not None:
        try:
            language = normalize_tag(language)
        except ConfigError as exc:
            raise SeedFileError(f"{path}: line {number}: language: {exc}") from None
    return Seed(data.strip(), language)


def load_tool_sets(directory: str | Path) -> list[ToolSet]:
    """One tool set per ``*.json`` / ``*.jsonl`` file, sorted by name (so the order, and sampling, is stable)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SeedFileError(f"{directory}: not a directory of tool files")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in TOOL_FILE_SUFFIXES)
    if not files:
        raise SeedFileError(f"{directory}: no tool files (*.json, *.jsonl) in the directory")
    return [ToolSet(p.name, load_tools_file(p)) for p in files]
