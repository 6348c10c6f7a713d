"""The OpenAI chat fine-tuning JSONL: only what the fine-tuning API accepts.

One record per sample: ``{"messages": [...], "tools": [...]}``, plus
``"parallel_tool_calls": true`` when the sample has an assistant turn with
several calls. Assistant tool calls carry their ids and JSON-string
arguments; tool results carry ``tool_call_id``. A turn whose call was invalid
(answered with an error) gets ``"weight": 0``: the model learns the recovery,
not the mistake.

The format has no place for reasoning: the fine-tuning schema's assistant
message holds ``content``, ``refusal``, ``name``, ``tool_calls``,
``function_call``, ``audio`` and ``weight`` only (``FineTuneChatCompletionRequestAssistantMessage``),
so ``export`` refuses ``--with-reasoning`` for this format.

Function names must match ``^[a-zA-Z0-9_-]{1,64}$``; the project's names also
admit dots, and a model's call may name anything. A name that does not fit
is rewritten (other characters become ``_``; a clash with another name of the
sample gets ``_2``, ``_3``...) the same way in the sample's tools, its calls
and its system prompt; ``ToolNames.renamed`` is the mapping the manifest records.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from dialogforge.dataset.samples import Msg, Sample, arguments_text

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")


class ToolNames:
    """Rewrites function names OpenAI's pattern refuses, per sample, and remembers every rewrite."""

    def __init__(self) -> None:
        self.renamed: dict[str, Any] = {}  # original -> new name (a sorted list if samples differed)

    def for_sample(self, names: Iterable[str]) -> dict[str, str]:
        names = set(names)
        used = {n for n in names if NAME_PATTERN.match(n)}
        mapping: dict[str, str] = {}
        for name in sorted(names - used):
            base = _NOT_ALLOWED.sub("_", name)[:64] or "unnamed_tool"
            new, k = base, 2
            while new in used:
                suffix = f"_{k}"
                new, k = base[: 64 - len(suffix)] + suffix, k + 1
            used.add(new)
            mapping[name] = new
            self._remember(name, new)
        return mapping

    def _remember(self, name: str, new: str) -> None:
        seen = self.renamed.get(name)
        if seen is None:
            self.renamed[name] = new
        elif seen != new and new not in (seen if isinstance(seen, list) else [seen]):
            self.renamed[name] = sorted([*(seen if isinstance(seen, list) else [seen]), new])


def renamed_text(text: str, mapping: dict[str, str]) -> str:
    """``text`` with each renamed tool name replaced where it stands as a whole name."""
    for name in sorted(mapping, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9_.\-]){re.escape(name)}(?![A-Za-z0-9_\-])", mapping[name], text)
    return text


def openai_record(sample: Sample, names: ToolNames) -> dict[str, Any]:
    """The fine-tuning record of one sample."""
    called = [c["name"] for m in sample.messages if m["role"] == "assistant" for c in m["tool_calls"]]
    mapping = names.for_sample([t["function"]["name"] for t in sample.tools] + called)
    messages = [{"role": "system", "content": renamed_text(sample.system, mapping)}]
    messages += [_message(m, mapping) for m in sample.messages]
    tools = [{**t, "function": {**t["function"], "name": mapping.get(t["function"]["name"], t["function"]["name"])}}
             for t in sample.tools]
    record: dict[str, Any] = {"messages": messages, "tools": tools}
    if sample.has_parallel_calls:
        record["parallel_tool_calls"] = True
    return record


def _message(m: Msg, mapping: dict[str, str]) -> dict[str, Any]:
    if m["role"] == "tool":
        return {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
    if m["role"] != "assistant":
        return {"role": m["role"], "content": m["content"]}
    calls = m["tool_calls"]
    out: dict[str, Any] = {"role": "assistant", "content": m["content"] if (m["content"] or not calls) else None}
    if calls:
        out["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": mapping.get(c["name"], c["name"]), "arguments": arguments_text(c)}}
            for c in calls
        ]
    if not m["train"]:
        out["weight"] = 0
    return out
