"""``export``: stream a database's trajectories into a training file or dataset, atomically.

Which trajectories: every finished one (status ``done``); failed ones never
(they end mid-dialogue). Each is read as its view (``corpus``): a capped one
that completed a task is cut after it. With ``valid_only``, only those whose
stored validation says valid (``validations.skip_reason``) and that do not
duplicate an earlier one (unless ``keep_duplicates``); unjudged ones (a
judge was asked for and failed) only with ``include_unjudged``. The
validation must be present and current, or the export stops before writing
anything and says to run ``validate``.

States stream one at a time from the database to the writer, and the
output appears at ``out`` only when complete (see ``atomic``). Each state
becomes format-neutral ``Sample`` records (``samples``: one per context window
the agent's turns were generated from, so one while the dialogue fitted the
agent's budget; a trajectory's records are consecutive, and ``exported``
counts trajectories), which the format's module renders: ``format_openai``, ``format_sharegpt`` (with a ``dataset_info.json``
entry beside it), or ``format_hf`` in the shape of a chat family
(``chat_families``). Whatever a format changed or left out on the way is
counted in the manifest under ``conversion``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from dialogforge.checkpoints.manifest import Status
from dialogforge.checkpoints.store_kinds import check_store
from dialogforge.dataset.atomic import MARKER, atomic_dir, atomic_file, check_dir_target, check_file_target, temp_sibling
from dialogforge.dataset.corpus import Trajectory, iter_trajectories, manifest_rows, run_configs, source_of
from dialogforge.dataset.errors import NotValidatedError
from dialogforge.dataset.export_manifest import build_manifest
from dialogforge.dataset.format_openai import ToolNames, openai_record
from dialogforge.dataset.format_sharegpt import INFO_FILE, merged_dataset_info, sharegpt_record
from dialogforge.dataset.samples import Sample, SampleSkipped, build_samples
from dialogforge.dataset.targets import Target, resolve_target
from dialogforge.dataset.validations import read_validations, skip_reason

Build = Callable[[Trajectory, Sample], dict[str, Any]]


@dataclass
class ExportResult:
    out: Path
    manifest_path: Path
    exported: int
    seconds: float
    skipped: Counter = field(default_factory=Counter)
    cut: int = 0  # exported capped trajectories, cut after their last completed task
    samples: int = 0  # records written: one per context window of each exported trajectory


def export(
    db_path: str | Path,
    out: str | Path,
    fmt: str,
    *,
    valid_only: bool = False,
    with_reasoning: bool | None = None,
    keep_duplicates: bool = False,
    chat_template: str | None = None,
    include_unjudged: bool = False,
) -> ExportResult:
    """Write the database's finished trajectories to ``out`` in ``fmt``; ``with_reasoning`` None
    means ``options.WITH_REASONING_DEFAULT``; ``chat_template`` (hf only) names a chat family."""
    target = resolve_target(fmt, chat_template, with_reasoning)
    started = time.perf_counter()
    check_store(db_path, must_exist=True)
    out = check_dir_target(out) if fmt == "hf" else check_file_target(out)
    dataset_info = merged_dataset_info(out) if fmt == "sharegpt" else None  # a bad one stops us before any work
    all_rows = manifest_rows(db_path, statuses=[s.value for s in Status])
    rows = [row for row in all_rows if row["status"] == Status.DONE.value]
    validations = read_validations(db_path)
    chosen, skipped = select(rows, validations, valid_only=valid_only, keep_duplicates=keep_duplicates,
                             include_unjudged=include_unjudged)
    if len(all_rows) > len(rows):
        skipped["not_finished_or_failed"] = len(all_rows) - len(rows)
    stream = _Stream(db_path, chosen, validations, run_configs(db_path, (row["run_id"] for row in chosen)), valid_only, skipped)
    options = {"valid_only": valid_only, "with_reasoning": target.with_reasoning, "keep_duplicates": keep_duplicates,
               "chat_template": chat_template, "include_unjudged": include_unjudged}
    conversion: Counter = Counter()
    names = ToolNames()

    def manifest() -> dict[str, Any]:
        return stream.manifest(fmt, options, len(all_rows), started, _target_entry(target, conversion, names))

    if fmt == "hf":
        from dialogforge.dataset.format_hf import hf_row, write_hf  # datasets/pyarrow load slowly: only when asked

        def build(t: Trajectory, sample: Sample) -> dict[str, Any]:
            return hf_row(t.row, t.state, sample, validations.get(t.thread_id), stream.source(t), family=target.family,
                          with_reasoning=target.with_reasoning, tally=conversion)

        with atomic_dir(out) as staging:
            write_hf(stream.records(build), staging, temp_sibling(out, "cache"), out, target.family)
            _write_json(staging / MARKER, manifest())
        return ExportResult(out, out / MARKER, stream.exported, time.perf_counter() - started, skipped, stream.cut, stream.samples)
    build = _jsonl_builder(target, names, conversion)
    manifest_path = out.with_name(out.name + ".manifest.json")
    with atomic_file(out) as temp:
        with open(temp, "w", encoding="utf-8") as handle:
            for record in stream.records(build):
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with atomic_file(manifest_path) as temp:
        _write_json(temp, manifest())
    if dataset_info is not None:
        with atomic_file(out.with_name(INFO_FILE)) as temp:
            _write_json(temp, dataset_info)
    return ExportResult(out, manifest_path, stream.exported, time.perf_counter() - started, skipped, stream.cut, stream.samples)


def _jsonl_builder(target: Target, names: ToolNames, conversion: Counter) -> Build:
    if target.fmt == "openai":
        def build(t: Trajectory, sample: Sample) -> dict[str, Any]:
            record = openai_record(sample, names)
            conversion["masked_messages"] += sum(m.get("weight") == 0 for m in record["messages"])
            return record
        return build
    return lambda t, sample: sharegpt_record(sample, with_reasoning=target.with_reasoning, tally=conversion)


def _target_entry(target: Target, conversion: Counter, names: ToolNames) -> dict[str, Any]:
    """What the manifest says about the shape of the data: conventions, reasoning, masking, changes."""
    masking = {
        "openai": "weight 0 on assistant turns with an invalid call or shown as context only (masked_messages)",
        "hf": "train: false on assistant messages with an invalid call or shown as context only (masked_messages); "
              "axolotl: message_field_training: train",
        "sharegpt": "no per-turn flag: invalid calls left out with their error results (invalid_calls_left_out); "
                    "samples holding context turns left out (counts.samples_skipped)",
    }[target.fmt]
    entry = {"conventions": target.conventions, "chat_template": target.family.name if target.family else None,
             "reasoning": target.reasoning, "masking": masking, "conversion": dict(sorted(conversion.items()))}
    if target.fmt == "openai":
        entry["tool_names_renamed"] = dict(sorted(names.renamed.items()))
    return entry


def select(
    rows: list[dict[str, Any]], validations: dict[str, dict[str, Any]], *, valid_only: bool, keep_duplicates: bool,
    include_unjudged: bool = False,
) -> tuple[list[dict[str, Any]], Counter]:
    """The rows to export, and why the others are left out; needs validation when filtering."""
    if not valid_only:
        return rows, Counter()
    missing = [row["thread_id"] for row in rows if row["thread_id"] not in validations]
    if missing:
        raise NotValidatedError(
            f"{len(missing)} of {len(rows)} trajectories have no validation results (e.g. {missing[0]}); "
            "run `dialogforge validate --db PATH` first"
        )
    chosen, skipped = [], Counter()
    for row in rows:
        reason = skip_reason(validations[row["thread_id"]], include_unjudged=include_unjudged, keep_duplicates=keep_duplicates)
        if reason:
            skipped[reason] += 1
        else:
            chosen.append(row)
    return chosen, skipped


class _Stream:
    """The chosen trajectories, one state at a time, counting what goes out."""

    def __init__(self, db_path, rows, validations, configs, valid_only: bool, skipped: Counter):
        self.db_path, self.rows, self.validations, self.configs = db_path, rows, validations, configs
        self.valid_only, self.skipped = valid_only, skipped
        self.exported = 0
        self.messages = 0
        self.by_mode: Counter = Counter()
        self.by_source: Counter = Counter()
        self.cut = 0
        self.samples = 0
        self.samples_skipped: Counter = Counter()
        self.context_turns = 0  # assistant turns written as context only (trained in an earlier sample)
        self.exported_rows: list[dict[str, Any]] = []

    def __iter__(self) -> Iterator[Trajectory]:
        for trajectory in iter_trajectories(self.db_path, self.rows):
            if self.valid_only:
                stored = self.validations[trajectory.thread_id].get("fingerprint")
                if stored != trajectory.fingerprint:
                    raise NotValidatedError(
                        f"trajectory {trajectory.thread_id} changed since it was validated; "
                        "run `dialogforge validate --db PATH` again"
                    )
            yield trajectory

    def source(self, trajectory: Trajectory) -> str:
        return source_of(trajectory.state, self.configs.get(trajectory.row["run_id"], {}))

    def records(self, build: Build) -> Iterator[dict[str, Any]]:
        """Every sample's record, a trajectory's in order. A trajectory none of whose samples a
        format can write is skipped (counted by its first sample's reason); one that loses only
        some samples counts them under ``samples_skipped``."""
        for trajectory in self:
            samples = build_samples(trajectory.state)
            if not samples:
                self.skipped["no_assistant_reply"] += 1
                continue
            written, reasons = 0, []
            for sample in samples:
                try:
                    record = build(trajectory, sample)
                except SampleSkipped as skip:
                    reasons.append(skip.reason)
                    continue
                written += 1
                self.messages += len(record.get("messages") or record.get("conversations") or [])
                self.context_turns += sum(1 for m in sample.messages if m["role"] == "assistant" and m["context"])
                yield record
            if not written:
                self.skipped[reasons[0]] += 1
                continue
            self.samples_skipped.update(reasons)
            self.exported += 1
            self.samples += written
            self.by_mode[trajectory.state.mode.value] += 1
            self.by_source[self.source(trajectory)] += 1
            self.exported_rows.append({"thread_id": trajectory.thread_id, "run_id": trajectory.row["run_id"], "seed": trajectory.row.get("seed"),
                                       "samples": written, **({"cut": trajectory.cut.as_dict()} if trajectory.cut else {})})
            self.cut += trajectory.cut is not None

    def manifest(self, fmt: str, options: dict[str, Any], total: int, started: float, target: dict[str, Any]) -> dict[str, Any]:
        counts = {
            "trajectories_in_db": total, "exported": self.exported, "samples": self.samples,
            "samples_skipped": dict(sorted(self.samples_skipped.items())), "context_turns": self.context_turns,
            "messages": self.messages,
            "by_mode": dict(sorted(self.by_mode.items())), "by_source": dict(sorted(self.by_source.items())),
            "cut_after_last_completed_task": self.cut,
        }
        return build_manifest(fmt=fmt, options=options, exported_rows=self.exported_rows, configs=self.configs,
                              counts=counts, skipped=self.skipped, seconds=time.perf_counter() - started, target=target)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
