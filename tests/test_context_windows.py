"""The context policy by tokens (``dialogforge.context_windows``), on dialogues grown turn by turn.

Each agent turn takes the window the policy gives it and records it, as ``run_agent`` does, so
every test also checks the incremental count against a count from scratch.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from dialogforge import context_windows
from dialogforge.context_windows import KEEP_AFTER_SLIDE, agent_view, agent_window, reasoning_tokens, seen_window, transcript_window
from dialogforge.errors import ContextBudgetError
from dialogforge.nodes.simulate_user import transcript_tokens
from dialogforge.nodes.run_agent import run_agent
from dialogforge.records import Limits, Message, SeenContext, StopReason, ToolCall, ToolSimulation
from dialogforge.testing.openai_wire import prompt_tokens
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from tests.support.builders import runtime_with, state_with_task
from tests.support.windows import FIXED, Dialogue, fresh_tokens
from tests.support.wire import agent_requests, long_dialogue, run_graph, user_simulator_requests

def _checked(d: Dialogue) -> None:
    """Every recorded window: within the budget, counted right, and never splitting a call from its results."""
    starts = []
    for end, m in enumerate(d.messages):
        if m.role != "assistant":
            continue
        w = m.context
        assert w.tokens == fresh_tokens(d.messages, end, w), end
        assert w.estimated == FIXED + w.tokens <= d.budget / (d.ratio or 1), end
        first = d.messages[w.start]
        assert first.role == "user" or (w.request is not None and d.messages[w.request].role == "user" and first.role == "assistant"), end
        starts.append(w.start)
    assert starts == sorted(starts)  # a window never goes back


def test_everything_is_kept_while_it_fits():
    d = Dialogue(budget=20_000)
    for _ in range(5):
        d.exchange()
    assert {(w.start, w.request) for w in d.windows} == {(0, None)}
    _checked(d)


def test_past_the_budget_the_oldest_whole_exchanges_leave_down_to_half_the_room():
    d = Dialogue(budget=3_000)
    for _ in range(40):
        d.exchange()
    _checked(d)
    slides = [(before, after) for before, after in zip(d.windows, d.windows[1:]) if after.start != before.start]
    assert len(slides) >= 5
    for before, after in slides:
        assert after.tokens <= KEEP_AFTER_SLIDE * (3_000 - FIXED) + 1  # down to half the room...
        grown = before.tokens + 400  # ...from a window that was about to overflow
        assert grown > KEEP_AFTER_SLIDE * (3_000 - FIXED)
    # between slides the window stays put for several turns
    assert len(d.windows) / (len(slides) + 1) >= 4


def test_a_tool_loop_longer_than_the_budget_keeps_its_request_first_and_drops_its_oldest_rounds():
    d = Dialogue(budget=3_000)
    d.exchange()
    d.user()
    request = len(d.messages) - 1
    for _ in range(30):
        d.agent(calls=1, result_words=150)
    last = d.agent()
    _checked(d)
    assert last.request == request and last.start > request + 1
    assert d.messages[last.start].role == "assistant" and d.messages[last.start].tool_calls
    shown, reasoning_from = agent_view(d.messages, len(d.messages) - 1, last)
    assert shown[0] is d.messages[request] and reasoning_from == 1  # every shown turn is of this loop: reasoning goes back
    assert last.loop_reasoning == sum(reasoning_tokens(m) for m in shown)
    # The next request's window still opens on the old request (it starts inside that exchange), but
    # the old loop's reasoning is sent no more; a later slide starts it at a user message again.
    d.user()
    after = d.agent()
    assert (after.start, after.request, after.loop_reasoning) == (last.start, request, 0)
    shown, reasoning_from = agent_view(d.messages, len(d.messages) - 1, after)
    assert reasoning_from == len(shown)
    for _ in range(6):
        d.exchange()
    assert d.windows[-1].request is None and d.messages[d.windows[-1].start].role == "user"
    _checked(d)


def test_one_message_too_large_for_the_budget_fails_and_names_it():
    d = Dialogue(budget=2_000)
    d.user()
    d.agent(calls=1, result_words=2_000)
    with pytest.raises(ContextBudgetError, match=r"agent: one message does not fit the context budget of 2000 tokens: "
                                                 r"the result of get_order at position 2 alone takes about \d+"):
        d.agent()
    with pytest.raises(ContextBudgetError, match="the instructions and tool specs alone take about 2500 tokens"):
        agent_window(d.messages[:1], fixed=2_500, budget=2_000)


def test_the_endpoints_count_calibrates_the_budget():
    """An endpoint that counts twice our estimate halves the room: the window slides sooner and the
    reported sizes, not the estimates, stay within the budget."""
    ours, theirs = Dialogue(budget=4_000), Dialogue(budget=4_000, prompt_ratio=2.0)
    for d in (ours, theirs):
        for _ in range(30):
            d.exchange()
        _checked(d)
    assert max(w.prompt_tokens for w in theirs.windows[1:]) <= 4_000
    assert max(w.estimated for w in theirs.windows[1:]) <= 2_000 < max(w.estimated for w in ours.windows)


def test_the_user_simulator_reads_whole_exchanges_within_its_budget():
    d = Dialogue(budget=50_000)
    windows = []  # (the window, where the simulator's message went)
    for _ in range(40):
        d.exchange()
        w = transcript_window(d.messages, cost=transcript_tokens, fixed=FIXED, budget=2_500, role="user_simulator",
                              flag="--user-context-tokens")
        windows.append((w, len(d.messages)))
        d.messages.append(Message(role="user", content="thanks, next", context=w))
    for w, end in windows:
        assert FIXED + w.tokens <= 2_500 and w.tokens == sum(transcript_tokens(m) for m in d.messages[w.start:end])
    slid = [w for w, _ in windows if w.start]
    assert len({w.start for w in slid}) >= 3 and all(d.messages[w.start].role == "user" for w in slid)


def test_a_turn_written_before_windows_were_recorded_saw_its_last_history_window_messages():
    messages = [Message(role="user", content="hi"), Message(role="assistant", content="hello")] * 30
    assert seen_window(messages, 59, history_window=80) == (0, None)
    assert seen_window(messages, 59, history_window=10) == (50, None)  # starting at a user message
    recorded = messages[:59] + [messages[59].model_copy(update={"context": SeenContext(start=40, request=38)})]
    assert seen_window(recorded, 59, history_window=10) == (40, 38)


def test_each_message_is_estimated_a_bounded_number_of_times_however_long_the_dialogue(monkeypatch):
    """The window grows from the last one: over a long dialogue each message is counted about
    twice (when it comes, and when it leaves), not once per turn."""
    counted = []
    real = context_windows.agent_tokens
    monkeypatch.setattr(context_windows, "agent_tokens", lambda m: counted.append(1) or real(m))
    d = Dialogue(budget=3_000)
    for _ in range(150):
        d.exchange(rounds=1)
    assert len(counted) <= 3 * len(d.messages)


# ------------------------------------------------------------------ through the nodes and the wire


async def test_a_tool_result_too_large_for_the_agents_budget_fails_the_trajectory_and_says_so():
    call = ToolCall(id="c1", name="get_order", arguments={"order_id": "A1"})
    messages = [Message(role="user", content="Where is order A1?"), Message(role="assistant", tool_calls=[call]),
                Message(role="tool", tool_call_id="c1", name="get_order", content=json.dumps({"notes": "word " * 3_000}))]
    state = state_with_task(messages=messages, limits=Limits(agent_context_tokens=2_000))
    update = await run_agent(state, runtime_with())
    assert update["stop_reason"] is StopReason.ERROR
    assert update["error"].startswith("agent: one message does not fit the context budget of 2000 tokens: "
                                      "the result of get_order at position 2 alone takes about ")
    assert "--agent-context-tokens" in update["error"]


def test_an_endpoint_whose_context_is_smaller_than_the_budget_gets_shorter_requests_and_the_dialogue_goes_on(tmp_path):
    """The server's context (2,800 of its tokens) is below the budget (4,000): it refuses, naming its
    context; the agent and the user simulator send the request again on a window cut to 3/4 of that
    context, and keep the cut."""
    start = long_dialogue(5, 24, ToolSimulation(context_tokens=2_000, tool_error_rate=0), context_tokens=4_000)
    with StubServer(lambda request: ScriptedChatModel(), record_requests=True, max_context_tokens=2_800) as server:
        state = asyncio.run(run_graph(tmp_path / "run.db", "t", start, server.base_url))
        requests = list(server.requests)
    assert state.error is None and state.stop_reason is StopReason.MAX_USER_TURNS
    refused = [b for b in agent_requests(requests) if prompt_tokens(b) > 2_800]
    assert len(refused) == 1  # refused once, then the cut is kept
    scales = [m.context.scale for m in state.messages if m.role == "assistant"]
    assert scales[0] == 1 and set(scales) == {1, 0.75 * 2_800 / 4_000} and scales == sorted(scales, reverse=True)
    assert all(prompt_tokens(b) <= 2_800 for b in user_simulator_requests(requests)[-5:])


@pytest.mark.parametrize("status, body, overflow", [
    (400, {"message": "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens."}, True),
    (400, {"message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}, True),
    (400, {"message": "Requested token count exceeds the model's maximum context length", "code": "context_length_exceeded"}, True),
    (400, {"message": "response_format type 'json_schema' is not supported"}, False),
    (401, {"message": "maximum context length? no: a bad key"}, False),
])
def test_a_refusal_for_context_length_is_told_from_other_refusals(status, body, overflow):
    import httpx
    import openai

    from dialogforge.models.call import context_overflow, model_context_of

    response = httpx.Response(status, request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    error = openai.APIStatusError(body["message"], response=response, body={"error": body})
    assert context_overflow(error) is overflow
    named = {"This model's maximum context length is 32768 tokens. However, you requested 40000 tokens.": 32_768}
    assert model_context_of(error) == named.get(body["message"])
    llama = openai.APIStatusError("exceeds", response=response, body={"error": {"n_ctx": 8192, "n_prompt_tokens": 9000}})
    assert model_context_of(llama) == 8192
