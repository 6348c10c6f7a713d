"""What an export writes where, decided from its options before anything is read or written.

Reasoning is the option whose meaning depends on the target: ShareGPT
carries it inline, a Hugging Face export in the field its chat family reads,
and the OpenAI fine-tuning format and some families nowhere. Asking for it
explicitly (``--with-reasoning``) where it has no place is a one-line error;
the default (``options.WITH_REASONING_DEFAULT``) only leaves it out there, and
the manifest says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialogforge.dataset.chat_families import FAMILIES, HF_CONVENTION, Family
from dialogforge.dataset.errors import ExportError
from dialogforge.dataset.options import CHAT_TEMPLATES, FORMATS, WITH_REASONING_DEFAULT

OPENAI_NO_REASONING = ("the OpenAI fine-tuning format has no reasoning field (its assistant message holds "
                       "content, refusal, name, tool_calls, function_call, audio and weight only); "
                       "export without it, or use --format hf or sharegpt")


@dataclass(frozen=True)
class Target:
    fmt: str
    family: Family | None  # the chat family of an hf export
    with_reasoning: bool  # reasoning is written
    reasoning: str  # for the manifest: where it goes, or why it is not there

    @property
    def conventions(self) -> str:
        if self.family is not None:
            return self.family.summary
        if self.fmt == "sharegpt":
            return ("LLaMA-Factory's sharegpt: human/gpt/function_call/observation, reasoning inline as <think>...</think>, "
                    "invalid calls left out with their error results, samples holding context turns left out")
        return "OpenAI chat fine-tuning: JSON-string arguments, weight 0 on turns with an invalid call"


def resolve_target(fmt: str, chat_template: str | None = None, with_reasoning: bool | None = None) -> Target:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if chat_template is not None and fmt != "hf":
        raise ExportError(f"--chat-template applies to --format hf only (the {fmt} format has one shape)")
    if chat_template is not None and chat_template not in FAMILIES:
        raise ExportError(f"unknown chat template family {chat_template!r}; use one of {', '.join(CHAT_TEMPLATES)}")
    family = FAMILIES[chat_template] if chat_template else (HF_CONVENTION if fmt == "hf" else None)
    place, missing = _reasoning_place(fmt, family)
    wanted = WITH_REASONING_DEFAULT if with_reasoning is None else with_reasoning
    if not wanted:
        return Target(fmt, family, False, "left out (--no-reasoning)" if with_reasoning is False else "left out (the default)")
    if place is None:
        if with_reasoning:
            raise ExportError(f"--with-reasoning: {missing}")
        return Target(fmt, family, False, f"not written: {missing}")
    return Target(fmt, family, True, f"kept, {place}")


def _reasoning_place(fmt: str, family: Family | None) -> tuple[str | None, str]:
    if fmt == "openai":
        return None, OPENAI_NO_REASONING
    if fmt == "sharegpt":
        return "inline as <think>...</think> before the reply or the calls", ""
    assert family is not None
    if family.reasoning_field is None:
        readers = ", ".join(f.name for f in FAMILIES.values() if f.reasoning_field)
        return None, f"the {family.name} chat template reads no reasoning; export without it, or use a family that does ({readers})"
    return f"in each assistant message's {family.reasoning_field}", ""
