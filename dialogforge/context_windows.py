"""Context windows by tokens: what the agent and the user simulator are sent of a long dialogue.

A dialogue of hundreds of turns with long tool results outgrows any model's
context, so each role's request is held to a token budget over the whole
request -- instructions, tool specs and the conversation: the agent's
``Limits.agent_context_tokens``, the user simulator's
``Limits.user_context_tokens`` (the tool simulator's is
``ToolSimulation.context_tokens``, applied by ``executors.memory``).

**Counting.** Before a role's first call a request is counted with
``dialogforge.tokens``'s estimate. After it, the endpoint's own figure
calibrates the count: the budget is divided by the ratio of the prompt tokens
the endpoint reported for the role's previous request to our estimate of that
request (bounded to ``CALIBRATION``), so a model whose tokenizer is denser
than the estimate is not overrun, and one that is sparser is not under-used.

**Policy.** Everything is kept while it fits. Past the budget the oldest
whole exchanges (a user message and everything that answers it) leave the
window until the conversation takes at most ``KEEP_AFTER_SLIDE`` of the room
the instructions and tools leave. The window then stays put for many turns:
that keeps the number of training samples small (each slide starts a new
one, ``dialogforge.dataset.samples``) and the endpoint's prefix cache warm.
When the current request's own tool loop does not fit, its user message
stays first and the loop's oldest rounds (a call with its results) leave;
the window then starts inside that exchange, its user message pinned before
it, until a later slide moves it to a user message again. A call is never
sent without its results, nor a result without its call, and a window never
opens on an assistant turn without the request it answers. A
request that cannot fit even with only its user message, or only the newest
round, fails with a ``ContextBudgetError`` naming the message that is too large.

**Interleaved reasoning.** The agent's reasoning on its turns of the current
tool loop (after the request's user message) is sent back with those turns,
as reasoning models served for tool use expect; the reasoning of earlier
requests is not, as Qwen3's and gpt-oss's chat templates drop it.

**Cost.** Every message a role writes records its window
(``records.SeenContext``): the next window starts from the last one, adding
the messages written since and, on a slide, subtracting those that leave. A
message is estimated about twice over a whole dialogue, never once per turn.
"""

from __future__ import annotations

from typing import Callable, Iterable

from dialogforge.errors import ContextBudgetError
from dialogforge.records import Message, SeenContext
from dialogforge.tokens import MESSAGE_OVERHEAD, estimate_json_tokens, estimate_tokens

KEEP_AFTER_SLIDE = 0.5
CALIBRATION = (0.5, 2.0)  # bounds of the endpoint-to-estimate ratio a budget is scaled by
CALL_OVERHEAD = 8  # a call's id, type and brackets; a result's tool_call_id
# An endpoint that refuses a request as longer than its context (``ContextOverflowError``: its
# context is smaller than the budget) gets it again on a window cut to SHRINK of the budget, up to
# RETRIES times; the role's later windows keep the cut (``SeenContext.scale``). When the refusal
# names the model's context, the budget is cut to CONTEXT_SHARE of it at once (the share the
# default budgets give a request of a 32k model: the rest is the reply's).
OVERFLOW_SHRINK, OVERFLOW_RETRIES, CONTEXT_SHARE = 0.75, 2, 0.75

Cost = Callable[[Message], int]


# ---------------------------------------------------------------- what messages cost


def agent_tokens(m: Message) -> int:
    """A message's cost in the agent's request, its reasoning aside (that is sent only inside its loop)."""
    cost = estimate_tokens(m.content) + MESSAGE_OVERHEAD
    for c in m.tool_calls:
        arguments = estimate_tokens(c.raw_arguments) if c.raw_arguments is not None else estimate_json_tokens(c.arguments)
        cost += estimate_tokens(c.name) + arguments + CALL_OVERHEAD
    return cost + (CALL_OVERHEAD if m.role == "tool" else 0)


def reasoning_tokens(m: Message) -> int:
    return estimate_tokens(m.reasoning) if m.role == "assistant" and m.reasoning else 0


def calibration(record: SeenContext | None) -> float:
    """The endpoint's count over our estimate for the role's previous request (1 before any)."""
    if record is None or not record.prompt_tokens or not record.estimated:
        return 1.0
    low, high = CALIBRATION
    return min(max(record.prompt_tokens / record.estimated, low), high)


