"""LLaMA-Factory's reading of a ShareGPT dataset, written from its documentation and converter.

``data/README.md``: a ``dataset_info.json`` entry names the file, ``formatting:
sharegpt``, the ``columns`` (messages, system, tools) and the ``tags``;
``human``/``observation`` turns stand at even positions and ``gpt``/``function_call``
at odd ones (``SharegptDatasetConverter`` drops a sample that breaks this, or
has an odd number of turns). A ``function_call`` value is read by
``FunctionFormatter``: with the tool-call words ``<tool_call>``/``</tool_call>``
present, everything outside that span is kept as the turn's text and the span
holds the call JSON; otherwise the thought ``<think>\\n...\\n</think>\\n\\n`` is cut
out and the rest must be the JSON: ``{"name", "arguments"}`` or a list of them.
Several results in one observation are joined the way its OpenAI converter
joins them, which its Qwen templates render as one ``<tool_response>`` each.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THOUGHT = re.compile(re.escape("<think>\n") + "(.*?)" + re.escape("\n</think>\n\n"), re.DOTALL)
TOOL_CALL = re.compile(re.escape("<tool_call>") + "(.*?)" + re.escape("</tool_call>"), re.DOTALL)
QWEN_OBSERVATION = "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
RESPONSE = re.compile(r"<tool_response>\n(.*?)\n</tool_response>", re.DOTALL)


class BrokenSample(ValueError):
    """LLaMA-Factory would skip this sample (or fail on it)."""


@dataclass
class Turn:
    role: str  # user | assistant | observation
    text: str = ""
    thought: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    results: list[str] = field(default_factory=list)


def load_entry(data_file: Path) -> dict[str, Any]:
    info = json.loads((data_file.parent / "dataset_info.json").read_text(encoding="utf-8"))
    entry = info[data_file.stem]
    assert entry["file_name"] == data_file.name and entry["formatting"] == "sharegpt", entry
    return entry


def convert(example: dict[str, Any], entry: dict[str, Any]) -> tuple[str, list[dict[str, Any]], list[Turn]]:
    """(system, tools, turns) as LLaMA-Factory reads one line; BrokenSample where it would not."""
    columns, tags = entry["columns"], {**_DEFAULT_TAGS, **entry.get("tags", {})}
    messages = example[columns["messages"]]
    role_of = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["observation_tag"]: "observation",
               tags["function_tag"]: "function"}
    accept = ((tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], tags["function_tag"]))
    turns = []
    for i, message in enumerate(messages):
        if set(message) - {tags["role_tag"], tags["content_tag"]}:
            raise BrokenSample(f"turn {i} has keys the converter drops: {sorted(message)}")
        tag, value = message[tags["role_tag"]], message[tags["content_tag"]]
        if tag not in accept[i % 2]:
            raise BrokenSample(f"invalid role tag {tag!r} at turn {i}")
        turns.append(_turn(role_of[tag], value))
    if len(turns) % 2:
        raise BrokenSample("invalid message count")
    tools = json.loads(example[columns["tools"]]) if example.get(columns["tools"]) else []
    for tool in tools:
        fn = tool.get("function") if tool.get("type") == "function" else tool
        if not (isinstance(fn.get("name"), str) and isinstance(fn.get("parameters"), dict)):
            raise BrokenSample(f"tool description without name/parameters: {tool}")
    return example.get(columns["system"], ""), tools, turns


_DEFAULT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call"}


def _turn(role: str, value: str) -> Turn:
    if role == "user":
        return Turn("user", value)
    if role == "observation":
        rendered = QWEN_OBSERVATION.replace("{{content}}", value, 1)
        return Turn("observation", results=RESPONSE.findall(rendered))
    thought_match = THOUGHT.match(value)
    thought = thought_match.group(1) if thought_match else None
    rest = value[thought_match.end():] if thought_match else value
    if role == "assistant":
        return Turn("assistant", rest, thought)
    call_match = TOOL_CALL.search(rest)
    if call_match:
        text, payload = rest[: call_match.start()] + rest[call_match.end():], call_match.group(1)
    else:
        text, payload = "", rest
    try:
        calls = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise BrokenSample(f"Invalid JSON format in function message: {payload[:80]!r} ({exc})") from None
    calls = calls if isinstance(calls, list) else [calls]
    for call in calls:
        if not (isinstance(call, dict) and isinstance(call.get("name"), str) and "arguments" in call):
            raise BrokenSample(f"function call without name/arguments: {call}")
    return Turn("assistant", text, thought, calls)
