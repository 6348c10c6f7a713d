"""What the orchestrator derives once per object instead of once per LLM call (issue 23), and that
it derives the same as the per-call code it replaced."""

from __future__ import annotations

import gc
import json
import random

from dialogforge.identity import ByIdentity
from dialogforge.compat.openai_chat import ReasoningChatOpenAI, wire_message
from dialogforge.models.convert import history, langchain_of, to_langchain, wire_of, wire_text
from dialogforge.models.tool_wire import openai_tools, tools_tokens
from dialogforge.records import Message, ToolCall, ToolSpec
from dialogforge.tokens import _TOKEN, estimate_json_tokens, estimate_tokens


class _Thing:
    pass


def test_by_identity_derives_once_per_object_and_forgets_it_when_it_goes():
    made = []
    cache = ByIdentity(lambda obj: made.append(id(obj)) or len(made))
    a, b = _Thing(), _Thing()
    assert cache(a) == 1 and cache(a) == 1 and cache(b) == 2
    del a
    gc.collect()
    assert len(cache) == 1


def test_caches_share_one_weak_reference_per_object_and_all_forget_it_together():
    from dialogforge import identity

    first, second = ByIdentity(lambda obj: "first"), ByIdentity(lambda obj: "second")
    a, b = _Thing(), _Thing()
    refs_before = len(identity._refs)
    assert (first(a), second(a), second(b)) == ("first", "second", "second")
    assert len(identity._refs) == refs_before + 2 and identity._refs[id(a)]() is a  # one per object, not per cache
    assert first(a) == "first" and len(identity._refs) == refs_before + 2  # a hit adds nothing
    key = id(a)
    del a
    gc.collect()
    assert key not in identity._refs and key not in first.values and key not in second.values
    assert len(first) == 0 and len(second) == 1 and second(b) == "second"


def test_an_id_whose_reference_went_stale_is_derived_afresh():
    from dialogforge import identity

    made = []
    cache = ByIdentity(lambda obj: made.append(obj) or len(made))
    a, b = _Thing(), _Thing()
    assert cache(a) == 1
    # what a reused id looks like: the registry's reference for id(b) points at another object
    identity._refs[id(b)] = identity._refs[id(a)]
    cache.values[id(b)] = 1
    assert cache(b) == 2 and identity._refs[id(b)]() is b and cache(b) == 2


def test_a_record_goes_to_the_wire_once_and_with_reasoning_only_where_asked():
    call = ToolCall(id="c1", name="get_order", arguments={"order_id": "A1"})
    records = [Message(role="user", content="hi"),
               Message(role="assistant", content="", reasoning="look it up", tool_calls=[call]),
               Message(role="tool", content="{}", tool_call_id="c1", name="get_order")]
    first, again = wire_of(history(records), "reasoning_content"), wire_of(history(records), "reasoning_content")
    assert all(x is y for x, y in zip(first, again))  # one wire dict per record in its life
    assert "reasoning_content" not in first[1]
    loop = wire_of(history(records, reasoning_from=1), "reasoning")
    assert loop[1] == {**first[1], "reasoning": "look it up"} and loop[0] is first[0]
    assert wire_of(history(records, reasoning_from=1), "reasoning")[1] is loop[1]
    assert wire_of(history(records, reasoning_from=1), None)[1] is first[1]  # an endpoint that is not sent reasoning
    # The same dicts as ChatOpenAI's own conversion of the LangChain forms, reasoning in the endpoint's field.
    client = ReasoningChatOpenAI(model="m", api_key="x", base_url="http://127.0.0.1:9/v1", reasoning_field="reasoning")
    lc = to_langchain(records, reasoning_from=1)
    assert client._chat_body(lc, {})["messages"] == loop
    assert lc[1].additional_kwargs["reasoning_content"] == "look it up" and lc[1].tool_calls[0]["args"] == {"order_id": "A1"}
    assert "reasoning_content" not in to_langchain(records)[1].additional_kwargs
    assert client._chat_body(to_langchain([Message(role="user", content="é")]), {})["messages"] == [wire_text("user", "é")]


def test_the_tool_list_count_is_exactly_the_per_call_count():
    tools = [ToolSpec.model_validate({"type": "function", "function": {
        "name": f"tool_{i}", "description": "Fetch a récord by id, « quoted »" if i % 2 else "Fetch a record.",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}})
        for i in range(5)]
    for k in range(len(tools) + 1):
        assert tools_tokens(tools[:k]) == estimate_json_tokens([t.openai_tool() for t in tools[:k]])
    assert openai_tools(tools) == [t.openai_tool() for t in tools]


