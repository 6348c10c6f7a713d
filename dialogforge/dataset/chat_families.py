"""What each model family's chat template needs from a message list, for the Hugging Face export.

A trainer (TRL's ``SFTTrainer``, axolotl's ``chat_template`` datasets) passes
``example["messages"]`` and ``example["tools"]`` to the model's chat template
as stored. Templates differ in what they read, and most fail or silently
mangle a sample written for another family:

- **hf** (no ``--chat-template``): the Hugging Face message convention. Tool-call
  arguments are objects, reasoning is ``reasoning_content``, parallel calls are
  one assistant message, results are strings. Qwen3 and GLM-4.5 templates read
  exactly this, so ``qwen3`` and ``glm4-moe`` are this convention under a name.
- **llama3** (Llama 3.1 / 3.2): one call per assistant message (it raises on
  more), so parallel calls become consecutive call-and-result rounds; any text
  said beside a call has no place (the template prints only the call) and is
  left out, counted; results are applied ``tojson``, so JSON results are stored
  decoded, to be encoded once; no reasoning field.
- **gpt-oss**: one call per message (only the first is rendered), so parallel
  calls become rounds; reasoning is ``thinking``; a call turn may not carry both
  content and thinking (the template raises), and it renders either as the
  analysis channel, so words beside a call join the thinking; results are
  applied ``tojson``, so JSON results are stored decoded.
- **deepseek-v3**: the model's own template concatenates ``arguments`` as a
  string, so arguments are JSON strings; no reasoning field.
- **deepseek-v3-training**: TRL's training variant of it (what ``SFTTrainer``
  swaps in under ``assistant_only_loss=True``) applies ``tojson`` to
  arguments, so they are objects.

Every family keeps each message's own keys only (``tool_calls`` only on call
turns, ``reasoning_content``/``thinking`` only where there is reasoning), content
always a string, and a ``train`` flag on assistant messages (axolotl's
per-message training field: ``message_field_training: train``) that is False
on a turn with an invalid call. A call whose arguments were not a JSON object
cannot be written where arguments are objects; it is left out with its error
result, counted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from dialogforge.dataset.samples import Msg, Sample, arguments_text, rounds, trained, without_calls


@dataclass(frozen=True)
class Family:
    name: str
    reasoning_field: str | None  # where the template reads reasoning; None: nowhere
    arguments: Literal["object", "string"] = "object"
    one_call_per_turn: bool = False
    decode_json_results: bool = False  # the template applies tojson to a tool message's content
    text_beside_calls: Literal["keep", "into_reasoning", "drop"] = "keep"
    templates: tuple[str, ...] = ()  # the chat templates in TRL's wheel it renders exactly through
    summary: str = ""


HF_CONVENTION = Family(
    "hf", "reasoning_content",
    summary="the Hugging Face message convention: tool-call arguments as objects, reasoning in reasoning_content",
)

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("qwen3", "reasoning_content", templates=(
        "qwen3.jinja", "qwen3_training.jinja", "qwen3_5_think.jinja", "qwen3_5_think_training.jinja",
        "qwen3_5_nothink.jinja", "qwen3_5_nothink_training.jinja", "qwen3_6.jinja", "qwen3_6_training.jinja",
        "qwen3_8.jinja", "qwen3_8_training.jinja"),
        summary="Qwen3 (3, 3.5, 3.6, 3.8): arguments as objects, reasoning in reasoning_content"),
    Family("glm4-moe", "reasoning_content", templates=("glm4moe.jinja", "glm4moe_training.jinja"),
           summary="GLM-4.5 (glm4moe): arguments as objects, reasoning in reasoning_content"),
    Family("llama3", None, one_call_per_turn=True, decode_json_results=True, text_beside_calls="drop",
           templates=("llama3_1.jinja", "llama3_2.jinja"),
           summary="Llama 3.1/3.2: one call per assistant message, arguments as objects, JSON results decoded, no reasoning"),
    Family("gpt-oss", "thinking", one_call_per_turn=True, decode_json_results=True, text_beside_calls="into_reasoning",
           templates=("gptoss.jinja", "gptoss_training.jinja"),
           summary="gpt-oss: one call per assistant message, arguments as objects, reasoning in thinking, JSON results decoded"),
    Family("deepseek-v3", None, arguments="string", templates=("deepseekv3.jinja",),
           summary="DeepSeek-V3 (the model's template): arguments as JSON strings, no reasoning"),
    Family("deepseek-v3-training", None, templates=("deepseekv3_training.jinja",),
           summary="DeepSeek-V3, TRL's training template (assistant_only_loss): arguments as objects, no reasoning"),
)}


def family_messages(sample: Sample, family: Family, *, with_reasoning: bool, tally: Counter) -> list[dict[str, Any]]:
    """The sample's messages as ``family``'s template reads them, system prompt first;
    everything changed or left out on the way is counted in ``tally``."""
    messages = _shaped(sample.messages, family, tally)
    out: list[dict[str, Any]] = [{"role": "system", "content": sample.system}]
    for m in messages:
        if m["role"] == "assistant":
            out.append(_assistant(m, family, with_reasoning, tally))
        elif m["role"] == "tool":
            out.append(_tool(m, family))
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def context_turns(sample: Sample, family: Family) -> int:
    """How many of the first assistant messages of ``family_messages`` are context only (the
    sample's context turns as the family writes them: a parallel call may become several)."""
    own = next((i for i, m in enumerate(sample.messages) if m["role"] == "assistant" and not m["context"]),
               len(sample.messages))
    return sum(1 for m in _shaped(sample.messages[:own], family, Counter()) if m["role"] == "assistant")


def _shaped(messages: list[Msg], family: Family, tally: Counter) -> list[Msg]:
    """The calls and turns the family can write (still neutral messages)."""
    if family.arguments == "object":
        messages = without_calls(messages, lambda c: c["raw_arguments"] is not None, tally,
                                 "calls_with_unparseable_arguments_left_out")
    if family.one_call_per_turn:
        messages = _one_call_per_turn(messages, tally)
    return messages


def _assistant(m: Msg, family: Family, with_reasoning: bool, tally: Counter) -> dict[str, Any]:
    content = m["content"]
    reasoning = m["reasoning"] if with_reasoning and family.reasoning_field else None
    if m["tool_calls"] and content:
        if family.text_beside_calls == "drop":
            tally["text_beside_calls_left_out"] += 1
            content = ""
        elif family.text_beside_calls == "into_reasoning" and reasoning:
            reasoning, content = f"{reasoning}\n\n{content}", ""
    out: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        out[family.reasoning_field] = reasoning
    if m["tool_calls"]:
        out["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": arguments_text(c) if family.arguments == "string" else c["arguments"]}}
            for c in m["tool_calls"]
        ]
    out["train"] = m["train"]
    tally["masked_messages"] += not m["train"]
    return out


