"""The pieces of the world model on their own: the fold of entity ops, results cut to size,
the transient-failure draw, the token estimate, and the settings' defaults on old states."""

from __future__ import annotations

import json

import pytest

from dialogforge.executors.bounded import bounded_result
from dialogforge.executors.memory import identifying_values, parse_content
from dialogforge.executors.simulated import transient_failure
from dialogforge.executors.world import deep_merge, world_of
from dialogforge.graphs.state import DialogueState
from dialogforge.records import EntityOp, Message, Scenario, ToolCall, ToolSimulation
from dialogforge.tokens import estimate_json_tokens, estimate_messages_tokens, estimate_tokens


def _tool(*ops: EntityOp) -> Message:
    return Message(role="tool", content="{}", tool_call_id="c", entity_ops=list(ops))


def test_updates_deep_merge_and_untouched_fields_survive():
    world = world_of([
        _tool(EntityOp(op="create", kind="Order", id="A1", fields={"status": "paid", "total": 40, "address": {"city": "Lyon", "street": "1 rue X"}})),
        _tool(EntityOp(op="update", kind="order", id="A1", fields={"address": {"city": "Paris"}, "status": "shipped"})),
    ])
    assert world.get("order", "A1").fields == {"status": "shipped", "total": 40, "address": {"city": "Paris", "street": "1 rue X"}}


def test_reads_are_recorded_deletes_leave_a_tombstone_and_recency_orders_the_world():
    world = world_of([
        _tool(EntityOp(op="read", kind="customer", id=7, fields={"email": "a@b.c"})),  # an integer id reads as text
        _tool(EntityOp(op="create", kind="ticket", id="T1", fields={"status": "open"})),
        _tool(EntityOp(op="read", kind="customer", id="7", fields={"name": "Ann"})),
        _tool(EntityOp(op="delete", kind="ticket", id="T1")),
        Message(role="user", content="ignored: only tool messages carry ops"),
    ])
    assert world.get("customer", "7").fields == {"email": "a@b.c", "name": "Ann"}
    assert world.get("ticket", "T1").deleted and [e.id for e in world.live()] == ["7"]
    assert [e.id for e in world.entities.values()] == ["7", "T1"]  # least recently touched first
    again = world_of([_tool(EntityOp(op="delete", kind="ticket", id="T1")), _tool(EntityOp(op="create", kind="ticket", id="T1", fields={"n": 2}))])
    assert not again.get("ticket", "T1").deleted and again.get("ticket", "T1").fields == {"n": 2}


def test_deep_merge_never_mutates_its_inputs():
    base = {"a": {"b": [1, 2]}, "c": 1}
    changes = {"a": {"d": {"e": 3}}}
    merged = deep_merge(base, changes)
    merged["a"]["b"].append(9)
    merged["a"]["d"]["e"] = 4
    assert base == {"a": {"b": [1, 2]}, "c": 1} and changes == {"a": {"d": {"e": 3}}}


def test_an_old_state_has_an_empty_world_and_default_simulation_settings():
    old = DialogueState.model_validate({"scenario": {"domain": "x"}, "messages": [{"role": "tool", "content": "{}", "tool_call_id": "c"}]})
    assert old.simulation == ToolSimulation() and not world_of(old.messages).entities
    assert old.counters.tool_error_kinds == {}


def test_a_result_within_the_limit_is_plain_json_and_a_larger_one_keeps_its_shape_with_a_marker():
    small = {"ticket_id": "T1", "status": "open"}
    assert bounded_result(small, 200) == json.dumps(small)
    big = {"results": [{"id": i, "text": "y" * 60} for i in range(100)], "total": 100}
    text = bounded_result(big, 1_000)
    value, marker = parse_content(text)
    assert len(json.dumps(value, ensure_ascii=False)) <= 1_000 and value["total"] == 100
    assert value["results"] == big["results"][: len(value["results"])]
    assert marker == f"[result truncated to 1000 characters: results: {len(value['results'])} of 100 items]"
    long_text = bounded_result({"body": "z" * 5_000}, 300)
    value, marker = parse_content(long_text)
    assert value["body"].endswith("…") and len(json.dumps(value)) <= 300 and marker.startswith("[result truncated")
    raw = bounded_result("w" * 1_000, 300)  # nothing to shorten structurally: the text itself is cut
    assert raw.endswith("\n[result truncated: 300 of 1002 characters shown]") and len(raw.split("\n")[0]) == 300


