"""Train on what the model saw: every exported assistant turn against the request that produced it, on the wire.

Two scripted dialogues run through the stub server, which holds a model's context
(``max_context_tokens``, counted with its own "tokenizer", denser than our estimate on
prose): one short enough to fit the agent's budget, one that outgrows a small budget
several times. Each is exported as a Hugging Face dataset, reasoning kept (the default);
the k-th assistant turn the export holds as a sample's own (trained, or masked for an
invalid call; not a context turn) is the agent's k-th turn, and the messages
before it in its sample must be exactly the agent's k-th request: the same system prompt,
tools, messages, calls and results, and reasoning where it was sent (inside the turn's
own tool loop).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets
import pytest

from dialogforge.context_windows import agent_view
from dialogforge.dataset.corpus import view_of
from dialogforge.dataset.export import export
from dialogforge.dataset.stats import collect_stats
from dialogforge.dataset.format_openai import ToolNames, openai_record
from dialogforge.dataset.format_sharegpt import sharegpt_record
from dialogforge.dataset.samples import SampleSkipped, build_samples
from dialogforge.graphs.state import DialogueState
from dialogforge.records import StopReason, ToolSimulation
from dialogforge.testing.openai_wire import prompt_tokens
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from dialogforge.testing.wire_check import faithfulness, sample_turns
from tests.support.checkpoints import dialogue_problem
from tests.support.dataset import store_states
from tests.support.windows import Dialogue, as_state
from tests.support.wire import agent_requests, long_dialogue, run_graph, sample_context, user_simulator_requests, wire_message

SMALL = 3_000  # the long dialogue's agent and user simulator budget
STUB_CONTEXT = 3_600  # its model's context: the budget plus room for the reply


@dataclass
class Exported:
    state: DialogueState
    requests: list[dict]  # every request the server received, in order
    rows: list[dict]  # the Hugging Face export's rows, in order
    manifest: dict
    db: Path  # the database it was exported from

    @property
    def agent(self) -> list[dict]:
        return agent_requests(self.requests)

    def samples(self) -> list[tuple[list[dict], int]]:
        return [([json.loads(m) if isinstance(m, str) else m for m in row["messages"]], row["context_turns"]) for row in self.rows]

    def own_turns(self) -> list[tuple[dict, list[dict], dict]]:
        """(row, the messages before the turn, the turn) for every assistant turn a row holds as its own, in order."""
        return [(self.rows[k], before, turn) for k, before, turn in sample_turns(self.samples())]


def _export(root: Path, start: DialogueState, stub_context: int | None) -> Exported:
    with StubServer(lambda request: ScriptedChatModel(), record_requests=True, max_context_tokens=stub_context) as server:
        state = asyncio.run(run_graph(root / "run.db", "t", start, server.base_url))
        requests = list(server.requests)
    assert state.stop_reason is StopReason.MAX_USER_TURNS and state.error is None, state.error
    assert dialogue_problem(state.messages) is None
    store_states(root / "export.db", {"t": state})
    result = export(root / "export.db", root / "hf", "hf")
    rows = list(datasets.load_from_disk(str(root / "hf"))["train"])
    return Exported(state, requests, rows, json.loads(result.manifest_path.read_text()), root / "export.db")


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> Exported:
    return _export(tmp_path_factory.mktemp("fits"), long_dialogue(4, 16), None)


@pytest.fixture(scope="module")
def slides(tmp_path_factory) -> Exported:
    start = long_dialogue(5, 36, ToolSimulation(context_tokens=2_000, tool_error_rate=0.05), context_tokens=SMALL)
    return _export(tmp_path_factory.mktemp("slides"), start, STUB_CONTEXT)


@pytest.fixture(params=["fits", "slides"])
def dialogue(request) -> Exported:
    return request.getfixturevalue(request.param)


def test_a_dialogue_that_fits_is_one_sample_and_one_that_outgrows_the_budget_is_several(fits, slides):
    assert len(fits.rows) == 1 and fits.rows[0]["segments"] == 1
    assert {(m.context.start, m.context.request) for m in fits.state.messages if m.role == "assistant"} == {(0, None)}
    assert len(slides.rows) >= 4, "the small budget should be outgrown several times"
    assert [row["segment"] for row in slides.rows] == list(range(len(slides.rows)))
    assert {row["thread_id"] for row in slides.rows} == {"t"} and {row["segments"] for row in slides.rows} == {len(slides.rows)}
    assert slides.manifest["counts"]["samples"] == len(slides.rows) and slides.manifest["counts"]["exported"] == 1
    assert slides.manifest["runs"][0]["samples"] == {"t": len(slides.rows)}
    assert slides.manifest["target"]["reasoning"].startswith("kept")  # the default now
    stats = collect_stats(slides.db)  # counts the trajectory's turns once, and says how many samples it makes
    assert stats.overall.samples == 1 and stats.samples == len(slides.rows)
    assert stats.overall.turn.values == [sum(1 for m in view_of(slides.state).state.messages if m.role != "system")]


def test_every_exported_turn_is_exactly_the_request_that_produced_it(dialogue):
    turns = dialogue.own_turns()
    requests = dialogue.agent
    assert turns and len(turns) <= len(requests)
    assert any(not turn["train"] for _, _, turn in turns)  # masked turns (invalid calls) are checked too
    for k, ((row, before, turn), body) in enumerate(zip(turns, requests)):
        system, *sent = body["messages"]
        assert system == {"role": "system", "content": before[0]["content"]} and before[0]["role"] == "system", k
        assert [t for t in json.loads(json.dumps(body["tools"]))] == [json.loads(t) if isinstance(t, str) else t for t in row["tools"]], k
        assert [wire_message(m) for m in sent] == sample_context(before[1:]), f"turn {k} (segment {row['segment']})"


def test_the_shared_check_finds_every_trained_turn_identical_and_every_in_loop_request_with_its_reasoning(dialogue):
    tools = [json.loads(t) if isinstance(t, str) else t for t in dialogue.rows[0]["tools"]]
    found = faithfulness(dialogue.samples(), tools, dialogue.requests)
    assert found.turns > 20 and found.identical == found.turns
    assert found.in_loop >= 8 and found.with_reasoning == found.in_loop


def test_each_turn_is_in_one_sample_as_its_own_and_every_turn_up_to_the_last_reply_is(dialogue):
    trained = [turn for _, _, turn in dialogue.own_turns()]
    replies = [i for i, m in enumerate(dialogue.state.messages) if m.role == "assistant" and not m.tool_calls]
    in_span = [m for m in dialogue.state.messages[: replies[-1] + 1] if m.role == "assistant"]
    # the view may end earlier (a capped dialogue ends after its last completed task): a prefix of them
    assert 0 < len(trained) <= len(in_span)
    for turn, message in zip(trained, in_span):
        assert turn["content"] == message.content and turn.get("reasoning_content") == message.reasoning
        assert [c["id"] for c in turn.get("tool_calls", [])] == [c.id for c in message.tool_calls]


def test_every_in_loop_request_carries_the_loops_earlier_reasoning(dialogue):
    by_id = {c.id: m for m in dialogue.state.messages for c in m.tool_calls}
    in_loop = 0
    for body in dialogue.agent:
        messages = body["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            stored = by_id[m["tool_calls"][0]["id"]] if m.get("tool_calls") else None
            if i > last_user:
                assert stored is not None and stored.reasoning and m.get("reasoning_content") == stored.reasoning
            else:
                assert "reasoning_content" not in m  # earlier requests' reasoning stays out, as templates drop it
        in_loop += any(m["role"] == "assistant" for m in messages[last_user + 1:])
    assert in_loop >= 8


def test_no_request_exceeds_its_budget_in_the_servers_count(slides):
    """The server counts denser than our estimate: calibrated with its usage figures, every agent
    and user-simulator request stays within the budget in the server's own tokens."""
    agent = [prompt_tokens(body) for body in slides.agent]
    user = [prompt_tokens(body) for body in user_simulator_requests(slides.requests)]
    assert max(agent) <= SMALL and max(user) <= SMALL
    assert max(agent) > 0.8 * SMALL  # the budget is used, not merely undercut
    recorded = [m.context for m in slides.state.messages if m.role == "assistant"]
    assert all(c.prompt_tokens is not None for c in recorded)


