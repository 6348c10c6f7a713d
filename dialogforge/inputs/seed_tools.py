"""Seed tools from files: OpenAI tools JSON, BFCL func-doc JSONL, or an MCP tool list.

The file's shape picks the reader: a JSON array of OpenAI tools (or bare
functions), BFCL's one function per line, or MCP's (a bare array of MCP
tools, or a ``tools/list`` result; read by ``dialogforge.inputs.mcp_tools``).
A file in none of these shapes is refused, never read as the nearest one.

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
from dialogforge.inputs.mcp_tools import is_mcp_listing, is_mcp_tool, listing_entries, mcp_tool_spec, mcp_tool_specs
from dialogforge.records import FunctionSpec, ToolSpec
from dialogforge.tool_checks import schema_problem

_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "int": "integer", "bool": "boolean", "str": "string"}


def load_tools_file(path: str | Path) -> list[ToolSpec]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolFileError(f"{path}: cannot read tools file ({exc.__class__.__name__})") from exc
    document = _document(path, text)
    if is_mcp_listing(document) or (isinstance(document, list) and any(is_mcp_tool(e) for e in document)):
        entries = listing_entries(str(path), document) if isinstance(document, dict) else document
        if not entries:
            raise ToolFileError(f"{path}: no tools in file")
        return mcp_tool_specs(str(path), entries)
    numbered = _entries(path, text, document)
    if not numbered:
        raise ToolFileError(f"{path}: no tools in file")
    tools = [tool_spec_from_entry(path, where, entry) for where, entry in numbered]
    names = [t.name for t in tools]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolFileError(f"{path}: duplicate tool name {duplicates[0]!r}")
    return tools


def _document(path: Path, text: str) -> Any:
    """The file as one JSON document (an array, or an object such as a tools/list result),
    or None for JSON Lines. An object that is neither a listing nor one JSONL line has no known shape."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolFileError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
        return data
    if not stripped.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None  # several lines: JSONL, read line by line
    if isinstance(data, dict) and "tools" not in data and "\n" in stripped:
        raise ToolFileError(
            f"{path}: a JSON object with no \"tools\" list is no known tools file shape "
            "(expected an OpenAI tools array, an MCP tools array or tools/list result {\"tools\": [...]}, or BFCL JSONL)"
        )
    return data if is_mcp_listing(data) else None


def _entries(path: Path, text: str, document: Any) -> list[tuple[str, Any]]:
    if isinstance(document, list):
        return [(f"item {i + 1}", e) for i, e in enumerate(document)]
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
    if is_mcp_tool(entry):
        return mcp_tool_spec(str(path), where, entry)
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