# ---------------------------------------------------------------- positions


def conversation_base(messages: list[Message]) -> int:
    """The first position of the conversation proper: an imported system message is the system prompt."""
    return 1 if messages and messages[0].role == "system" else 0


def loop_start(messages: list[Message], end: int) -> int:
    """The first position of the tool loop the turn at ``end`` belongs to (just after its request's user message)."""
    for i in range(end - 1, -1, -1):
        if messages[i].role == "user":
            return i + 1
    return conversation_base(messages)


def window_positions(record: SeenContext, end: int) -> list[int]:
    return ([record.request] if record.request is not None else []) + list(range(record.start, end))


def agent_view(messages: list[Message], end: int, record: SeenContext) -> tuple[list[Message], int]:
    """The messages the agent's turn at ``end`` was sent, and from which of them on reasoning went with them."""
    positions = window_positions(record, end)
    loop = loop_start(messages, end)
    reasoning_from = next((k for k, i in enumerate(positions) if i >= loop), len(positions))
    return [messages[i] for i in positions], reasoning_from


def seen_window(messages: list[Message], end: int, history_window: int) -> tuple[int, int | None]:
    """(start, request) of the window the agent's turn at ``end`` saw: as recorded, or, for a turn
    written before windows were recorded, its last ``history_window`` messages (the rule of then:
    starting at a user message, so no tool result lost its call)."""
    recorded = messages[end].context
    if recorded is not None:
        return recorded.start, recorded.request
    start = 0
    if end > history_window:
        start = end - history_window
        while start < end and messages[start].role != "user":
            start += 1
        start = min(start, end - 1)
    return max(start, conversation_base(messages)), None


# ---------------------------------------------------------------- the policy


def agent_window(messages: list[Message], *, fixed: int, budget: int, refused: int = 0,
                 model_context: int | None = None) -> SeenContext:
    """The agent's window for its next turn (at ``len(messages)``); ``fixed`` is what the system
    prompt and tools cost, ``refused`` how often the endpoint refused this turn's request as too
    long, ``model_context`` the context its last refusal named."""
    end = len(messages)
    loop = loop_start(messages, end)
    previous = _latest(messages, "assistant")
    start, request, tokens, loop_reasoning = _grown(messages, end, loop, previous)
    scale = _scale(previous, refused, model_context, budget)
    room = budget * scale / calibration(previous[1] if previous else None) - fixed
    if tokens > room:
        target = KEEP_AFTER_SLIDE * room
        # 1. whole exchanges before the current request
        cuts = (i for i in range(start + 1, loop) if messages[i].role == "user")
        moved, tokens, loop_reasoning = _drop(messages, start, tokens, loop_reasoning, loop, cuts, target)
        if moved != start and request is not None:  # the window starts at a user message again
            tokens -= agent_tokens(messages[request])
            request = None
        start = moved
        if tokens > room:  # 2. the loop's oldest rounds; its request's user message stays first
            if request is None and start == loop - 1 and messages[start].role == "user":
                request, start = start, loop
            newest = max((i for i in range(start, end) if messages[i].role == "assistant"), default=start)
            cuts = (i for i in range(start + 1, newest + 1) if messages[i].role == "assistant")
            start, tokens, loop_reasoning = _drop(messages, start, tokens, loop_reasoning, loop, cuts, target)
        if tokens > room:
            shown = window_positions(SeenContext(start=start, request=request), end)
            raise ContextBudgetError("agent: " + _too_large(messages, shown, agent_tokens, fixed, budget, "--agent-context-tokens"))
    return SeenContext(start=start, request=request, tokens=tokens, loop_reasoning=loop_reasoning,
                       estimated=fixed + tokens, scale=scale)


