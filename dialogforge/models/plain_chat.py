"""Conversations for servers whose chat template knows only user and assistant turns.

llama.cpp's server formats a request with the model's chat template, and many
templates (Gemma's among them) silently drop ``system`` and ``tool`` messages
and reject assistant turns without text. Sent as they are, our prompts would
vanish and the model would answer an empty conversation. The ``plain`` chat
protocol therefore rewrites every request into alternating user/assistant
text: system text is folded into the user turn it precedes, tool calls are
written out as the JSON the agent is asked to produce (``AgentStep``), and
tool results become user-side text naming the call they answer.
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from dialogforge.models.convert import text_of


def to_plain_chat(messages: list[BaseMessage], *, reasoning: bool = True) -> list[BaseMessage]:
    """Alternating user/assistant text messages that say everything ``messages`` said; with
    ``reasoning``, an assistant call turn that carries reasoning (the current tool loop's) keeps
    it in its ``AgentStep`` JSON."""
    turns: list[tuple[str, str]] = []
    pending_system: list[str] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            pending_system.append(text_of(message))
            continue
        role, text = _as_turn(message, reasoning)
        if role == "user" and pending_system:
            text = "\n\n".join([*pending_system, text])
            pending_system = []
        _append(turns, role, text)
    if pending_system:  # instructions after the last turn (e.g. "respond with JSON") go last
        _append(turns, "user", "\n\n".join(pending_system))
    if not turns or turns[-1][0] != "user":
        _append(turns, "user", "Continue.")
    return [HumanMessage(text) if role == "user" else AIMessage(text) for role, text in turns]


def tool_call_text(reply: str, calls: list[dict], reasoning: str | None = None) -> str:
    """An assistant turn as the agent writes it under the plain protocol (see ``AgentStep``)."""
    step = {"reasoning": reasoning} if reasoning else {}
    step.update(reply=reply, tool_calls=[{"name": c["name"], "arguments": c.get("args") or {}} for c in calls])
    return json.dumps(step, ensure_ascii=False)


def _as_turn(message: BaseMessage, reasoning: bool) -> tuple[str, str]:
    if isinstance(message, AIMessage):
        if message.tool_calls:
            thought = message.additional_kwargs.get("reasoning_content") if reasoning else None
            return "assistant", tool_call_text(text_of(message), list(message.tool_calls), thought)
        return "assistant", text_of(message)
    if isinstance(message, ToolMessage):
        name = f" {message.name}" if message.name else ""
        return "user", f"[tool result{name} for {message.tool_call_id}]\n{text_of(message)}"
    return "user", text_of(message)


def _append(turns: list[tuple[str, str]], role: str, text: str) -> None:
    if turns and turns[-1][0] == role:
        turns[-1] = (role, f"{turns[-1][1]}\n\n{text}")
    else:
        turns.append((role, text))
