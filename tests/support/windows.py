"""A dialogue grown by hand, its agent turns taking and recording their windows as ``run_agent`` does."""

from __future__ import annotations

import json

from dialogforge.context_windows import agent_tokens, agent_view, agent_window, reasoning_tokens
from dialogforge.graphs.state import DialogueState
from dialogforge.records import FunctionSpec, Limits, Message, Scenario, SeenContext, StopReason, ToolCall, ToolSpec

FIXED = 500  # what the instructions and tools cost


class Dialogue:
    """A dialogue grown by hand: the agent's turns take and record their windows."""

    def __init__(self, budget: int, *, prompt_ratio: float | None = None) -> None:
        self.budget, self.ratio = budget, prompt_ratio
        self.messages: list[Message] = []
        self.windows: list[SeenContext] = []

    def user(self, words: int = 30) -> None:
        self.messages.append(Message(role="user", content=" ".join(["please"] * words)))

    def agent(self, *, calls: int = 0, result_words: int = 100, reply_words: int = 20) -> SeenContext:
        window = agent_window(self.messages, fixed=FIXED, budget=self.budget)
        if self.ratio is not None:
            window = window.model_copy(update={"prompt_tokens": int(window.estimated * self.ratio)})
        self.windows.append(window)
        n = len(self.messages)
        tool_calls = [ToolCall(id=f"c{n}_{k}", name="get_order", arguments={"order_id": f"A{n}-{k}"}) for k in range(calls)]
        self.messages.append(Message(role="assistant", content="" if calls else " ".join(["done"] * reply_words),
                                     reasoning=f"step {n}: " + "think " * 15, tool_calls=tool_calls, context=window))
        for call in tool_calls:
            self.messages.append(Message(role="tool", tool_call_id=call.id, name=call.name,
                                         content=json.dumps({"order_id": call.arguments["order_id"], "notes": "word " * result_words})))
        return window

    def exchange(self, rounds: int = 2, result_words: int = 100) -> None:
        self.user()
        for _ in range(rounds):
            self.agent(calls=1, result_words=result_words)
        self.agent()


def fresh_tokens(messages: list[Message], end: int, window: SeenContext) -> int:
    """The window's conversation counted from scratch: every message it shows, reasoning where it is sent."""
    shown, reasoning_from = agent_view(messages, end, window)
    return sum(agent_tokens(m) for m in shown) + sum(reasoning_tokens(m) for m in shown[reasoning_from:])



def as_state(d: Dialogue) -> DialogueState:
    """The hand-grown dialogue as a finished trajectory with the one tool it calls."""
    tool = ToolSpec(function=FunctionSpec(name="get_order", parameters={
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}))
    return DialogueState(scenario=Scenario(domain="order tracking"), tools=[tool], messages=d.messages,
                         limits=Limits(agent_context_tokens=d.budget), stop_reason=StopReason.COMPLETED)
