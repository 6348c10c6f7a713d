"""A Hugging Face dataset on disk that both ``load_dataset`` and ``load_from_disk`` read.

Layout of the output directory::

    README.md                 dataset card; its YAML `configs` points load_dataset at data/
    data/train-00000-of-00001.parquet
    dataset_dict.json, train/ what save_to_disk writes, for load_from_disk
    dialogforge_manifest.json the run manifest

``load_dataset`` refuses a directory whose top level holds save_to_disk's
``state.json``, which is why the Arrow copy is a DatasetDict (its state lives
under ``train/``). Rows are written to Parquet in batches as they stream in;
the Arrow copy is then made from the Parquet file by ``datasets`` itself.

Columns: the conversation (``messages``) and its ``tools``, plus metadata for
filtering: mode, domain, source, tasks, counters, validity, judge verdict,
duplicate mark and lineage. A dialogue whose agent window slid is several rows
(``samples``), one per window: ``thread_id`` is shared, ``segment`` numbers
them from 0 of ``segments``, ``first_message`` is where in the dialogue the
row's messages start, and ``context_turns`` how many of its first assistant
turns are there as context only (``train`` false: trained in an earlier row). ``messages`` and ``tools`` are lists of
``datasets.Json()`` values, so every message keeps exactly its own keys: an
Arrow struct would give every message every key (``tool_calls: None`` on a
user turn), which chat templates that test ``'tool_calls' in message`` or
concatenate ``content`` fail on, and TRL passes ``example["messages"]`` to the
template as stored. What the messages look like is the chat family's choice
(``chat_families``): the Hugging Face convention by default, or what one
family's template reads with ``--chat-template``.

Each value is written as the JSON text Python's ``json`` makes, so numbers
keep every digit (``datasets`` encodes a dict through pandas' ujson, which
keeps ten significant digits). A value ``datasets`` could not read back (an
integer beyond 64 bits) leaves its sample out, counted.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import datasets
from datasets import Features, Json, List, Value
from datasets.arrow_writer import ParquetWriter
from datasets.utils.json import ujson_loads  # what datasets decodes a Json() value with

from dialogforge.dataset.chat_families import Family, context_turns, family_messages
from dialogforge.dataset.errors import ExportError
from dialogforge.dataset.samples import Sample, SampleSkipped
from dialogforge.dataset.validations import decoded
from dialogforge.graphs.state import DialogueState

BATCH_ROWS = 256
PARQUET_NAME = "data/train-00000-of-00001.parquet"

_STR, _INT, _BOOL, _FLOAT = Value("string"), Value("int64"), Value("bool"), Value("float64")
FEATURES = Features({
    "thread_id": _STR, "segment": _INT, "segments": _INT, "first_message": _INT, "context_turns": _INT,
    "run_id": _STR, "mode": _STR, "domain": _STR, "source": _STR, "seed": _INT,
    "difficulty": _STR, "stop_reason": _STR,
    "messages": List(Json()),
    "tools": List(Json()),
    "closing_user_message": _STR,
    "tasks": [{
        "goal": _STR, "subtasks": [_STR], "difficulty": _STR, "status": _STR,
        "expected_tools": [_STR], "rubric": [{"criterion": _STR, "category": _STR}],
    }],
    "counters": {
        "user_turns": _INT, "assistant_turns": _INT, "tool_calls": _INT, "tool_errors": _INT,
        "requests": _INT, "tasks_completed": _INT, "step_counts": [_INT], "total_tokens": _INT,
    },
    "num_turns": _INT, "num_tasks": _INT,
    "validated": _BOOL, "valid": _BOOL, "rules_ok": _BOOL, "failure_rules": [_STR],
    "judge_verdict": _STR, "judge_reasoning": _STR,
    "duplicate_of": _STR, "duplicate_kind": _STR, "duplicate_similarity": _FLOAT,
    "parent_thread_id": _STR, "fork_checkpoint_id": _STR,
})


def json_cell(value: Any) -> str:
    """``value`` as the JSON text a Json() cell stores, if ``datasets`` can read it back."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        ujson_loads(text)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        raise SampleSkipped("value_datasets_json_cannot_read") from None
    return text


