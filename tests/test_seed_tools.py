"""Seed tools from BFCL func-doc files and OpenAI tools JSON."""

import json

import pytest

from dialogforge.errors import ToolFileError
from dialogforge.inputs.seed_tools import load_tools_file
from dialogforge.tool_checks import schema_problem


def test_every_bfcl_func_doc_file_imports_as_standard_json_schema(bfcl_dir):
    files = sorted((bfcl_dir / "func_doc").glob("*.jsonl"))
    assert len(files) >= 10
    for path in files:
        tools = load_tools_file(path)
        assert tools, path
        for tool in tools:
            assert schema_problem(tool.function.parameters) is None
            text = json.dumps(tool.function.parameters)
            assert '"dict"' not in text and '"float"' not in text
            assert tool.source == "seed"


def test_bfcl_response_becomes_the_result_schema(bfcl_dir):
    tools = {t.name: t for t in load_tools_file(bfcl_dir / "func_doc" / "math_api.jsonl")}
    assert tools["add"].result_schema["properties"]["result"]["type"] == "number"


def test_openai_tools_json(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]))
    (tool,) = load_tools_file(path)
    assert tool.name == "get_weather" and tool.function.parameters["required"] == ["city"]


@pytest.mark.parametrize("content, expected", [
    ("[{\"type\": \"function\"", "not valid JSON"),
    ("{\"name\": \"a\"}\n{oops", "line 2 is not valid JSON"),
    ("[]", "no tools"),
    ("[42]", "item 1 is not a JSON object"),
    ("[{\"description\": \"no name\"}]", "has no tool name"),
    ("[{\"name\": \"bad name!\"}]", "name"),
    ("[{\"name\": \"a\", \"parameters\": {\"type\": \"string\"}}]", "type\": \"object"),
    ("[{\"name\": \"a\"}, {\"name\": \"a\"}]", "duplicate tool name"),
])
def test_malformed_tools_files_name_the_file_and_problem(tmp_path, content, expected):
    path = tmp_path / "tools.json"
    path.write_text(content)
    with pytest.raises(ToolFileError) as info:
        load_tools_file(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message
