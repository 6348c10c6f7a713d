"""Bounds on the grammar schema narrow what the embedded model may write, never widen it."""

from __future__ import annotations

from dialogforge.models.grammar_bounds import MAX_ITEMS, MAX_STRING_CHARS, bounded
from dialogforge.graphs.state import ProposedTask, UserQuestions
from dialogforge.models.agent_turn import AgentStep


def _all(schema, key):
    if isinstance(schema, dict):
        if key in schema:
            yield schema
        for value in schema.values():
            yield from _all(value, key)
    elif isinstance(schema, list):
        for item in schema:
            yield from _all(item, key)


def test_lists_and_free_text_get_bounds():
    schema = bounded(UserQuestions.model_json_schema())
    questions = schema["properties"]["questions"]
    assert questions["maxItems"] == MAX_ITEMS and questions["minItems"] == 1
    assert questions["items"]["maxLength"] == MAX_STRING_CHARS


def test_existing_tighter_bounds_and_minimums_are_kept():
    assert bounded({"type": "array", "maxItems": 2})["maxItems"] == 2
    assert bounded({"type": "array", "minItems": 9})["maxItems"] == 9  # never below the minimum
    assert bounded({"type": "string", "minLength": 500})["maxLength"] == 500
    assert "maxLength" not in bounded({"type": "string", "pattern": "^get_[a-z]+$"})
    assert "maxLength" not in bounded({"type": "string", "enum": ["a", "b"]})


def test_every_array_of_the_llm_schemas_is_bounded():
    for model in (ProposedTask, AgentStep, UserQuestions):
        schema = bounded(model.model_json_schema())
        arrays = [s for s in _all(schema, "type") if s["type"] == "array"]
        assert arrays and all(s["maxItems"] <= max(MAX_ITEMS, s.get("minItems", 0)) for s in arrays), model


def test_json_schemas_carried_as_data_become_flat_described_objects():
    from dialogforge.graphs.state import ResultSchemas, ToolDrafts

    for model, item, field in ((ToolDrafts, "ToolDraft", "parameters"), (ResultSchemas, "ResultSchema", "result_schema")):
        full = model.model_json_schema()
        assert full["$defs"][item]["properties"][field]["x-json-schema"] is True
        narrowed = bounded(full)["$defs"][item]["properties"][field]
        assert narrowed["properties"]["type"] == {"const": "object"}
        assert narrowed["properties"]["properties"]["additionalProperties"]["required"] == ["type", "description"]
