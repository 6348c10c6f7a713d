"""Where the dialogue goes after each node: small pure functions of the state.

Each returns an edge label; the builder maps labels to nodes, and the labels
are what the graph diagram shows on conditional edges.

Each function takes a view of only the fields it decides on, not the whole
``DialogueState``: LangGraph reads a branch's input fresh after every step
(a copy of each channel it names, then the annotated class built from them),
so a router typed with the whole state copied all thirty channels and
validated the state's every field, its history included, once per step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from dialogforge.records import Message, Mode, StopReason, Task, TaskStatus


class _Stopped(BaseModel):
    stop_reason: StopReason | None = None


class _AfterUser(_Stopped):
    mode: Mode = Mode.USER
    tasks: list[Task] = []


class _AfterAgent(_Stopped):
    messages: list[Message] = []


def after_setup_step(state: _Stopped) -> Literal["continue", "stop"]:
    """After task proposal or tool synthesis: go on unless the trajectory failed."""
    return "stop" if state.stop_reason else "continue"


def after_user_turn(state: _AfterUser) -> Literal["request", "task complete", "stop"]:
    if state.stop_reason:
        return "stop"
    if state.mode is Mode.USER and not (state.tasks and state.tasks[-1].status is TaskStatus.ACTIVE):
        return "task complete"
    return "request"


def after_agent(state: _AfterAgent) -> Literal["tool calls", "reply", "stop"]:
    if state.stop_reason:
        return "stop"
    return "tool calls" if state.messages and state.messages[-1].tool_calls else "reply"


def after_tools(state: _Stopped) -> Literal["results", "stop"]:
    return "stop" if state.stop_reason else "results"
