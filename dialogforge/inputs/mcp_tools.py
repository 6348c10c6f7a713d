"""MCP tool lists as seed tools: a bare array of MCP tools, or a ``tools/list`` result.

MCP describes a tool as ``{name, title?, description?, inputSchema,
outputSchema?, annotations?}``; an OpenAI function tool wants ``{name,
description, parameters}`` and a name matching ``^[a-zA-Z0-9_-]{1,64}$``.
Here ``inputSchema`` becomes the parameters, ``outputSchema`` the result
schema, and the rest (the server's own name, the title, the read-only and
destructive hints) is kept on the spec's ``McpBinding``: ``tools/call``
needs the original name, and replaying a trajectory's calls needs the hints.

The same reader serves a file (``--tools``) and a live listing
(``--mcp-server`` / ``--mcp-url``), so both refuse alike: a tool with a key
MCP does not define, a hint that is not a boolean, a schema that is not an
object schema, or a listing that says it continues on another page is one
line naming the origin, the tool and the key. Nothing is loaded half.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import ValidationError

from dialogforge.errors import ToolFileError
from dialogforge.records import FunctionSpec, McpBinding, ToolSpec
from dialogforge.tool_checks import schema_problem

# Every key MCP defines for a tool (2025-06-18 .. 2026-07-28). icons, _meta and execution are
# about display and task support, nothing a training sample carries: accepted, not used.
TOOL_KEYS = frozenset({"name", "title", "description", "inputSchema", "outputSchema", "annotations", "icons", "_meta", "execution"})
ANNOTATION_KEYS = {"title": "title", "readOnlyHint": "read_only", "destructiveHint": "destructive",
                   "idempotentHint": "idempotent", "openWorldHint": "open_world"}
LISTING_KEYS = frozenset({"tools", "nextCursor", "_meta", "resultType", "ttlMs", "cacheScope"})
OPENAI_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")  # OpenAI's pattern, starting as FunctionSpec wants


def is_mcp_tool(entry: Any) -> bool:
    """An entry in MCP's shape: ``inputSchema`` is what no OpenAI or BFCL tool has."""
    return isinstance(entry, dict) and "inputSchema" in entry


def is_mcp_listing(data: Any) -> bool:
    """A ``tools/list`` result: an object whose ``tools`` is the list."""
    return isinstance(data, dict) and "tools" in data


def listing_entries(origin: str, data: dict[str, Any]) -> list[Any]:
    """The tools of a saved ``tools/list`` result, refused if it is only one page of several."""
    unknown = sorted(set(data) - LISTING_KEYS)
    if unknown:
        raise ToolFileError(f"{origin}: unknown key {unknown[0]!r} in an MCP tools/list result "
                            f"(it has {', '.join(sorted(LISTING_KEYS))})")
    if not isinstance(data["tools"], list):
        raise ToolFileError(f"{origin}: \"tools\" of an MCP tools/list result must be a list")
    if data.get("nextCursor") is not None:
        raise ToolFileError(f"{origin}: this MCP tools/list page has nextCursor {data['nextCursor']!r}: the listing "
                            "goes on in another page; save every page's tools, or list them live with --mcp-server/--mcp-url")
    return data["tools"]


def mcp_tool_specs(origin: str, entries: list[Any], *, where: str = "item") -> list[ToolSpec]:
    """Every tool of an MCP tool list as a seed spec, names sanitized (each mapping kept
    on ``spec.mcp.name``); duplicates refused by the server's own names."""
    names: list[str] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ToolFileError(f"{origin}: {where} {number} is not a JSON object")
        names.append(_name(origin, f"{where} {number}", entry))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ToolFileError(f"{origin}: duplicate tool name {duplicates[0]!r}")
    taken: set[str] = set()
    specs = []
    for number, (entry, name) in enumerate(zip(entries, names), start=1):
        spec = mcp_tool_spec(origin, f"{where} {number}", entry, sanitized_name(name, taken))
        taken.add(spec.name)
        specs.append(spec)
    return specs


def mcp_tool_spec(origin: str, where: str, entry: dict[str, Any], name: str | None = None) -> ToolSpec:
    """One MCP tool, checked key by key; ``name`` is the spec's (sanitized) name."""
    original = _name(origin, where, entry)
    label = f"{origin}: {where} ({original})"
    unknown = sorted(set(entry) - TOOL_KEYS)
    if unknown:
        raise ToolFileError(f"{label}: unknown key {unknown[0]!r} for an MCP tool (it has {', '.join(sorted(TOOL_KEYS))})")
    parameters = entry["inputSchema"]
    problem = schema_problem(parameters)
    if problem:
        raise ToolFileError(f"{label}: inputSchema: {problem}")
    result = entry.get("outputSchema")
    if result is not None:
        problem = schema_problem(result)
        if problem:
            raise ToolFileError(f"{label}: outputSchema: {problem.replace('parameters', 'outputSchema')}")
    for key in ("title", "description"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise ToolFileError(f"{label}: {key} must be a string")
    hints = _annotations(label, entry.get("annotations"))
    annotation_title = hints.pop("title", None)
    title = entry.get("title") or annotation_title
    try:
        return ToolSpec(
            function=FunctionSpec(name=name or sanitized_name(original, set()), description=entry.get("description") or "",
                                  parameters=parameters),
            result_schema=result or {"type": "object"},
            source="seed",
            mcp=McpBinding(name=original, title=title, **hints),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ToolFileError(f"{label}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def _name(origin: str, where: str, entry: dict[str, Any]) -> str:
    if "inputSchema" not in entry and ("function" in entry or "parameters" in entry):
        raise ToolFileError(f"{origin}: {where} is an OpenAI/BFCL tool among MCP tools; one file holds one format")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ToolFileError(f"{origin}: {where}: an MCP tool needs a \"name\" string")
    if "inputSchema" not in entry:
        raise ToolFileError(f"{origin}: {where} ({name}): an MCP tool needs \"inputSchema\"")
    return name


def _annotations(label: str, annotations: Any) -> dict[str, Any]:
    if annotations is None:
        return {}
    if not isinstance(annotations, dict):
        raise ToolFileError(f"{label}: annotations must be a JSON object")
    hints: dict[str, Any] = {}
    for key, value in annotations.items():
        field = ANNOTATION_KEYS.get(key)
        if field is None:
            raise ToolFileError(f"{label}: unknown key {key!r} in annotations (MCP has {', '.join(ANNOTATION_KEYS)})")
        wanted = str if field == "title" else bool
        if value is not None and not isinstance(value, wanted):
            raise ToolFileError(f"{label}: annotations.{key} must be {'a string' if wanted is str else 'true or false'}, "
                                f"got {value!r}")
        hints[field] = value
    return hints


def sanitized_name(name: str, taken: set[str]) -> str:
    """``name`` if OpenAI accepts it, else a close variant: characters outside
    ``[A-Za-z0-9_-]`` become ``_``, a leading digit or dash gets a ``t_`` prefix, and
    a name too long (or taken by an earlier rename) is cut and given a digest suffix."""
    if OPENAI_NAME.match(name) and name not in taken:
        return name
    candidate = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    if not re.match(r"[A-Za-z_]", candidate):
        candidate = f"t_{candidate}"
    if len(candidate) > 64 or candidate in taken:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        candidate = f"{candidate[:55]}_{digest}"
    return candidate


def renamed(tools: list[ToolSpec]) -> dict[str, str]:
    """Sanitized name -> the server's name, for every MCP tool that had to be renamed."""
    return {t.name: t.mcp.name for t in tools if t.mcp is not None and t.mcp.name != t.name}
