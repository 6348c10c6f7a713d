"""Exports that render exactly in the trainers people use.

One corpus: a scripted user-mode run (tool calls, parallel calls, invalid calls
answered with errors, reasoning, several tasks), a scripted run on seed tools
whose names OpenAI refuses (``orders.get`` beside ``orders_get``), and one
hand-made trajectory with what the scripted model never says (words beside a
call, arguments that are not JSON, a call to an unknown tool in a parallel
turn, a plain-text result, non-ASCII text).

- Hugging Face exports, read back with ``datasets.load_dataset`` as TRL reads
  them, render through the chat templates of TRL's wheel in transformers'
  Jinja environment: no render error, arguments encoded once, every result
  present, reasoning where the template reads it. Every export variant meets
  every template of its family; the whole matrix is printed (``-s``).
- The ShareGPT export goes through LLaMA-Factory's reading of it
  (``tests.support.llama_factory``) and comes out as the trajectory was.
- The OpenAI export passes a checker written from the fine-tuning schema.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
from dialogforge.dataset.chat_families import FAMILIES, HF_CONVENTION
from dialogforge.dataset.errors import ExportError
from dialogforge.dataset.export import export
from dialogforge.dataset.options import CHAT_TEMPLATES
from dialogforge.dataset.rules import call_violation
from dialogforge.records import FunctionSpec, ToolSource, ToolSpec
from dialogforge.runs.generate import generate
from dialogforge.runs.reading import load_state
from tests.support.chat_templates import RULES, rendering_problems, trained_span, trl_templates
from tests.support.dataset import edge_state, store_states
from tests.support.finetune_schema import check_finetune_line
from tests.support.llama_factory import BrokenSample, convert, load_entry

datasets = pytest.importorskip("datasets")

VARIANTS = ("hf", *CHAT_TEMPLATES)  # "hf": no --chat-template
DOTTED = [
    ToolSpec(source="seed", function=FunctionSpec(name=name, description=f"{name} in the order system.", parameters={
        "type": "object", "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}}, "required": ["order_id"]}))
    for name in ("orders.get", "orders_get", "orders.search")
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("corpus") / "run.db"
    models = ModelsConfig(default=ModelConfig(backend="scripted"))
    generate(db, GenerationSettings(n=12, seed=5), models)
    generate(db, GenerationSettings(n=4, seed=9, tool_source=ToolSource.SEED), models, seed_tools=DOTTED)
    store_states(db, {"edge": edge_state()}, run_id="handmade")
    return db


@pytest.fixture(scope="module")
def hf_exports(corpus, tmp_path_factory) -> dict[str, tuple[list[dict], dict]]:
    """Each variant's rows as ``load_dataset`` returns them, and its manifest."""
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for variant in VARIANTS:
        family = HF_CONVENTION if variant == "hf" else FAMILIES[variant]
        result = export(corpus, root / variant, "hf", chat_template=None if variant == "hf" else variant,
                        with_reasoning=family.reasoning_field is not None)
        rows = list(datasets.load_dataset(str(root / variant), cache_dir=str(root / "cache"))["train"])
        out[variant] = rows, json.loads(result.manifest_path.read_text())
    return out


def states(corpus: Path, rows: list[dict]) -> list:
    return [load_state(corpus, row["thread_id"]) for row in rows]


def test_the_corpus_has_everything_a_renderer_must_get_right(corpus, hf_exports):
    rows, _ = hf_exports["hf"]
    spans = [trained_span(s) for s in states(corpus, rows)]
    count = Counter()
    for span in spans:
        count["parallel"] += any(len(m.tool_calls) > 1 for m in span)
        count["tool_error"] += any(m.is_error for m in span)
        count["reasoning"] += any(m.reasoning for m in span)
        count["several_tasks"] += len({m.task_index for m in span}) > 1
        count["words_beside_a_call"] += any(m.tool_calls and m.content for m in span)
        count["not_json_arguments"] += any(c.raw_arguments for m in span for c in m.tool_calls)
    assert len(rows) == 17
    assert count["parallel"] >= 5 and count["tool_error"] >= 5 and count["reasoning"] == 17 and count["several_tasks"] >= 3, count
    assert count["words_beside_a_call"] >= 1 and count["not_json_arguments"] >= 1, count