def hf_row(row: dict[str, Any], state: DialogueState, sample: Sample, validation: dict[str, Any] | None, source: str,
           *, family: Family, with_reasoning: bool, tally: Counter) -> dict[str, Any]:
    messages = family_messages(sample, family, with_reasoning=with_reasoning, tally=tally)
    c = state.counters
    v = validation or {}
    return {
        "thread_id": row["thread_id"], "segment": sample.segment, "segments": sample.segments,
        "first_message": sample.first_message, "context_turns": context_turns(sample, family),
        "run_id": row.get("run_id"), "mode": state.mode.value,
        "domain": state.scenario.domain, "source": source, "seed": state.seed,
        "difficulty": state.scenario.difficulty.value,
        "stop_reason": state.stop_reason.value if state.stop_reason else None,
        "messages": [json_cell(m) for m in messages],
        "tools": [json_cell(t) for t in sample.tools],
        "closing_user_message": sample.closing,
        "tasks": [
            {"goal": t.goal, "subtasks": t.subtasks, "difficulty": t.difficulty.value, "status": t.status.value,
             "expected_tools": t.expected_tools, "rubric": [{"criterion": r.criterion, "category": r.category.value} for r in t.rubric]}
            for t in state.tasks
        ],
        "counters": {
            "user_turns": c.user_turns, "assistant_turns": c.assistant_turns, "tool_calls": c.tool_calls,
            "tool_errors": c.tool_errors, "requests": c.requests, "tasks_completed": c.tasks_completed,
            "step_counts": c.step_counts, "total_tokens": c.total_tokens,
        },
        "num_turns": sum(1 for m in state.messages if m.role in ("user", "assistant", "tool")),
        "num_tasks": len(state.tasks),
        "validated": validation is not None,
        "valid": None if validation is None else bool(v.get("valid")),
        "rules_ok": None if validation is None else bool(v.get("rules_ok")),
        "failure_rules": decoded(validation, "failure_rules") or [],
        "judge_verdict": v.get("judge_verdict"), "judge_reasoning": v.get("judge_reasoning"),
        "duplicate_of": v.get("duplicate_of"), "duplicate_kind": v.get("duplicate_kind"),
        "duplicate_similarity": v.get("duplicate_similarity"),
        "parent_thread_id": row.get("parent_thread_id"), "fork_checkpoint_id": row.get("fork_checkpoint_id"),
    }


def write_hf(rows: Iterable[dict[str, Any]], out_dir: Path, work_dir: Path, target: Path, family: Family) -> int:
    """Stream rows into Parquet in ``out_dir`` (staging for ``target``), then add the Arrow copy
    and the card; returns the row count."""
    parquet_path = out_dir / PARQUET_NAME
    parquet_path.parent.mkdir(parents=True)
    writer = ParquetWriter(features=FEATURES, path=str(parquet_path), writer_batch_size=BATCH_ROWS)
    try:
        for row in rows:
            writer.write(FEATURES.encode_example(row))
        count, _ = writer.finalize()
    finally:
        writer.close()
    if count == 0:  # datasets can neither build nor load back an empty saved dataset
        raise ExportError(f"{target}: nothing to export: no trajectory matched, and a Hugging Face dataset cannot be empty")
    quiet = not datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dataset = datasets.Dataset.from_parquet(str(parquet_path), features=FEATURES, cache_dir=str(work_dir))
        datasets.DatasetDict({"train": dataset}).save_to_disk(str(out_dir))
        del dataset
    finally:
        if not quiet:
            datasets.enable_progress_bars()
        shutil.rmtree(work_dir, ignore_errors=True)
    (out_dir / "README.md").write_text(_card(count, family), encoding="utf-8")
    return count


def _card(count: int, family: Family) -> str:
    return (
        "---\n"
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n"
        "---\n"
        "# dialogforge export\n\n"
        f"{count} multi-turn tool-use trajectories. `messages` and `tools` are lists of JSON values (each message keeps\n"
        f"only its own keys), written for {family.summary}.\n"
        "Assistant messages carry `train`: false on a turn whose tool call was invalid (answered with an error),\n"
        "and on a turn shown only as context (a long dialogue is several rows, one per context window, sharing\n"
        "`thread_id`; each turn is trained in one row, on exactly what the agent saw);\n"
        "axolotl reads it (`type: chat_template`, `field_messages: messages`, `field_tools: tools`,\n"
        "`message_field_training: train`); TRL's `assistant_only_loss` trains every assistant turn.\n"
        "Read with `datasets.load_dataset(PATH)` (Parquet) or `datasets.load_from_disk(PATH)` (Arrow).\n"
        "How it was made: `dialogforge_manifest.json`.\n"
    )
