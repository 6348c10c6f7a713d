"""The nodes' prompts: Markdown files in ``nodes/prompts/``, filled in by ``dialogforge.prompts``."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from dialogforge import prompts
from dialogforge.graphs.state import DialogueState
from dialogforge.languages import agent_instruction
from dialogforge.prompts import context_block

__all__ = ["agent_system_prompt", "context_block", "prompt_messages", "prompt_text", "render"]

PACKAGE = "dialogforge.nodes.prompts"


def render(name: str, **values: str) -> str:
    return prompts.render(PACKAGE, name, **values)


def prompt_text(name: str) -> str:
    """A prompt fragment (no placeholders), as the text it holds, without the file's final newline."""
    return render(name).strip()


def prompt_messages(name: str, context: dict[str, Any], **values: str) -> list[BaseMessage]:
    return prompts.prompt_messages(PACKAGE, name, context, **values)


def agent_system_prompt(state: DialogueState) -> str:
    """The agent's system prompt, as it was sent: what exports and the judge show as the agent's
    instructions. A conversation that brought its own system message keeps that."""
    if state.messages and state.messages[0].role == "system":
        return state.messages[0].content
    return render("run_agent", domain=state.scenario.domain, reference_time=state.reference_time,
                  language=agent_instruction(state.language)).strip()
