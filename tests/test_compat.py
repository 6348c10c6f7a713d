"""Each private LangGraph / LangChain name in ``dialogforge.compat``, checked against the installed versions."""

from __future__ import annotations

from typing import Annotated

from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from dialogforge.compat import DeltaSnapshot


def _append(old: list, new: list) -> list:
    return [*old, *new]


class _Log(TypedDict):
    log: Annotated[list, DeltaChannel(_append, snapshot_frequency=1)]


def test_delta_snapshot_is_what_langgraph_checkpoints_for_a_delta_channel_and_restores_from():
    """The SQLite saver recognises LangGraph's periodic message snapshots by this class, and
    hands back one it rebuilt as ``DeltaSnapshot(list)``: both must be what LangGraph uses."""
    graph = StateGraph(_Log)
    graph.add_node("say", lambda state: {"log": ["said"]})
    graph.add_edge(START, "say")
    saver = InMemorySaver()
    config = {"configurable": {"thread_id": "t"}}
    final = graph.compile(checkpointer=saver).invoke({"log": ["hi"]}, config)
    stored = saver.get_tuple(config).checkpoint["channel_values"]["log"]
    assert isinstance(stored, DeltaSnapshot) and stored.value == final["log"]
    assert DeltaChannel(_append).from_checkpoint(DeltaSnapshot(["a", "b"])).value == ["a", "b"]
