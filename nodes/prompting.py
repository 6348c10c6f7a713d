"""Prompts are Markdown files beside the nodes; this module fills them in.

``$name`` placeholders (``string.Template``) keep JSON braces in prompts
literal. Every prompt ends with a JSON context block: models read it well,
and the scripted test model reads it too.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage


@cache
def _template(name: str) -> Template:
    text = resources.files("nodes.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    return Template(text)


def render(name: str, **values: str) -> str:
    return _template(name).substitute(values)


def context_block(context: dict[str, Any]) -> str:
    return "```json\n" + json.dumps(context, ensure_ascii=False, indent=1) + "\n```"


def prompt_messages(name: str, context: dict[str, Any], **values: str) -> list[BaseMessage]:
    """The usual shape: the node's instructions, then the context it acts on."""
    return [
        SystemMessage(render(name, **values)),
        HumanMessage("Context:\n" + context_block(context)),
    ]
