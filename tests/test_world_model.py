"""The simulated tool backend as a world model, checked on what the tool simulator gets on the wire.

Every test runs the scripted model behind the stub OpenAI-compatible server and reads the
requests the server received: memory (call 40 carries calls 1-39), state (entities, deep-merged
updates, recorded reads), failure (each error kind, flagged, counted, not masked in exports;
the transient failure rate), one reference time for every role, and a bounded request.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings
from dialogforge.dataset.format_openai import ToolNames, openai_record
from dialogforge.dataset.samples import build_samples
from dialogforge.executors.memory import parse_content
from dialogforge.executors.simulated import transient_failure
from dialogforge.executors.world import world_of
from dialogforge.graphs.state import DialogueState
from dialogforge.nodes.run_agent import run_agent
from dialogforge.records import Limits, Message, ToolCall, ToolSimulation
from dialogforge.runs.generate import generate
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.tokens import estimate_messages_tokens
from tests.support.checkpoints import dialogue_problem, manifest_rows, states
from tests.support.wire import (
    Backend, agent_requests, context_of, long_dialogue, run_graph, simulator_requests, stub_models, user_simulator_requests,
)


def _server() -> StubServer:
    return StubServer(lambda request: ScriptedChatModel(), record_requests=True)


def _calls(state: DialogueState) -> list[tuple[ToolCall, Message]]:
    answers = {m.tool_call_id: m for m in state.messages if m.role == "tool"}
    return [(c, answers[c.id]) for m in state.messages for c in m.tool_calls]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> tuple[DialogueState, list[dict]]:
    """One 30-turn trajectory (about 60 tool calls) through the whole graph, and every request it sent."""
    with _server() as server:
        state = _run(run_graph(tmp_path_factory.mktemp("long") / "run.db", "t-long", long_dialogue(6, 30), server.base_url))
        requests = list(server.requests)
    assert state.stop_reason is not None and state.error is None, state.error
    assert dialogue_problem(state.messages) is None
    return state, requests


def _run(coroutine):
    import asyncio

    return asyncio.run(coroutine)


# ------------------------------------------------------------------ memory


def test_call_40_carries_the_data_of_calls_1_to_39(long_run):
    state, requests = long_run
    calls = _calls(state)
    by_number = {context_of(body)["call_number"]: context_of(body) for body in simulator_requests(requests)}
    number = min(n for n in by_number if n >= 40)  # an invalid call never reaches the simulator
    context = by_number[number]
    assert context["tool"] == calls[number - 1][0].name and context["arguments"] == calls[number - 1][0].arguments
    earlier = {entry["n"]: entry for entry in context["earlier_calls"]}
    assert sorted(earlier) == list(range(1, number)) and "omitted_for_length" not in context
    for n, (call, answer) in enumerate(calls[: number - 1], start=1):
        value, _ = parse_content(answer.content)
        assert earlier[n]["tool"] == call.name and earlier[n]["arguments"] == call.arguments, n
        assert earlier[n]["error" if answer.is_error else "result"] == value, n
    said = [m.content for m in state.messages[: _position(state, calls[number - 1][0])] if m.role == "user"]
    assert context["user_statements"] == said  # and everything the user said


def _position(state: DialogueState, call: ToolCall) -> int:
    return next(i for i, m in enumerate(state.messages) if call in m.tool_calls)


def test_the_request_stays_within_the_budget_and_keeps_related_calls_first():
    async def scenario(base_url: str, requests: list[dict]) -> dict:
        backend = Backend(base_url, "My ticket is T-7, and I opened T-8 too.", simulation=ToolSimulation(tool_error_rate=0, context_tokens=2_000))
        try:
            await backend.call("get_ticket", ticket_id="T-7")
            for i in range(40):  # unrelated lookups of long made-up ids: far past the budget together
                await backend.call("get_ticket", ticket_id=f"unknown-{i}-" + "x" * 120)
            requests.clear()
            await backend.call("get_ticket", ticket_id="T-7")
        finally:
            await backend.aclose()
        return simulator_requests(requests)[-1]

    with _server() as server:
        body = _run(scenario(server.base_url, server.requests))
    context = context_of(body)
    assert estimate_messages_tokens([m["content"] for m in body["messages"]]) <= 2_000
    numbers = [entry["n"] for entry in context["earlier_calls"]]
    assert numbers[0] == 1  # the first lookup of T-7 is related: kept although it is the oldest
    assert numbers[-1] == 41 and 41 - len(numbers) > 5  # then the most recent; older unrelated ones left out
    assert context["omitted_for_length"]["earlier_calls"] == 41 - len(numbers)
    assert "T-7" in context["world"]["ticket"]  # and the entity the call names
    assert context["user_statements"] == ["My ticket is T-7, and I opened T-8 too."]


# ------------------------------------------------------------------ state


def test_a_partial_update_keeps_the_other_fields_and_a_repeated_lookup_reads_the_same():
    async def scenario(base_url: str, requests: list[dict]) -> tuple[Backend, list[dict]]:
        backend = Backend(base_url, "Please open a ticket for the printer jam.")
        try:
            created = json.loads((await backend.call("create_ticket", name="Printer jam", notes="3rd floor", quantity=2)).content)
            ticket = created["ticket_id"]
            first = await backend.call("get_ticket", ticket_id=ticket)
            await backend.call("update_ticket", ticket_id=ticket, status="on_hold")
            await backend.call("create_ticket", name="Toner", notes="blue")
            again = await backend.call("get_ticket", ticket_id=ticket)
        finally:
            await backend.aclose()
        return backend, [first, again, *simulator_requests(requests)]

    with _server() as server:
        backend, (first, again, *sent) = _run(scenario(server.base_url, server.requests))
    update = [op for m in backend.state.messages for op in m.entity_ops if op.op == "update"]
    assert [(op.id, op.fields) for op in update] == [(update[0].id, {"status": "on_hold"})]  # only what changed
    ticket = update[0].id
    last = context_of(sent[-1])  # what the simulator saw for the repeated lookup
    record = last["world"]["ticket"][ticket]
    assert record["name"] == "Printer jam" and record["notes"] == "3rd floor" and record["quantity"] == 2  # kept
    assert record["status"] == "on_hold"  # merged
    first_read, second_read = json.loads(first.content), json.loads(again.content)
    assert any(e["tool"] == "get_ticket" and e["result"] == first_read for e in last["earlier_calls"])
    assert second_read == {**first_read, "status": "on_hold"}  # the first lookup's record, as updated since
    assert world_of(backend.state.messages).get("ticket", ticket).fields["status"] == "on_hold"


def test_ids_seen_earlier_in_a_long_trajectory_are_found_as_the_world_recorded_them(long_run):
    state, requests = long_run
    found = 0
    for context in (context_of(body) for body in simulator_requests(requests)):
        verb, _, kind = context["tool"].partition("_")
        ident = context["arguments"].get(f"{kind}_id")
        if verb not in ("get", "update", "delete") or ident is None or str(ident) in (context.get("deleted") or {}).get(kind, []):
            continue
        showed = [e for e in context["earlier_calls"] if isinstance(e.get("result"), dict) and e["result"].get(f"{kind}_id") == ident]
        if not showed:
            continue
        found += 1
        recorded = context["world"][kind][str(ident)]  # an id an earlier result showed is in the world shown
        for lookup in (e for e in showed if e["tool"] == f"get_{kind}"):  # and reads as the lookups returned it
            assert all(recorded.get(k) == v for k, v in lookup["result"].items() if k != "status"), (recorded, lookup)
    assert found >= 3, found


def _shown_world(state: DialogueState, context: dict) -> dict:
    """The live entities the messages before this call's answer imply, as the simulator's context shows them."""
    call, answer = _calls(state)[context["call_number"] - 1]
    world = world_of(state.messages[: state.messages.index(answer)])
    shown: dict[str, dict] = {}
    for entity in world.live():
        shown.setdefault(entity.kind, {})[entity.id] = entity.fields
    return shown


def test_a_resume_sees_the_world_its_checkpoint_implies(tmp_path):
    db = tmp_path / "run.db"
    start = long_dialogue(2, 12)
    with _server() as server:
        whole = _run(run_graph(tmp_path / "whole.db", "t", start, server.base_url))
        cut = _run(run_graph(db, "t", start, server.base_url, stop_after_calls=10))  # a crash after the 10th call
        server.requests.clear()
        resumed = _run(run_graph(db, "t", None, server.base_url))  # continue from what the database holds
        after = [context_of(b) for b in simulator_requests(server.requests)]
    assert world_of(cut.messages).entities and resumed.messages[: len(cut.messages)] == cut.messages
    assert after[0]["call_number"] > sum(1 for m in cut.messages if m.role == "tool")  # nothing answered twice
    for context in after:
        assert context["world"] == _shown_world(resumed, context)
    assert resumed.model_dump() == whole.model_dump()  # the world (and dialogue) of the uninterrupted run, exactly


def test_a_fork_starts_from_the_world_at_its_checkpoint(tmp_path):
    from dialogforge.runs.fork import fork_trajectory
    from dialogforge.runs.history import history

    db = tmp_path / "run.db"
    settings = GenerationSettings(n=1, seed=5, limits=Limits(max_user_turns=16, max_tasks=3))
    with _server() as server:
        generate(db, settings, stub_models(server.base_url))
        (row,) = manifest_rows(db)
        (source,) = states(db, [row["thread_id"]])
        points = [e for e in history(db, row["thread_id"]) if e.next == ["execute_tools"]
                  and world_of(source.messages[: e.messages]).entities]  # a world to start from
        point = points[len(points) // 2]
        server.requests.clear()
        forked = fork_trajectory(db, row["thread_id"], point.checkpoint_id, n=1)  # runs with the run's recorded models
        sent = [context_of(b) for b in simulator_requests(server.requests)]
    (fork_state,) = states(db, forked.thread_ids)
    assert fork_state.messages[: point.messages] == source.messages[: point.messages]
    assert sent and world_of(source.messages[: point.messages]).entities
    for context in sent:
        assert context["world"] == _shown_world(fork_state, context)
    made_later = {op.id for m in source.messages[point.messages:] for op in m.entity_ops if op.op == "create"}
    made_by_fork = {op.id for m in fork_state.messages[point.messages:] for op in m.entity_ops}
    assert not (made_later - made_by_fork) & {i for records in sent[0]["world"].values() for i in records}


# ------------------------------------------------------------------ failure


async def _every_kind_of_error(base_url: str) -> Backend:
    backend = Backend(base_url, "Hi, I need help with my tickets.", simulation=ToolSimulation(tool_error_rate=0.5))
    try:
        flaky = next(f"call_t{i}" for i in range(100)
                     if transient_failure(backend.state.seed, 0, ToolCall(id=f"call_t{i}", name="get_ticket"), 0.5))
        await backend.call("get_ticket", call_id=flaky, ticket_id="T-1")  # unavailable: the backend failed
        steady = _steady(backend)
        await backend.call("get_ticket", call_id=steady(), ticket_id="NOPE-404")  # not_found
        created = await backend.call("create_ticket", call_id=steady(), name="Printer jam")
        ticket = json.loads(created.content)["ticket_id"]
        await backend.call("create_ticket", call_id=steady(), name="Printer jam")  # conflict
        await backend.call("update_ticket", call_id=steady(), ticket_id=ticket, status="closed")
        await backend.call("update_ticket", call_id=steady(), ticket_id=ticket, status="open")  # invalid_transition
        await backend.call("update_ticket", call_id=steady(), ticket_id=ticket, status="urgent")  # invalid_call
        backend.state = backend.state.model_copy(update={"tasks": []})
        agent = await run_agent(backend.state, backend.runtime)  # the agent reads the errors next
        assert "stop_reason" not in agent
        backend.state = backend.state.model_copy(update={"messages": [*backend.state.messages, *agent["messages"]]})
    finally:
        await backend.aclose()
    return backend


def _steady(backend: Backend):
    """Call ids whose transient draw passes, at the position the next call will have."""
    def next_id() -> str:
        position = sum(1 for m in backend.state.messages if m.role == "tool")
        return next(f"call_s{position}_{i}" for i in range(100)
                    if not transient_failure(backend.state.seed, position, ToolCall(id=f"call_s{position}_{i}", name="x"), 0.5)
                    and not any(transient_failure(backend.state.seed, position, ToolCall(id=f"call_s{position}_{i}", name=n), 0.5)
                                for n in ("get_ticket", "create_ticket", "update_ticket")))
    return next_id


def test_errors_of_each_kind_reach_the_agent_flagged_counted_and_unmasked():
    with _server() as server:
        backend = _run(_every_kind_of_error(server.base_url))
        requests = list(server.requests)
    state = backend.state
    tools = [m for m in state.messages if m.role == "tool"]
    codes = [json.loads(m.content).get("code") if m.is_error else "ok" for m in tools]
    assert codes == ["unavailable", "not_found", "ok", "conflict", "ok", "invalid_transition", "invalid_call"]
    assert all(m.is_error == (code != "ok") for m, code in zip(tools, codes))
    assert state.counters.tool_errors == 5
    assert state.counters.tool_error_kinds == {k: 1 for k in ("conflict", "invalid_call", "invalid_transition", "not_found", "unavailable")}
    # On the wire: the agent's next request holds every error as the tool's message.
    (agent,) = agent_requests(requests)
    wired = [json.loads(m["content"]).get("code") for m in agent["messages"] if m["role"] == "tool"]
    assert wired == [None if c == "ok" else c for c in codes]
    # The transient failure never reached the simulator; the honest refusals did.
    assert [context_of(b)["call_number"] for b in simulator_requests(requests)] == [2, 3, 4, 5, 6]
    # Exported: the recoveries train. Only the invalid call's turn is masked, never the backend's refusals.
    (sample,) = build_samples(state.model_copy(update={"messages": [*state.messages, Message(role="assistant", content="Sorted.")]}))
    record = openai_record(sample, ToolNames())
    weights = [(m["tool_calls"][0]["function"]["name"], m.get("weight")) for m in record["messages"] if m.get("tool_calls")]
    assert [w for _, w in weights] == [None, None, None, None, None, None, 0]
    assert sum(1 for m in record["messages"] if m["role"] == "tool" and '"code"' in m["content"]) == 5


def test_the_transient_failure_rate_lands_near_its_setting(tmp_path):
    settings = GenerationSettings(n=80, seed=11, concurrency=8, limits=Limits(max_user_turns=10, max_tasks=2),
                                  simulation=ToolSimulation(tool_error_rate=0.1))
    with _server() as server:
        result = generate(tmp_path / "run.db", settings, stub_models(server.base_url))
        sent = simulator_requests(server.requests)
    done = states(tmp_path / "run.db", result.thread_ids)
    codes = Counter(json.loads(m.content.split("\n")[0]).get("code") if m.is_error else "ok"
                    for s in done for m in s.messages if m.role == "tool")
    simulated = sum(codes.values()) - codes["invalid_call"]  # the calls the simulated backend answered
    share = codes["unavailable"] / simulated
    print(f"\ntool_error_rate 0.1: {codes['unavailable']} transient failures in {simulated} simulated calls = {share:.1%}; {dict(codes)}")
    assert simulated >= 500
    assert abs(share - 0.1) <= 0.03
    assert len(sent) >= simulated - codes["unavailable"]  # every other one went to the model
    assert sum(s.counters.tool_error_kinds.get("unavailable", 0) for s in done) == codes["unavailable"]


# ------------------------------------------------------------------ time and size


def test_one_reference_time_reaches_the_agent_the_user_and_the_backend(long_run):
    state, requests = long_run
    now = state.reference_time
    assert all(context_of(b)["current_time"] == now for b in user_simulator_requests(requests))
    assert all(context_of(b)["reference_time"] == now for b in simulator_requests(requests))
    assert all(now in b["messages"][0]["content"] for b in agent_requests(requests))
    assert user_simulator_requests(requests) and simulator_requests(requests) and agent_requests(requests)


def test_an_oversized_result_is_cut_with_a_visible_marker():
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from dialogforge.records import FunctionSpec, ToolSpec
    from dialogforge.tool_checks import first_violation

    schema = {"type": "object", "properties": {"results": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"}}}
    big = {"results": [{"ticket_id": f"T-{i}", "notes": "x" * 80} for i in range(300)], "total": 300}
    answer = AIMessage(json.dumps({"result": big, "entities": []}))
    search = ToolSpec(function=FunctionSpec(name="search_ticket", parameters={"type": "object", "properties": {"query": {"type": "string"}}}),
                      result_schema=schema)

    async def scenario(base_url: str) -> Message:
        backend = Backend(base_url, "Find my tickets.", tools=[search], simulation=ToolSimulation(tool_error_rate=0, max_result_chars=2_000))
        try:
            return await backend.call("search_ticket", query="printer")
        finally:
            await backend.aclose()

    with StubServer(lambda request: GenericFakeChatModel(messages=iter([answer]))) as server:
        reply = _run(scenario(server.base_url))
    value, marker = parse_content(reply.content)
    assert len(json.dumps(value, ensure_ascii=False)) <= 2_000 < len(json.dumps(big))
    assert first_violation(schema, value) is None and value["results"] == big["results"][: len(value["results"])]
    assert marker == f"[result truncated to 2000 characters: results: {len(value['results'])} of 300 items]"


def test_the_request_text_assembled_from_cached_parts_is_the_context_block_exactly(long_run):
    """simulator_request joins texts made once per message; the result must be byte for byte what
    rendering the whole context would give, whatever the budget leaves out."""
    from dialogforge.executors.memory import simulator_block, simulator_request
    from dialogforge.prompts import context_block

    state, _ = long_run
    specs = {t.name: t for t in state.tools}
    for k, message in enumerate(state.messages):
        for call in message.tool_calls:
            if call.name not in specs:
                continue
            sub = state.model_copy(update={"messages": state.messages[: k + 1]})
            for budget in (200_000, 3_000, 900):
                # what the executor sends (first: its items measured here, on their first call)
                sent = simulator_block(sub, specs[call.name], call, world_of(sub.messages), instructions="x", budget=budget)
                context, text = simulator_request(sub, specs[call.name], call, world_of(sub.messages),
                                                  instructions="x", budget=budget)
                assert text == context_block(context) == sent, (k, budget)


def test_an_earlier_results_identifying_values_match_exactly_as_a_set_would():
    """Kept as one joined string (memory, issue 23), they answer as the set of them did."""
    from dialogforge.executors.memory import _SEP, _Values

    leaves = ["order-12", "Ada Lovelace", "12"]
    kept = _Values(iter(leaves))
    assert kept.exact is None and kept.meets({"order-12"}) and kept.meets({"zz", "12"})
    assert not kept.meets({"order-1"}) and not kept.meets({"Ada"}) and not kept.meets(set())
    assert not kept.meets({f"order-12{_SEP}Ada Lovelace"})  # a value spanning two is none of them
    odd = _Values(iter(["a", f"b{_SEP}c"]))  # a value holding the separator: the set itself is kept
    assert odd.exact == {"a", f"b{_SEP}c"} and odd.meets({f"b{_SEP}c"}) and not odd.meets({"b"})
    assert not _Values(iter(())).meets({"a"})