def _left_out(state, variant: str) -> set[str]:
    """Calls an export with object arguments cannot hold: arguments that were not a JSON object."""
    family = HF_CONVENTION if variant == "hf" else FAMILIES[variant]
    if family.arguments == "string":
        return set()
    return {c.id for m in trained_span(state) for c in m.tool_calls if c.raw_arguments is not None}


def test_every_sample_renders_through_the_templates_of_its_family(corpus, hf_exports, capsys):
    folder = trl_templates()
    targets = {v: (FAMILIES["qwen3"].templates + FAMILIES["glm4-moe"].templates) if v == "hf" else FAMILIES[v].templates
               for v in VARIANTS}
    matrix: dict[tuple[str, str], int] = {}
    failures = []
    by_thread = {s_row["thread_id"]: state for s_row, state in zip(hf_exports["hf"][0], states(corpus, hf_exports["hf"][0]))}
    for variant in VARIANTS:
        rows, _ = hf_exports[variant]
        family = HF_CONVENTION if variant == "hf" else FAMILIES[variant]
        for template, rules in RULES.items():
            ok = 0
            for row in rows:
                state = by_thread[row["thread_id"]]
                problems = rendering_problems(folder / template, rules, row["messages"], row["tools"], state,
                                              expect_reasoning=family.reasoning_field is not None,
                                              left_out=_left_out(state, variant))
                ok += not problems
                if problems and template in targets[variant]:
                    failures.append((variant, template, row["thread_id"], problems[:3]))
            matrix[variant, template] = ok
    with capsys.disabled():
        total = len(hf_exports["hf"][0])
        print(f"\nsamples rendered correctly out of {total} (* = a template of the export's family)")
        print(f"{'template':32}" + "".join(f"{v:>22}" for v in VARIANTS))
        for template in RULES:
            cells = "".join(f"{(str(matrix[v, template]) + '/' + str(total) + ('*' if template in targets[v] else ' ')):>22}"
                            for v in VARIANTS)
            print(f"{template:32}{cells}")
    assert not failures, failures[:5]
    assert all(t in RULES for v in VARIANTS for t in targets[v])


def test_messages_keep_only_their_own_keys_and_the_card_says_the_convention(hf_exports):
    rows, manifest = hf_exports["hf"]
    for row in rows:
        for m in row["messages"]:
            assert None not in m.values(), m
            assert isinstance(m["content"], str)
            assert ("tool_calls" in m) == bool(m.get("tool_calls")) and ("train" in m) == (m["role"] == "assistant")
            for call in m.get("tool_calls", []):
                assert isinstance(call["function"]["arguments"], dict)
        assert all(t["type"] == "function" for t in row["tools"])
    assert any("reasoning_content" in m for row in rows for m in row["messages"])
    assert "Hugging Face message convention" in manifest["target"]["conventions"]
    assert manifest["target"]["reasoning"].startswith("kept")


