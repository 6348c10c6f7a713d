"""ShareGPT JSONL as LLaMA-Factory reads it, and the ``dataset_info.json`` entry that names it.

One record per sample: ``{"conversations": [{"from", "value"}...], "system": str,
"tools": "<JSON list of functions>"}``. LLaMA-Factory's converter keeps only
``from`` and ``value`` of a turn, and wants ``human``/``observation`` turns at
even positions, ``gpt``/``function_call`` at odd ones, ending on the assistant's
side (its data/README.md and ``SharegptDatasetConverter``). So:

- Reasoning goes inline, as its templates' thought words: ``<think>\\n...\\n</think>\\n\\n``
  at the start of a ``gpt`` or ``function_call`` value (its ``FunctionFormatter``
  strips that span before parsing the call and puts it back in front).
- A ``function_call`` value is the call as JSON, ``{"name", "arguments": {...}}``,
  or a JSON list of them for parallel calls. Words said beside the calls stay
  in front of the calls, which are then wrapped in its tool-call words
  ``<tool_call>...</tool_call>``: everything outside that span is kept verbatim
  (LLaMA-Factory releases older than its tool-call words cannot read such a
  value; a sample without words beside its calls reads in every release).
- Several results of one round are one ``observation``, joined with
  ``\\n</tool_response>\\n<tool_response>\\n`` -- what LLaMA-Factory's own OpenAI
  converter does, so its Qwen templates render one ``<tool_response>`` per result.
- Masking: the format has no per-turn training flag, so an invalid call (one
  answered with an error) is left out together with its error result, and a
  turn left with no call goes too; the sample keeps the corrected call.
  Counted in the manifest (``invalid_calls_left_out``).
- For the same reason a sample that holds context turns (the segments after
  the first of a dialogue whose agent window slid: ``samples``) cannot be
  written without training those turns on a context they never saw; it is
  left out, counted under the manifest's ``samples_skipped``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from dialogforge.dataset.errors import ExportError
from dialogforge.dataset.samples import Msg, Sample, SampleSkipped, rounds, without_calls

THOUGHT = ("<think>\n", "\n</think>\n\n")
TOOL_CALL = ("<tool_call>", "</tool_call>")
RESULT_JOIN = "\n</tool_response>\n<tool_response>\n"
INFO_FILE = "dataset_info.json"


def sharegpt_record(sample: Sample, *, with_reasoning: bool, tally: Counter) -> dict[str, Any]:
    if any(m["role"] == "assistant" and not m["train"] and all(c["valid"] for c in m["tool_calls"]) for m in sample.messages):
        # context turns (or a nudged one): untrained, and not for an invalid call it could leave out
        raise SampleSkipped("holds_context_turns_sharegpt_cannot_mask")
    messages = without_calls(sample.messages, lambda c: not c["valid"], tally, "invalid_calls_left_out")
    turns: list[dict[str, str]] = []
    for m, results in rounds(messages):
        if m["role"] == "user":
            turns.append({"from": "human", "value": m["content"]})
        elif m["role"] == "assistant":
            turns.append(_assistant(m, with_reasoning))
        else:  # a system message inside the conversation, or a result answering no call
            raise SampleSkipped(f"{m['role']}_message_sharegpt_cannot_place")
        if results:
            turns.append({"from": "observation", "value": RESULT_JOIN.join(r["content"] for r in results)})
    _check_alternation(turns)
    tools = [tool["function"] for tool in sample.tools]
    return {"conversations": turns, "system": sample.system, "tools": json.dumps(tools, ensure_ascii=False)}


def _assistant(m: Msg, with_reasoning: bool) -> dict[str, str]:
    thought = f"{THOUGHT[0]}{m['reasoning']}{THOUGHT[1]}" if with_reasoning and m["reasoning"] else ""
    if not m["tool_calls"]:
        return {"from": "gpt", "value": thought + m["content"]}
    calls = [{"name": c["name"], "arguments": c["arguments"]} for c in m["tool_calls"]]
    payload = json.dumps(calls[0] if len(calls) == 1 else calls, ensure_ascii=False)
    if m["content"]:
        payload = f"{m['content']}{TOOL_CALL[0]}{payload}{TOOL_CALL[1]}"
    return {"from": "function_call", "value": thought + payload}


def _check_alternation(turns: list[dict[str, str]]) -> None:
    """LLaMA-Factory drops a sample whose turns do not alternate; it is left out here, counted."""
    ordered = all(turn["from"] in (("human", "observation") if i % 2 == 0 else ("gpt", "function_call"))
                  for i, turn in enumerate(turns))
    if not ordered or len(turns) % 2:
        raise SampleSkipped("turns_do_not_alternate_as_sharegpt_needs")


def dataset_info_entry(data_file: Path) -> dict[str, Any]:
    """The ``dataset_info.json`` description of an exported file, every column and tag spelled out."""
    return {
        "file_name": data_file.name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call"},
    }


def merged_dataset_info(data_file: Path) -> dict[str, Any]:
    """``dataset_info.json`` beside ``data_file`` with its entry (named after the file's stem)
    added or replaced; other datasets a LLaMA-Factory data directory lists are kept."""
    path = data_file.with_name(INFO_FILE)
    info: Any = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ExportError(f"{path}: exists and is not JSON ({exc}); move it away or fix it") from None
        if not isinstance(info, dict):
            raise ExportError(f"{path}: exists and is not a JSON object of dataset descriptions; move it away")
    return {**info, data_file.stem: dataset_info_entry(data_file)}
