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

from dialogforge.errors import DialogforgeError
from dialogforge.inputs.seed_tools import load_tools_file
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


def load_seed_lines(path: str | Path, kind: SeedKind) -> list[str]:
    """Every domain (or persona) in ``path``, in file order, duplicates kept (they weight the sampling)."""
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
        value = _json_value(path, number, stripped, kind) if stripped[0] in "{\"" else stripped
        values.append(value)
    if not values:
        raise SeedFileError(f"{path}: no {kind}s in file")
    return values


def _json_value(path: Path, number: int, line: str, kind: SeedKind) -> str:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SeedFileError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
    if isinstance(data, dict):
        data = next((data[k] for k in (kind, "text") if k in data), None)
        if data is None:
            raise SeedFileError(f"{path}: line {number}: a JSON object needs a {kind!r} or 'text' field")
    if not isinstance(data, str) or not data.strip():
        raise SeedFileError(f"{path}: line {number}: the {kind} must be a non-empty string")
    return data.strip()


def load_tool_sets(directory: str | Path) -> list[ToolSet]:
    """One tool set per ``*.json`` / ``*.jsonl`` file, sorted by name (so the order, and sampling, is stable)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SeedFileError(f"{directory}: not a directory of tool files")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in TOOL_FILE_SUFFIXES)
    if not files:
        raise SeedFileError(f"{directory}: no tool files (*.json, *.jsonl) in the directory")
    return [ToolSet(p.name, load_tools_file(p)) for p in files]
