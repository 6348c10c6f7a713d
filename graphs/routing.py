"""Where the dialogue goes after each node: small pure functions of the state.

Each returns an edge label; the builder maps labels to nodes, and the labels
are what the graph diagram shows on conditional edges.
"""

from __future__ import annotations

from typing import Literal

from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode


def after_setup_step(state: DialogueState) -> Literal["continue", "stop"]:
    """After task proposal or tool synthesis: go on unless the trajectory failed."""
    return "stop" if state.stop_reason else "continue"


def after_user_turn(state: DialogueState) -> Literal["request", "task complete", "stop"]:
    if state.stop_reason:
        return "stop"
    if state.mode is Mode.USER and state.active_task is None:
        return "task complete"
    return "request"


def after_agent(state: DialogueState) -> Literal["tool calls", "reply", "stop"]:
    if state.stop_reason:
        return "stop"
    return "tool calls" if state.messages and state.messages[-1].tool_calls else "reply"


def after_tools(state: DialogueState) -> Literal["results", "stop"]:
    return "stop" if state.stop_reason else "results"
