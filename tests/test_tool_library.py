"""Tool libraries: the paper's tool preparation run once for a domain, kept as a file and checked.

Built with the scripted model: questions, drafted specs, the gap analysis's
additions with reasons, a result schema per tool and one type per shared
entity; seed tools (BFCL's func docs) kept exactly; the naming and "no trivial
helpers" rules refuse with their reason; a broken file is one line per problem.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dialogforge.config import ModelConfig, ModelsConfig
from dialogforge.inputs.library_checks import library_problems
from dialogforge.inputs.seed_tools import load_tools_file
from dialogforge.inputs.tool_library import (
    ToolLibrary, ToolLibraryError, coherent_subset, entity_keys, library_json, load_tool_libraries, load_tool_library,
)
from dialogforge.runs.tool_libraries import build_tool_library
from dialogforge.tool_checks import entity_types_in, schema_problem, tool_rule_problem
from dialogforge.toolprep.stages import PROMPTS

SCRIPTED = ModelsConfig(default=ModelConfig(backend="scripted"))
VERBS = ("get_", "search_", "create_", "update_", "delete_")


@pytest.fixture(scope="module")
def airline(tmp_path_factory) -> tuple[Path, ToolLibrary]:
    out = tmp_path_factory.mktemp("library") / "airline.json"
    return out, build_tool_library("airline bookings", SCRIPTED, seed=2, out=out)


def entity_types_of(library: ToolLibrary) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for tool in library.tools:
        for schema in (tool.function.parameters, tool.result_schema):
            for name, kind in entity_types_in(schema):
                seen.setdefault(name, set()).add(kind)
    return seen


def assert_the_papers_parts(library: ToolLibrary) -> None:
    assert 20 <= len(library.questions) <= 30 and len(set(library.questions)) == len(library.questions)
    names = library.tool_names()
    assert len(names) == len(set(names)) and len(names) >= 5
    assert len(library.gap_additions) <= 10
    assert all(g.reason.strip() and g.tool in names for g in library.gap_additions)
    for tool in library.tools:
        if tool.source == "synthesized":
            assert tool.name.startswith(VERBS) and tool_rule_problem(tool.name) is None, tool.name
        assert schema_problem(tool.function.parameters) is None
        assert tool.result_schema.get("properties") or tool.result_schema.get("items"), tool.name  # a result schema per tool
    assert library_problems(library) == []


def test_a_library_built_from_a_domain_has_the_papers_parts(airline):
    path, library = airline
    assert_the_papers_parts(library)
    assert all(t.source == "synthesized" for t in library.tools)
    assert library.gap_additions, "the scripted gap analysis always adds something"
    types = entity_types_of(library)
    assert all(len(kinds) == 1 for kinds in types.values()), types  # shared entities typed alike across tools
    assert {name: kinds.pop() for name, kinds in types.items()} == library.entity_types
    assert set(library.predicted_results) == set(library.tool_names())
    provenance = library.provenance
    assert provenance.seed == 2 and provenance.models == {"tool_synthesizer": {"backend": "scripted", "model": "default"}}
    assert set(provenance.prompts) == set(PROMPTS) and all(len(v) == 12 for v in provenance.prompts.values())
    assert provenance.usage.calls >= 4 and provenance.seed_tools is None
    assert load_tool_library(path) == library  # what was written is what a run reads
    assert json.loads(path.read_text())["format"] == "dialogforge-tool-library"


def test_over_many_domains_and_seeds_every_library_has_the_papers_parts():
    refused = []
    for domain in ("airline bookings", "customer support for an online store", "hotel reservations"):
        for seed in range(6):
            library = build_tool_library(domain, SCRIPTED, seed=seed)
            assert_the_papers_parts(library)
            refused += library.rejected
            assert not {r.tool for r in library.rejected} & set(library.tool_names())
    helpers = [r for r in refused if r.tool == "get_current_time"]
    assert helpers and all("trivial helper" in r.reason for r in helpers)  # refused, with the reason, never kept


def test_the_same_inputs_build_the_same_library():
    one, two = (build_tool_library("airline bookings", SCRIPTED, seed=4) for _ in range(2))
    assert one.id == two.id and library_json(one).split('"provenance"')[0] == library_json(two).split('"provenance"')[0]


def test_a_library_built_from_bfcl_func_docs_keeps_every_seed_spec_intact(bfcl_dir):
    files = sorted((bfcl_dir / "func_doc").glob("*.jsonl"))
    assert len(files) >= 10
    predicted_seeds = 0
    for path in files:
        seeds = load_tools_file(path)
        library = build_tool_library(path.stem.replace("_", " "), SCRIPTED, tools_file=path)
        kept = {t.name: t for t in library.tools if t.source == "seed"}
        assert list(kept) == [t.name for t in seeds], path.name  # every seed, in its order, before the synthesized
        for seed in seeds:
            mine = kept[seed.name]
            assert mine.function.model_dump_json() == seed.function.model_dump_json(), (path.name, seed.name)
            if seed.result_schema == {"type": "object"}:  # the func doc says nothing of what it returns
                assert seed.name in library.predicted_results and mine.result_schema.get("properties")
                predicted_seeds += 1
            else:
                assert mine.result_schema == seed.result_schema and seed.name not in library.predicted_results
        assert any(t.source == "synthesized" for t in library.tools), path.name
        assert library.provenance.seed_tools.file == path.name and library.provenance.seed_tools.tools == len(seeds)
        assert library_problems(library) == [], (path.name, library_problems(library))
    assert predicted_seeds >= 1  # web_search's search_engine_query has no response schema


def test_a_seed_result_schema_that_is_an_array_is_kept(tmp_path):
    listing = {"type": "array", "items": {"type": "object", "properties": {"order_id": {"type": "integer"}}}}
    seeds = tmp_path / "tools.json"
    seeds.write_text(json.dumps([{"type": "function", "function": {
        "name": "list_orders", "description": "Every order of the customer.",
        "parameters": {"type": "object", "properties": {"customer_id": {"type": "string"}}, "required": ["customer_id"]}},
        "result_schema": listing}]))
    library = build_tool_library("online orders", SCRIPTED, tools_file=seeds)
    (seed,) = [t for t in library.tools if t.source == "seed"]
    assert seed.result_schema == listing and "list_orders" not in library.predicted_results


def test_seed_tools_take_part_in_entity_type_harmonization(tmp_path):
    seeds = tmp_path / "tools.json"
    seeds.write_text(json.dumps([{"type": "function", "function": {
        "name": "lookup_order", "description": "An order by its number.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]}}}]))
    library = build_tool_library("online orders", SCRIPTED, tools_file=seeds)
    assert library.entity_types["order_id"] == "integer"  # the real API's type wins over the drafts' strings
    assert entity_types_of(library)["order_id"] == {"integer"}
    seed = next(t for t in library.tools if t.name == "lookup_order")
    assert seed.function.parameters == json.loads(seeds.read_text())[0]["function"]["parameters"]
    assert seed.name in library.predicted_results and "lookup_order" in library.tool_names()


@pytest.mark.parametrize("name, reason", [
    ("get_order", None),
    ("search_flights_by_city", None),
    ("fetch_order", "must start with get_, search_, create_, update_ or delete_"),
    ("get_Order", "must be snake_case"),
    ("get_order__id", "must be snake_case"),
    ("get_formatted_date", "trivial helper (formatting: 'formatted')"),
    ("create_greeting", "trivial helper (a greeting: 'greeting')"),
    ("get_sum", "trivial helper (arithmetic: 'sum')"),
    ("get_current_time", "trivial helper (a clock or random value: 'current_time')"),
    ("get_address", None),  # "add" inside a word is not arithmetic
])
def test_the_naming_and_trivial_helper_rules_say_why(name, reason):
    problem = tool_rule_problem(name)
    assert (problem is None) if reason is None else (reason in problem), problem


def _broken(library: ToolLibrary) -> dict:
    data = json.loads(library_json(library))
    data["tools"][0]["function"]["name"] = "fetch_" + data["tools"][0]["function"]["name"].split("_", 1)[1]
    data["tools"][1]["function"]["parameters"] = {"type": "object", "properties": {}, "required": ["ghost"]}
    data["gap_additions"].append({"tool": "get_nothing", "reason": "made up"})
    entity, kind = next(iter(data["entity_types"].items()))
    data["entity_types"][entity] = "number" if kind != "number" else "string"
    return data


def test_every_problem_of_a_broken_library_is_one_line(airline, tmp_path, run_cli):
    _, library = airline
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(_broken(library)))
    problems = library_problems(ToolLibrary.model_validate_json(path.read_text()))
    assert len(problems) >= 4 and all("\n" not in p for p in problems)
    assert any("the name must start with get_" in p for p in problems)
    assert any("required parameter 'ghost'" in p for p in problems)
    assert any("gap_additions[" in p and "'get_nothing'" in p for p in problems)
    assert any("but entity_types says" in p for p in problems)
    with pytest.raises(ToolLibraryError, match=rf"and {len(problems) - 1} more: dialogforge tools check"):
        load_tool_library(path)
    checked = run_cli("tools", "check", str(path))
    assert checked.code == 2 and checked.out.splitlines() == [f"{path}: {p}" for p in problems]
    assert checked.err.strip().splitlines() == [f"dialogforge: error: {path}: {len(problems)} problems, the first: {problems[0]}"]


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.update(extra=1), "extra: Extra inputs are not permitted"),
    (lambda d: d.update(version=2), "tool library version 2 is not supported"),
    (lambda d: d.pop("format"), "not a tool library"),
    (lambda d: d["tools"][0].update(result_schema={"type": "object"}), "says only \"an object\""),
    (lambda d: d["tools"][0].update(result_schema={"type": "objekt"}), "result_schema: invalid JSON Schema"),
    (lambda d: d.update(name="Not A Slug"), "name: String should match pattern"),
])
def test_a_malformed_library_is_refused_with_the_file_and_the_problem(airline, tmp_path, edit, needle):
    _, library = airline
    data = json.loads(library_json(library))
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ToolLibraryError) as info:
        load_tool_library(path)
    assert str(info.value).startswith(f"{path}: ") and needle in str(info.value) and "\n" not in str(info.value)


def test_libraries_from_files_and_directories_each_name_once(airline, tmp_path):
    path, library = airline
    folder = tmp_path / "libs"
    folder.mkdir()
    (folder / "a.json").write_text(path.read_text())
    other = build_tool_library("hotel reservations", SCRIPTED)
    (folder / "b.json").write_text(library_json(other))
    (folder / "notes.txt").write_text("not a library")
    assert [lib.name for lib in load_tool_libraries([folder])] == [library.name, other.name]
    with pytest.raises(ToolLibraryError, match="is taken by the same library"):
        load_tool_libraries([folder, path])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolLibraryError, match="no tool libraries"):
        load_tool_libraries([tmp_path / "empty"])


def _tool(name: str, entity: str) -> dict:
    params = {"type": "object", "properties": {entity: {"type": "string"}}, "required": [entity]}
    return {"function": {"name": name, "parameters": params},
            "result_schema": {"type": "object", "properties": {entity: {"type": "string"}, "status": {"type": "string"}}}}


def test_a_coherent_subset_holds_tools_that_share_entities(airline):
    orders = ["get_order", "update_order", "delete_order", "search_orders"]
    flights = ["get_flight", "search_flights", "delete_flight"]
    library = ToolLibrary(name="mixed", domain="orders and flights", questions=["Where is my order?"],
                          tools=[_tool(n, "order_id") for n in orders] + [_tool(n, "flight_id") for n in flights],
                          entity_types={"order_id": "string", "flight_id": "string"},
                          predicted_results=orders + flights)
    assert library_problems(library) == []
    seen = set()
    for seed in range(30):
        subset = coherent_subset(library, 3, random.Random(seed))
        assert len(subset) == 3 and subset == [n for n in library.tool_names() if n in subset]  # library order
        assert subset == coherent_subset(library, 3, random.Random(seed))  # drawn from the seed alone
        assert set(subset) <= set(orders) or set(subset) <= set(flights), subset  # one family, never a mix
        seen.add(tuple(subset))
    assert len(seen) > 2  # and not always the same one
    _, built = airline
    keys = {t.name: entity_keys(t) for t in built.tools}
    for seed in range(10):
        subset = coherent_subset(built, 3, random.Random(seed))
        assert all(any(keys[a] & keys[b] for b in subset if b != a) for a in subset), subset
    assert coherent_subset(library, 99, random.Random(0)) == library.tool_names()


def test_tools_build_show_and_check_from_the_command_line(tmp_path, run_cli, bfcl_dir):
    out = tmp_path / "tickets.json"
    built = run_cli("tools", "build", "--backend", "scripted", "--domain", "support tickets",
                    "--tools", str(bfcl_dir / "func_doc" / "ticket_api.jsonl"), "--out", str(out))
    assert built.code == 0, built.err
    assert f"wrote {out}: library support-tickets" in built.out and "9 seed" in built.out
    shown = run_cli("tools", "show", str(out))
    assert shown.code == 0, shown.err
    assert "questions:" in shown.out and "close_ticket(ticket_id*: integer) -> object {status}   [seed]" in shown.out
    assert "gap analysis added:" in shown.out and "entity types: " in shown.out and "(predicted)" in shown.out
    checked = run_cli("tools", "check", str(out))
    assert checked.code == 0 and checked.out.startswith(f"{out}: ok: library support-tickets"), checked.err
    refused = run_cli("tools", "build", "--backend", "scripted", "--domain", "x", "--out", str(tmp_path / "no" / "x.json"))
    assert refused.code == 2 and "does not exist" in refused.err and not (tmp_path / "no").exists()


async def test_a_model_that_repeats_its_questions_is_asked_once_more_and_a_shortfall_is_noted():
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from dialogforge.config import Role
    from dialogforge.models import RoleModel
    from dialogforge.toolprep.stages import ToolStages

    first = {"questions": ["Where is my order?"] * 10 + ["where is   my ORDER?"] * 5 + [f"Cancel order {i}?" for i in range(5)]}
    more = {"questions": ["Where is my order?", "Can I change the address?"]}
    chat = GenericFakeChatModel(messages=iter([AIMessage(json.dumps(first)), AIMessage(json.dumps(more))]))
    stages = ToolStages(RoleModel(role=Role.TOOL_SYNTHESIZER, config=ModelConfig(backend="scripted"), chat=chat), seed=0)
    questions, note = await stages.library_questions({"domain": "online orders"})
    assert questions == ["Where is my order?", *[f"Cancel order {i}?" for i in range(5)], "Can I change the address?"]
    assert note == "questions: the model gave 7 distinct questions of the 20-30 asked for"
    assert stages.usage.calls == 2
