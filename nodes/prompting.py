"""The nodes' prompts: Markdown files in ``nodes/prompts/``, filled in by ``dialogforge.prompts``."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from dialogforge import prompts
from dialogforge.prompts import context_block

__all__ = ["context_block", "prompt_messages", "prompt_text", "render"]

PACKAGE = "dialogforge.nodes.prompts"


def render(name: str, **values: str) -> str:
    return prompts.render(PACKAGE, name, **values)


def prompt_text(name: str) -> str:
    """A prompt fragment (no placeholders), as the text it holds, without the file's final newline."""
    return render(name).strip()


def prompt_messages(name: str, context: dict[str, Any], **values: str) -> list[BaseMessage]:
    return prompts.prompt_messages(PACKAGE, name, context, **values)