def transcript_window(messages: list[Message], *, cost: Cost, fixed: int, budget: int, role: str, flag: str,
                      refused: int = 0, model_context: int | None = None) -> SeenContext:
    """A window of whole exchanges for a role that reads the dialogue as a transcript (the user
    simulator), its records kept on the user messages; ``cost`` is what a message adds to it."""
    end = len(messages)
    previous = _latest(messages, "user")
    if previous is None:
        start = conversation_base(messages)
        tokens = sum(cost(m) for m in messages[start:end])
    else:
        at, record = previous
        start, tokens = record.start, record.tokens + sum(cost(m) for m in messages[at:end])
    scale = _scale(previous, refused, model_context, budget)
    room = budget * scale / calibration(previous[1] if previous else None) - fixed
    if tokens > room:
        last = loop_start(messages, end) - 1
        cuts = [i for i in range(start + 1, end) if messages[i].role == "user" or i > last]
        start, tokens = _drop_transcript(messages, start, tokens, cuts, KEEP_AFTER_SLIDE * room, cost)
        if tokens > room:
            raise ContextBudgetError(f"{role}: " + _too_large(messages, list(range(start, end)), cost, fixed, budget, flag))
    return SeenContext(start=start, tokens=tokens, estimated=fixed + tokens, scale=scale)


def _scale(previous: tuple[int, SeenContext] | None, refused: int, model_context: int | None, budget: int) -> float:
    scale = (previous[1].scale if previous else 1.0) * OVERFLOW_SHRINK ** refused
    if refused and model_context:
        scale = min(scale, CONTEXT_SHARE * model_context / budget)
    return max(scale, 1e-3)


def _latest(messages: list[Message], role: str) -> tuple[int, SeenContext] | None:
    """The newest message of ``role`` that recorded its window, where the next window grows from.

    For the agent that is its last turn only: a turn without a record (an imported
    conversation, one written before windows were recorded) means counting afresh."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.role == role:
            if m.context is not None:
                return i, m.context
            if role == "assistant":
                return None
    return None


def _grown(messages: list[Message], end: int, loop: int,
           previous: tuple[int, SeenContext] | None) -> tuple[int, int | None, int, int]:
    """(start, request, tokens, loop reasoning) of the previous window grown by the messages since."""
    if previous is None:
        start = conversation_base(messages)
        reasoning = sum(reasoning_tokens(m) for m in messages[max(loop, start):end])
        return start, None, sum(agent_tokens(m) for m in messages[start:end]) + reasoning, reasoning
    at, record = previous
    start, request = record.start, record.request
    tokens = record.tokens + sum(agent_tokens(m) for m in messages[at:end])
    loop_reasoning = record.loop_reasoning
    if loop > at:  # a new request since that turn: the old loop's reasoning is sent no more
        tokens -= loop_reasoning
        added = sum(reasoning_tokens(m) for m in messages[loop:end])
        loop_reasoning = added
    else:
        added = reasoning_tokens(messages[at])
        loop_reasoning += added
    return start, request, tokens + added, loop_reasoning


def _drop(messages: list[Message], start: int, tokens: int, loop_reasoning: int, loop: int,
          cuts: Iterable[int], target: float) -> tuple[int, int, int]:
    """Move the agent's window start to the first cut that brings it under ``target``
    (or to the last cut), subtracting what leaves."""
    for cut in cuts:
        if tokens <= target:
            break
        for k in range(start, cut):
            reasoning = reasoning_tokens(messages[k]) if k >= loop else 0
            tokens -= agent_tokens(messages[k]) + reasoning
            loop_reasoning -= reasoning
        start = cut
    return start, tokens, loop_reasoning


def _drop_transcript(messages: list[Message], start: int, tokens: int, cuts: Iterable[int], target: float,
                     cost: Cost) -> tuple[int, int]:
    for cut in cuts:
        if tokens <= target:
            break
        tokens -= sum(cost(messages[k]) for k in range(start, cut))
        start = cut
    return start, tokens


def _too_large(messages: list[Message], shown: list[int], cost: Cost, fixed: int, budget: int, flag: str) -> str:
    if fixed >= budget:
        return (f"the instructions and tool specs alone take about {fixed} tokens, over the context budget "
                f"of {budget}; raise {flag}")
    biggest = max(shown, key=lambda i: cost(messages[i]))
    m = messages[biggest]
    what = {"tool": f"the result of {m.name or 'a tool call'}", "user": "the user message",
            "assistant": "the assistant turn"}.get(m.role, f"the {m.role} message")
    return (f"one message does not fit the context budget of {budget} tokens: {what} at position {biggest} alone "
            f"takes about {cost(m)}, beside {fixed} for the instructions and tool specs; raise {flag}")
