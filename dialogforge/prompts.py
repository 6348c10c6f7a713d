"""Prompts are Markdown files beside the code that sends them; this module fills them in.

Each role keeps its prompts in a ``prompts`` folder of its own package (the
nodes in ``dialogforge.nodes.prompts``, tool preparation in
``dialogforge.toolprep.prompts``, the tool simulator in
``dialogforge.executors.prompts``, the judge in ``dialogforge.dataset.prompts``),
so a prompt change is a clean diff of one Markdown file. ``$name``
placeholders (``string.Template``) keep JSON braces in prompts literal.
Every prompt ends with a JSON context block: models read it well, and the
scripted test model reads it too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from dialogforge.jsontext import indented


@cache
def _template(package: str, name: str) -> Template:
    text = resources.files(package).joinpath(f"{name}.md").read_text(encoding="utf-8")
    return Template(text)


def render(package: str, name: str, **values: str) -> str:
    return _template(package, name).substitute(values)


def context_block(context: dict[str, Any]) -> str:
    return "```json\n" + indented(context) + "\n```"


def prompt_messages(package: str, name: str, context: dict[str, Any], **values: str) -> list[BaseMessage]:
    """The usual shape: the role's instructions, then the context it acts on."""
    return block_messages(package, name, context_block(context), **values)


def block_messages(package: str, name: str, block: str, **values: str) -> list[BaseMessage]:
    """``prompt_messages`` with the context block already rendered (a caller that counted it)."""
    return [SystemMessage(render(package, name, **values)), HumanMessage("Context:\n" + block)]