def test_each_family_puts_reasoning_and_words_beside_a_call_where_its_template_reads_them(hf_exports):
    def edge(variant):
        rows, manifest = hf_exports[variant]
        return next(r for r in rows if r["thread_id"] == "edge")["messages"], manifest["target"]["conversion"]

    gpt_oss, _ = edge("gpt-oss")
    first_call = next(m for m in gpt_oss if m.get("tool_calls"))
    assert first_call["content"] == "" and first_call["thinking"] == "Look the order up first.\n\nLet me look that up."
    assert not any("reasoning_content" in m for m in gpt_oss)
    assert all(len(m.get("tool_calls", [])) <= 1 for m in gpt_oss)
    llama, conversion = edge("llama3")
    assert conversion["text_beside_calls_left_out"] == 1 and conversion["parallel_turns_made_sequential"] >= 1
    assert not any("reasoning_content" in m or "thinking" in m for m in llama)
    assert next(m for m in llama if m["role"] == "tool")["content"] == {"order_id": "Ä1", "status": "shipped", "eta": "2026-03-02"}
    qwen, conversion = edge("qwen3")
    assert next(m for m in qwen if m.get("tool_calls"))["content"] == "Let me look that up."
    assert conversion["calls_with_unparseable_arguments_left_out"] == 1
    deepseek, conversion = edge("deepseek-v3")
    assert "calls_with_unparseable_arguments_left_out" not in conversion
    assert any(c["function"]["arguments"] == '{"order_id": "Ä1",' for m in deepseek for c in m.get("tool_calls", []))


def test_masking_is_axolotls_training_flag(hf_exports):
    rows, manifest = hf_exports["gpt-oss"]
    edge = next(r for r in rows if r["thread_id"] == "edge")["messages"]
    flags = {c["function"]["name"]: m["train"] for m in edge for c in m.get("tool_calls", [])}
    assert flags["orders.search"] is True and flags["get_weather"] is False  # the parallel turn, split, masks only the mistake
    masked = sum(m.get("train") is False for r in rows for m in r["messages"])
    assert masked == manifest["target"]["conversion"]["masked_messages"] > 0
    assert "message_field_training: train" in manifest["target"]["masking"]


