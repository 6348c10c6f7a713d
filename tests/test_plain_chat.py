"""The plain chat protocol: what the embedded llama.cpp model needs, tested without it.

A stub server set up like llama.cpp's (no json_schema, no tools, json_object with a
schema field) must still yield complete trajectories with tool calls, and it must
never be sent a role the Gemma template would drop.
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from dialogforge.runs.reading import load_state
from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.models.agent_turn import agent_step_schema
from dialogforge.models.plain_chat import to_plain_chat
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.runs.generate import generate
from dialogforge.records import Limits
from tests.support.builders import order_tool


def test_system_text_is_folded_into_the_next_user_turn_and_roles_alternate():
    plain = to_plain_chat([
        SystemMessage("You are the agent."),
        HumanMessage("Where is order 7?"),
        AIMessage("", tool_calls=[{"id": "c1", "name": "get_order", "args": {"order_id": "7"}, "type": "tool_call"}]),
        ToolMessage('{"status": "shipped"}', tool_call_id="c1", name="get_order"),
        SystemMessage("Respond with JSON."),
    ])
    assert [m.type for m in plain] == ["human", "ai", "human"]
    assert plain[0].content == "You are the agent.\n\nWhere is order 7?"
    assert json.loads(plain[1].content) == {"reply": "", "tool_calls": [{"name": "get_order", "arguments": {"order_id": "7"}}]}
    assert plain[2].content.startswith("[tool result get_order for c1]\n{\"status\": \"shipped\"}")
    assert plain[2].content.endswith("Respond with JSON.")


def test_the_current_loops_reasoning_goes_back_in_the_agent_step_unless_the_endpoint_refuses_it():
    call = {"id": "c1", "name": "get_order", "args": {"order_id": "7"}, "type": "tool_call"}
    conversation = [HumanMessage("Where is order 7?"),
                    AIMessage("", tool_calls=[call], additional_kwargs={"reasoning_content": "Look it up."}),
                    ToolMessage('{"status": "shipped"}', tool_call_id="c1")]
    step = json.loads(to_plain_chat(conversation)[1].content)
    assert step == {"reasoning": "Look it up.", "reply": "", "tool_calls": [{"name": "get_order", "arguments": {"order_id": "7"}}]}
    assert "reasoning" not in json.loads(to_plain_chat(conversation, reasoning=False)[1].content)


def test_a_conversation_ending_with_the_assistant_gets_a_user_turn():
    plain = to_plain_chat([HumanMessage("hi"), AIMessage("hello")])
    assert [m.type for m in plain] == ["human", "ai", "human"]


def test_agent_step_schema_ties_each_call_to_one_tool():
    tool = order_tool()
    schema = agent_step_schema([tool])
    branch = schema["properties"]["tool_calls"]["items"]["anyOf"][0]
    assert branch["properties"]["name"] == {"const": tool.function.name}
    assert branch["properties"]["arguments"] == tool.function.parameters
    without_tools = agent_step_schema([])
    assert "tool_calls" not in without_tools["properties"] and without_tools["additionalProperties"] is False


def test_generation_through_a_llama_cpp_like_server(tmp_path):
    roles_seen: set[str] = set()
    tools_sent: list[object] = []
    limits_sent: set[tuple] = set()

    def model(request: dict) -> ScriptedChatModel:
        roles_seen.update(m.get("role") for m in request.get("messages") or [])
        tools_sent.append(request.get("tools"))
        limits_sent.add((request.get("max_tokens"), request.get("max_completion_tokens")))
        return ScriptedChatModel()

    with StubServer(model, supports_json_schema=False, supports_tools=False, json_object_schema_field=True) as server:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url, chat_protocol="plain",
                                                  max_tokens=300))
        settings = GenerationSettings(n=3, seed=4, concurrency=3, limits=Limits(max_tasks=2, max_user_turns=6))
        result = generate(tmp_path / "run.db", settings, models)
    assert (result.summary.done, result.summary.failed) == (3, 0)
    assert roles_seen == {"user", "assistant"}
    assert not any(tools_sent)
    assert limits_sent == {(300, None)}  # llama.cpp reads max_tokens and ignores max_completion_tokens
    states = [load_state(tmp_path / "run.db", t) for t in result.thread_ids]
    calls = [c for s in states for m in s.messages for c in m.tool_calls]
    assert calls and all(c.name in {t.function.name for s in states for t in s.tools} for c in calls)
    results = {m.tool_call_id for s in states for m in s.messages if m.role == "tool"}
    assert {c.id for c in calls} == results  # every plain-protocol call got its own result
    assert any(m.reasoning for s in states for m in s.messages if m.role == "assistant")