def _tool(m: Msg, family: Family) -> dict[str, Any]:
    content: Any = m["content"]
    if family.decode_json_results:
        content = _json_container(content)
    out = {"role": "tool", "tool_call_id": m["tool_call_id"], "name": m["name"], "content": content}
    return {k: v for k, v in out.items() if v is not None}  # an imported result may have no id or name


def _json_container(text: str) -> Any:
    """A result that is a JSON object or array, decoded (a template's tojson then writes it
    once); anything else stays the text it was."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (dict, list)) else text


def _one_call_per_turn(messages: list[Msg], tally: Counter) -> list[Msg]:
    """Parallel calls as consecutive rounds, each call followed by its own results; the turn's
    words and reasoning stay on its first call."""
    out: list[Msg] = []
    for m, results in rounds(messages):
        calls = m.get("tool_calls") or []
        if len(calls) < 2:
            out += [m, *results]
            continue
        tally["parallel_turns_made_sequential"] += 1
        answered = {c["id"] for c in calls}
        for k, call in enumerate(calls):
            first = k == 0
            out.append({**m, "content": m["content"] if first else "", "reasoning": m["reasoning"] if first else None,
                        "tool_calls": [call], "train": trained(m["context"], [call])})
            out += [r for r in results if r["tool_call_id"] == call["id"]]
        out += [r for r in results if r["tool_call_id"] not in answered]
    return out