def test_the_ascii_token_count_equals_the_general_pattern():
    rng = random.Random(0)
    alphabet = "".join(map(chr, range(128)))
    texts = ["", " ", "a b", " \n", "x ", json.dumps({"a": [1, 22, 333, 4444], "b_c": "d  e\t"}, indent=1)]
    texts += ["".join(rng.choice(alphabet if rng.random() < 0.5 else ' a_\n\t{}":,09xyz') for _ in range(rng.randrange(60)))
              for _ in range(3000)]
    for text in texts:
        assert estimate_tokens(text) == len(_TOKEN.findall(text)), repr(text)


def test_the_user_simulators_transcript_lines_are_made_once_and_read_as_before():
    from langchain_core.messages import AIMessage, HumanMessage

    from dialogforge.nodes.simulate_user import _note, _transcript

    call = ToolCall(id="c1", name="get_order", arguments={"order_id": "A1"})
    history = [Message(role="user", content="where is my order?"),
               Message(role="assistant", content="", tool_calls=[call]),
               Message(role="tool", content='{"status": "shipped"}', tool_call_id="c1", name="get_order"),
               Message(role="assistant", content="It has shipped."),
               Message(role="user", content="thanks")]
    first, again = _transcript(history), _transcript(history)
    assert all(x is y for x, y in zip(first, again)) and len(first) == 3
    fresh = [AIMessage("where is my order?"), HumanMessage(f"{_note(history[2])}\nIt has shipped."), AIMessage("thanks")]
    assert first == [wire_message(m) for m in fresh]  # the lines as ChatOpenAI sends them
    assert [(type(m), m.content) for m in langchain_of(first)] == [(type(m), m.content) for m in fresh]
    # The same reply after other tool results (a window that starts later) reads with its own notes.
    assert _transcript(history[3:])[0]["content"] == "It has shipped." and _transcript(history[3:])[0] is not first[1]


def test_a_long_ascii_text_counted_by_runs_equals_the_regex_count():
    from dialogforge.tokens import _CLASS_TOKEN, _CLASSES, _RUNS_FROM

    rng = random.Random(1)
    pieces = [" ", "  ", "\n", "\n ", "\t", "a", "word", "abcdefghijk", "_", "{", "\":", ",", "0", "12345", ".", "\x01"]
    for length in (_RUNS_FROM, _RUNS_FROM + 1, 3 * _RUNS_FROM):
        for end in ("", " ", "x ", "\n", "  ", " \n"):
            text = "".join(rng.choice(pieces) for _ in range(length))[:length] + end
            assert len(text) >= _RUNS_FROM
            classes = text.encode("ascii").translate(_CLASSES)
            assert estimate_tokens(text) == len(_CLASS_TOKEN.findall(classes)) == len(_TOKEN.findall(text)), end


def test_message_records_share_one_fields_set_however_they_are_made():
    """A dialogue's messages and their parts hold their class's one set of field names (half of
    what a message cost in memory was its own set); made, validated, copied or decoded from a
    checkpoint, and after a field is set, that set is unchanged and equal values stay equal."""
    import copy

    from dialogforge.records import EntityOp, Message, SeenContext, _all_fields
    from checkpoints.serde import StrictSerializer

    made = Message(role="assistant", content="x", tool_calls=[ToolCall(id="c1", name="get", arguments={"a": 1})],
                   context=SeenContext(start=0, tokens=3))
    validated = Message.model_validate(made.model_dump())
    serde = StrictSerializer()
    decoded = serde.loads_typed(serde.dumps_typed(made))
    copies = [made.model_copy(update={"context": SeenContext(start=1)}), copy.copy(made), copy.deepcopy(made),
              made.model_copy(deep=True)]
    for message in [made, validated, decoded, *copies]:
        assert message.__pydantic_fields_set__ is _all_fields(Message)
        assert message.tool_calls[0].__pydantic_fields_set__ is _all_fields(ToolCall)
        assert message.context.__pydantic_fields_set__ is _all_fields(SeenContext)
    assert validated == made == decoded and copies[0].context.start == 1 and made.context.start == 0
    made.content = "changed"
    assert _all_fields(Message) == set(Message.model_fields) and validated.content == "x"
    assert EntityOp.model_fields.keys() == _all_fields(EntityOp)
    assert made.model_dump(exclude_unset=True) == made.model_dump()  # nothing tells a default from a value given