def test_transient_failures_are_a_pure_draw_at_the_configured_rate():
    draws = [transient_failure(seed, position, ToolCall(id=f"call_{position}", name="get_x"), 0.1)
             for seed in range(20) for position in range(1_000)]
    share = sum(d is not None for d in draws) / len(draws)
    assert abs(share - 0.1) < 0.01, share
    assert all(d is None or d.split(" ")[0] in {"503", "504", "429"} for d in draws)
    call = ToolCall(id="call_1", name="get_x")
    assert transient_failure(3, 5, call, 0.1) == transient_failure(3, 5, call, 0.1)  # a resume draws the same
    assert not any(transient_failure(seed, 0, call, 0) for seed in range(1_000))  # 0 disables


def test_identifying_values_skip_closed_choices():
    parameters = {"type": "object", "properties": {"status": {"type": "string", "enum": ["open", "closed"]},
                                                   "verbose": {"type": "boolean"}, "order_id": {"type": "integer"}, "note": {"type": "string"}}}
    values = identifying_values({"status": "open", "verbose": True, "order_id": 7, "note": "ok", "query": "red shoes"}, parameters)
    assert values == {"7", "red shoes"}  # "ok" is too short to name anything; 7 is an id


@pytest.mark.parametrize(("text", "cl100k"), [
    ("The user wants to cancel order A1 because it is late, then get a refund to the original card and confirm "
     "the new delivery address for the replacement.", 31),
    ('```json\n{\n "tool": "get_order",\n "arguments": {\n  "order_id": "ORD-8f3a2c",\n  "verbose": true\n },\n'
     ' "result_schema": {\n  "type": "object",\n  "properties": {\n   "order_id": {\n    "type": "string"\n   },\n'
     '   "status": {\n    "type": "string"\n   }\n  }\n },\n "world": {\n  "order": {\n   "ORD-1": {\n'
     '    "status": "shipped",\n    "total": 129.5,\n    "items": [\n     {\n      "sku": "A-100",\n      "qty": 2\n'
     '     }\n    ]\n   }\n  }\n },\n "reference_time": "2026-03-04T10:15:00Z"\n}\n```', 172),
    (json.dumps([{"ticket_id": f"TCK-{1000 + i}", "status": ["open", "on_hold", "closed"][i % 3],
                  "subject": f"Printer on floor {i} jams when printing double-sided", "updated_at": f"2026-03-{10 + i}T09:30:00Z"}
                 for i in range(20)], indent=1), 1149),
])
def test_the_token_estimate_lands_near_cl100k_and_rarely_below_it(text, cl100k):
    """``cl100k`` is the exact count, measured once with a cl100k_base tokenizer."""
    assert cl100k * 0.95 <= estimate_tokens(text) <= cl100k * 1.25


def test_token_estimate_basics():
    assert estimate_tokens("") == 0 and estimate_tokens("hello") == 1 and estimate_tokens("hello world") == 2
    assert estimate_tokens("a" * 80) == 10 and estimate_tokens("1234567") == 3 and estimate_tokens("\n\n") == 1
    assert estimate_json_tokens({"a": 1}) == estimate_tokens('{"a": 1}')
    assert estimate_messages_tokens(["hello", ""]) == 1 + 2 * 4


def test_the_simulation_settings_are_kept_in_the_state_for_forks():
    state = DialogueState(scenario=Scenario(domain="x"), simulation=ToolSimulation(tool_error_rate=0.2, context_tokens=8_000))
    revived = DialogueState.model_validate(state.model_dump())
    assert revived.simulation.tool_error_rate == 0.2 and revived.simulation.context_tokens == 8_000
    with pytest.raises(ValueError):
        ToolSimulation(tool_error_rate=0.9)


def test_an_answer_that_contradicts_the_world_is_sent_back():
    from dialogforge.executors.simulated import ToolFailure, ToolResult, answer_problem
    from tests.support.builders import order_tool

    spec = order_tool()
    world = world_of([_tool(EntityOp(op="create", kind="order", id="A1", fields={"status": "paid"})),
                      _tool(EntityOp(op="create", kind="order", id="B2"), EntityOp(op="delete", kind="order", id="B2"))])
    ok = {"order_id": "A1", "status": "paid"}
    assert answer_problem(spec, world, ToolResult(result=ok, entities=[EntityOp(op="read", kind="order", id="A1", fields=ok)])) is None
    assert "result schema" in answer_problem(spec, world, ToolResult(result={"status": 1}))
    assert "already exists" in answer_problem(spec, world, ToolResult(result=ok, entities=[EntityOp(op="create", kind="order", id="A1")]))
    assert "was deleted" in answer_problem(spec, world, ToolResult(result=ok, entities=[EntityOp(op="update", kind="order", id="B2")]))
    failed = ToolResult(result=None, error=ToolFailure(code="not_found", message="No order C3."),
                        entities=[EntityOp(op="read", kind="order", id="C3")])
    assert "changes nothing" in answer_problem(spec, world, failed)
    assert answer_problem(spec, world, failed.model_copy(update={"entities": []})) is None