# ------------------------------------------------------------------ samples of a hand-grown dialogue


def _pinned_loop_dialogue() -> Dialogue:
    """An exchange, then one request whose tool loop outgrows the budget, then more exchanges."""
    d = Dialogue(budget=3_000)
    for _ in range(3):
        d.exchange()
    d.user()
    for _ in range(30):
        d.agent(calls=1, result_words=150)
    d.agent()
    for _ in range(10):
        d.exchange()
    return d


def test_every_turn_of_every_sample_is_trained_on_its_recorded_window_even_inside_a_long_loop():
    d = _pinned_loop_dialogue()
    samples = build_samples(as_state(d))
    trained = [(sample, i) for sample in samples for i, m in enumerate(sample.messages)
               if m["role"] == "assistant" and not m["context"]]
    turns = [j for j, m in enumerate(d.messages) if m.role == "assistant"]
    assert len(trained) == len(turns) and len(samples) >= 4
    for (sample, i), j in zip(trained, turns):
        shown, _ = agent_view(d.messages, j, d.messages[j].context)
        assert [(m.role, m.content, [c.id for c in m.tool_calls]) for m in shown] == [
            (m["role"], m["content"], [c["id"] for c in m.get("tool_calls") or []]) for m in sample.messages[:i]], j
    pinned = [s for s in samples if s.messages[1]["role"] == "assistant"]
    assert pinned and all(s.messages[0]["role"] == "user" for s in pinned)  # opens on the request it answers
    assert [s.segment for s in samples] == list(range(len(samples))) and samples[-1].segments == len(samples)


def test_context_turns_are_masked_in_openai_and_samples_holding_them_left_out_of_sharegpt():
    samples = build_samples(as_state(_pinned_loop_dialogue()))
    for sample in samples:
        record = openai_record(sample, ToolNames())
        context = [m["context"] for m in sample.messages if m["role"] == "assistant"]
        weights = [m.get("weight") for m in record["messages"] if m["role"] == "assistant"]
        assert weights == [0 if c else None for c in context]
        if any(context):
            with pytest.raises(SampleSkipped, match="holds_context_turns_sharegpt_cannot_mask"):
                sharegpt_record(sample, with_reasoning=True, tally=Counter())
        else:
            assert sharegpt_record(sample, with_reasoning=True, tally=Counter())["conversations"]
    assert not any(m.get("context") for m in samples[0].messages) and any(m.get("context") for m in samples[1].messages)
