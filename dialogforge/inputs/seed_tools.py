"""Seed tools from files: OpenAI tools JSON, or BFCL func-doc JSONL.

BFCL writes its own dialect of a function spec ("dict" for objects, "float"
for numbers, the string "None" for no default, a ``response`` result
schema); it is translated here into standard JSON Schema, and every spec is
validated before a run may use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialogforge.errors import ToolFileError
from dialogforge.records import FunctionSpec, ToolSpec
from dialogforge.tool_checks import schema_problem

_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer", "bool": "boolean", "str": "string"}


def load_tools_file(path: str | Path) -> list[ToolSpec]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolFileError(f"{path}: cannot read tools file ({exc.__class__.__name__})") from exc
    entries = _entries(path, text)
    if not entries:
        raise ToolFileError(f"{path}: no tools in file")
    tools = [tool_spec_from_entry(path, where, entry) for where, entry in entries]
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolFileError(f"{path}: duplicate tool name {duplicates[0]!r}")
    return tools


def _entries(path: Path, text: str) -> list[tuple[str, Any]]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolFileError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
        return [(f"item {i + 1}", e) for i, e in enumerate(data)]
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ToolFileError(f"{path}: line {number} is not valid JSON ({exc.msg})") from exc
    return entries


def tool_spec_from_entry(path: Path, where: str, entry: Any) -> ToolSpec:
    """One tool of a tools file (or of an imported conversation), checked; ``where`` names it in errors."""
    if not isinstance(entry, dict):
        raise ToolFileError(f"{path}: {where} is not a JSON object")
    function = entry.get("function") if entry.get("type") == "function" else entry
    if not isinstance(function, dict) or "name" not in function:
        raise ToolFileError(f"{path}: {where} has no tool name")
    parameters = _standard_schema(function.get("parameters") or {"type": "object", "properties": {}})
    problem = schema_problem(parameters)  # also refuses required parameters it never defines
    if problem:
        raise ToolFileError(f"{path}: {where} ({function['name']}): {problem}")
    result = entry.get("result_schema") or function.get("response") or {"type": "object"}
    try:
        return ToolSpec(
            function=FunctionSpec(name=function["name"], description=str(function.get("description", "")), parameters=parameters),
            result_schema=_standard_schema(result),
            source="seed",
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ToolFileError(f"{path}: {where}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def _standard_schema(schema: Any) -> Any:
    """BFCL's dialect -> JSON Schema, recursively."""
    if isinstance(schema, list):
        return [_standard_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = _BFCL_TYPES.get(value, value)
            if value == "any":
                del out[key]
        elif key == "default" and value == "None":
            continue
        elif key == "optional":
            continue
        else:
            out[key] = _standard_schema(value)
    return out