def test_sharegpt_reads_back_through_llama_factorys_converter(corpus, hf_exports, tmp_path):
    out = tmp_path / "lf" / "train.jsonl"
    out.parent.mkdir()
    (out.parent / "dataset_info.json").write_text(json.dumps({"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}))
    result = export(corpus, out, "sharegpt", with_reasoning=True)
    entry = load_entry(out)
    assert "alpaca_en_demo" in json.loads((out.parent / "dataset_info.json").read_text())  # other datasets kept
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rows, _ = hf_exports["hf"]  # every format streams the same rows in the same order
    assert len(lines) == len(rows) == result.exported
    dropped = 0
    for line, state in zip(lines, states(corpus, rows)):
        try:
            system, tools, turns = convert(line, entry)
        except BrokenSample as exc:
            pytest.fail(f"LLaMA-Factory would skip a sample: {exc}")
        expected, left_out = _expected_turns(state)
        dropped += left_out
        assert [_comparable(t) for t in turns] == expected
        assert system and {t["name"] for t in tools} == {t.name for t in state.tools}
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["target"]["conversion"]["invalid_calls_left_out"] == dropped > 0


def _comparable(turn) -> tuple:
    return (turn.role, turn.text, turn.thought, [(c["name"], c["arguments"]) for c in turn.calls], turn.results)


def _expected_turns(state) -> tuple[list[tuple], int]:
    """The trajectory as the ShareGPT sample should tell it: invalid calls and their errors left out."""
    specs = {t.name: t for t in state.tools}
    turns, gone, left_out = [], set(), 0
    for m in trained_span(state):
        if m.role == "user":
            turns.append(("user", m.content, None, [], []))
        elif m.role == "tool":
            if m.tool_call_id not in gone:
                if turns[-1][0] != "observation":
                    turns.append(("observation", "", None, [], []))
                turns[-1][4].append(m.content)
        else:
            kept = [c for c in m.tool_calls if call_violation(specs, c) is None]
            gone |= {c.id for c in m.tool_calls} - {c.id for c in kept}
            left_out += len(m.tool_calls) - len(kept)
            if m.tool_calls and not kept:
                continue
            turns.append(("assistant", m.content, m.reasoning or None, [(c.name, c.arguments) for c in kept], []))
    return turns, left_out


def test_openai_export_passes_the_finetuning_schema(corpus, hf_exports, tmp_path):
    out = tmp_path / "train.jsonl"
    result = export(corpus, out, "openai")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rows, _ = hf_exports["hf"]
    assert len(lines) == len(rows) == result.exported
    for line, state in zip(lines, states(corpus, rows)):
        assert check_finetune_line(line) == [], (state.seed, check_finetune_line(line)[:3])
        span = trained_span(state)
        calls = [c for m in line["messages"] for c in m.get("tool_calls", [])]
        assert [c["id"] for c in calls] == [c.id for m in span for c in m.tool_calls]
        assert [m["content"] for m in line["messages"] if m["role"] == "tool"] == [m.content for m in span if m.role == "tool"]
        assert ("parallel_tool_calls" in line) == any(len(m.tool_calls) > 1 for m in span)
    renamed = json.loads(result.manifest_path.read_text())["target"]["tool_names_renamed"]
    assert renamed == {"orders.get": "orders_get_2", "orders.search": "orders_search"}  # orders_get was taken
    edge = lines[[r["thread_id"] for r in rows].index("edge")]
    assert edge["messages"][0]["content"] == "You are the store's assistant. Find orders with orders_search."
    assert {t["function"]["name"] for t in edge["tools"]} == {"get_order", "cancel_order", "orders_search"}
    assert "orders_search" in [c["function"]["name"] for m in edge["messages"] for c in m.get("tool_calls", [])]
    assert [m.get("weight") for m in edge["messages"] if m["role"] == "assistant"] == [None, 0, None, 0, None, None, None, None]


def test_reasoning_is_refused_where_a_format_has_no_place_for_it(corpus, tmp_path):
    for fmt, template in (("openai", None), ("hf", "llama3"), ("hf", "deepseek-v3")):
        with pytest.raises(ExportError, match="no reasoning"):
            export(corpus, tmp_path / "x", fmt, chat_template=template, with_reasoning=True)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ExportError, match="--format hf only"):
        export(corpus, tmp_path / "x.jsonl", "sharegpt", chat_template="qwen3")
    # By default it is kept where it has a place, and left out, said so, elsewhere.
    result = export(corpus, tmp_path / "d.jsonl", "openai")
    assert json.loads(result.manifest_path.read_text())["target"]["reasoning"].startswith("not written: the OpenAI")
    shared = export(corpus, tmp_path / "s.jsonl", "sharegpt")
    assert "<think>" in (tmp_path / "s.jsonl").read_text() and shared.exported
    assert json.loads(shared.manifest_path.read_text())["target"]["reasoning"].startswith("kept")
    for template in ("llama3", "deepseek-v3"):
        family = export(corpus, tmp_path / template, "hf", chat_template=template)
        assert json.loads(family.manifest_path.read_text())["target"]["reasoning"].startswith("not written: the")
    off = export(corpus, tmp_path / "n.jsonl", "sharegpt", with_reasoning=False)
    assert "<think>" not in (tmp_path / "n.jsonl").read_text()
    assert json.loads(off.manifest_path.read_text())["target"]["reasoning"] == "left out (--no-reasoning)"


def test_the_family_names_on_the_command_line_are_the_families(run_cli, corpus, tmp_path):
    assert set(CHAT_TEMPLATES) == set(FAMILIES)
    bad = run_cli("export", "--db", str(corpus), "--format", "hf", "--chat-template", "mistral", "--out", str(tmp_path / "m"))
    assert bad.code == 2 and "invalid choice: 'mistral'" in bad.err
    both = run_cli("export", "--db", str(corpus), "--format", "hf", "--with-reasoning", "--no-reasoning", "--out", str(tmp_path / "m"))
    assert both.code == 2 and "not allowed with argument" in both.err
    refused = run_cli("export", "--db", str(corpus), "--format", "openai", "--with-reasoning", "--out", str(tmp_path / "o.jsonl"))
    assert refused.code == 2 and refused.err.count("\n") == 1 and "no reasoning field" in refused.err
    assert not list(tmp_path.iterdir())
