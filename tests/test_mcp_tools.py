"""MCP tool lists as ``--tools`` files: both shapes, every field kept, names sanitized, bad files refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dialogforge.errors import ToolFileError
from dialogforge.inputs.mcp_tools import renamed, sanitized_name
from dialogforge.inputs.seed_tools import load_tools_file
from dialogforge.runs.reading import load_state
from tests.support.paths import REPO

WEATHER = {
    "name": "get_weather", "title": "Current weather", "description": "The weather in a city now.",
    "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["C", "F"]}},
                    "required": ["city"]},
    "outputSchema": {"type": "object", "properties": {"temperature": {"type": "number"}}, "required": ["temperature"]},
    "annotations": {"readOnlyHint": True, "openWorldHint": True},
}
WRITE_FILE = {
    "name": "files/write.v2", "description": "Write a file.",
    "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"}}, "required": ["path"]},
    "annotations": {"title": "Write a file", "readOnlyHint": False, "destructiveHint": True},
    "icons": [{"src": "https://example.org/i.png"}], "_meta": {"vendor": "x"},
}


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1))
    return path


@pytest.mark.parametrize("shape", ["bare array", "tools/list result"])
def test_both_shapes_keep_schemas_hints_titles_and_the_original_names(tmp_path: Path, shape: str) -> None:
    data = [WEATHER, WRITE_FILE] if shape == "bare array" else {"tools": [WEATHER, WRITE_FILE], "nextCursor": None}
    weather, write = load_tools_file(_write(tmp_path, "mcp.json", data))
    assert weather.function.parameters == WEATHER["inputSchema"]  # the bug: this used to be {}
    assert weather.result_schema == WEATHER["outputSchema"]
    assert weather.function.description == WEATHER["description"] and weather.source == "seed"
    assert (weather.mcp.name, weather.mcp.title, weather.mcp.read_only, weather.mcp.open_world) == ("get_weather", "Current weather", True, True)
    assert not weather.mcp.replayed
    assert write.name == "files_write_v2" and write.mcp.name == "files/write.v2"  # sanitized, mapping kept
    assert write.mcp.title == "Write a file" and write.mcp.destructive is True and write.mcp.replayed
    assert write.result_schema == {"type": "object"}
    assert renamed([weather, write]) == {"files_write_v2": "files/write.v2"}


def test_names_outside_the_openai_pattern_become_distinct_valid_names() -> None:
    taken: set[str] = set()
    names = []
    for original in ["a.b", "a/b", "1st-tool", "x" * 80, "ok_name", "ok_name"]:
        names.append(sanitized_name(original, taken))
        taken.add(names[-1])
    assert names[:3] == ["a_b", f"a_b_{names[1][-8:]}", "t_1st-tool"]
    assert len(names[3]) <= 64 and names[4] == "ok_name" and names[5] != "ok_name"
    assert len(set(names)) == len(names)


def test_an_mcp_tools_file_seeds_a_simulated_run_with_its_real_parameters(tmp_path: Path, run_cli) -> None:
    tools = _write(tmp_path, "mcp.json", {"tools": [WEATHER, WRITE_FILE]})
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--tools", str(tools), "--n", "2", "--seed", "3",
                     "--max-turns", "4", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    rows = run_cli("list", "--db", str(db), "--json").json()
    calls = [c for row in rows for m in load_state(db, row["thread_id"]).messages for c in m.tool_calls]
    assert calls, "the scripted agent called no tool"
    cities = [c.arguments.get("city") for c in calls if c.name == "get_weather"]
    paths = [c.arguments.get("path") for c in calls if c.name == "files_write_v2"]
    assert any(cities) or any(paths), calls  # arguments filled from inputSchema, not get_weather({})
    assert {row["tool_exec"] for row in rows} == {"simulated"}


REFUSED = {
    "a page of several": ({"tools": [WEATHER], "nextCursor": "page-2"}, "nextCursor 'page-2'"),
    "unknown tool key": ([{**WEATHER, "input_schema": {}}], "item 1 (get_weather): unknown key 'input_schema'"),
    "unknown annotation": ([{**WEATHER, "annotations": {"readonly": True}}], "unknown key 'readonly' in annotations"),
    "hint not a boolean": ([{**WEATHER, "annotations": {"readOnlyHint": "yes"}}], "annotations.readOnlyHint must be true or false"),
    "schema not an object": ([{**WEATHER, "inputSchema": {"type": "string"}}], "(get_weather): inputSchema: "),
    "bad output schema": ([{**WEATHER, "outputSchema": {"type": "object", "required": "x"}}], "(get_weather): outputSchema: "),
    "no inputSchema": ([WEATHER, {"name": "x", "title": "X", "inputSchema": {"type": "object"}},
                        {"name": "y", "description": "no schema"}], "item 3 (y): an MCP tool needs \"inputSchema\""),
    "mixed formats": ([WEATHER, {"type": "function", "function": {"name": "f"}}], "item 2 is an OpenAI/BFCL tool among MCP tools"),
    "unknown listing key": ({"tools": [WEATHER], "cursor": None}, "unknown key 'cursor' in an MCP tools/list result"),
    "no known shape": ({"functions": [WEATHER]}, "no known tools file shape"),
    "duplicate names": ([WEATHER, WEATHER], "duplicate tool name 'get_weather'"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_malformed_mcp_tools_file_is_refused_in_one_line_naming_file_tool_and_key(tmp_path: Path, case: str) -> None:
    data, expected = REFUSED[case]
    path = _write(tmp_path, "bad.json", data)
    with pytest.raises(ToolFileError) as caught:
        load_tools_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message, message


def test_the_mcp_sdk_loads_only_when_a_server_is_contacted() -> None:
    """``generate --help`` and the run machinery stay as fast as before: the SDK (over a second
    of imports) is imported by ``dialogforge.mcp.sdk`` alone, when a connection starts."""
    probe = (
        "import contextlib, io, sys\n"
        "import dialogforge.runs.generate, dialogforge.runs.resume, dialogforge.executors.mcp\n"
        "from dialogforge.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['generate', '--help'])\n"
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'mcp_types'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
