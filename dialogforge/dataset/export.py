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
output appears at ``out`` only when complete (see ``atomic``).
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
from dialogforge.dataset.errors import ExportError, NotValidatedError
from dialogforge.dataset.export_manifest import build_manifest
from dialogforge.dataset.format_openai import openai_record
from dialogforge.dataset.format_sharegpt import sharegpt_record
from dialogforge.dataset.options import FORMATS
from dialogforge.dataset.validations import read_validations, skip_reason

_RECORD_BUILDERS: dict[str, Callable[..., dict[str, Any] | None]] = {"openai": openai_record, "sharegpt": sharegpt_record}


@dataclass
class ExportResult:
    out: Path
    manifest_path: Path
    exported: int
    seconds: float
    skipped: Counter = field(default_factory=Counter)
    cut: int = 0  # exported capped trajectories, cut after their last completed task


def export(
    db_path: str | Path,
    out: str | Path,
    fmt: str,
    *,
    valid_only: bool = False,
    with_reasoning: bool = False,
    keep_duplicates: bool = False,
    include_unjudged: bool = False,
) -> ExportResult:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    started = time.perf_counter()
    check_store(db_path, must_exist=True)
    out = check_dir_target(out) if fmt == "hf" else check_file_target(out)
    all_rows = manifest_rows(db_path, statuses=[s.value for s in Status])
    rows = [row for row in all_rows if row["status"] == Status.DONE.value]
    validations = read_validations(db_path)
    chosen, skipped = select(rows, validations, valid_only=valid_only, keep_duplicates=keep_duplicates,
                             include_unjudged=include_unjudged)
    if len(all_rows) > len(rows):
        skipped["not_finished_or_failed"] = len(all_rows) - len(rows)
    stream = _Stream(db_path, chosen, validations, run_configs(db_path, (row["run_id"] for row in chosen)), valid_only, skipped)
    options = {"valid_only": valid_only, "with_reasoning": with_reasoning, "keep_duplicates": keep_duplicates,
               "include_unjudged": include_unjudged}
    if fmt == "hf":
        from dialogforge.dataset.format_hf import hf_row, write_hf  # datasets/pyarrow load slowly: only when asked

        def build(t: Trajectory) -> dict[str, Any] | None:
            return hf_row(t.row, t.state, validations.get(t.thread_id), stream.source(t), with_reasoning=with_reasoning)

        with atomic_dir(out) as staging:
            write_hf(stream.records(build), staging, temp_sibling(out, "cache"), out)
            _write_json(staging / MARKER, stream.manifest(fmt, options, len(all_rows), started))
        manifest_path = out / MARKER
    else:
        formatter = _RECORD_BUILDERS[fmt]
        manifest_path = out.with_name(out.name + ".manifest.json")
        with atomic_file(out) as temp:
            with open(temp, "w", encoding="utf-8") as handle:
                for record in stream.records(lambda t: formatter(t.state, with_reasoning=with_reasoning)):
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        with atomic_file(manifest_path) as temp:
            _write_json(temp, stream.manifest(fmt, options, len(all_rows), started))
    return ExportResult(out, manifest_path, stream.exported, time.perf_counter() - started, skipped, stream.cut)


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

    def records(self, build: Callable[[Trajectory], dict[str, Any] | None]) -> Iterator[dict[str, Any]]:
        for trajectory in self:
            record = build(trajectory)
            if record is None:
                self.skipped["no_assistant_reply"] += 1
                continue
            self.exported += 1
            self.messages += len(record.get("messages") or record.get("conversations") or [])
            self.by_mode[trajectory.state.mode.value] += 1
            self.by_source[self.source(trajectory)] += 1
            self.exported_rows.append({"thread_id": trajectory.thread_id, "run_id": trajectory.row["run_id"], "seed": trajectory.row.get("seed"),
                                       **({"cut": trajectory.cut.as_dict()} if trajectory.cut else {})})
            self.cut += trajectory.cut is not None
            yield record

    def manifest(self, fmt: str, options: dict[str, Any], total: int, started: float) -> dict[str, Any]:
        counts = {
            "trajectories_in_db": total, "exported": self.exported, "messages": self.messages,
            "by_mode": dict(sorted(self.by_mode.items())), "by_source": dict(sorted(self.by_source.items())),
            "cut_after_last_completed_task": self.cut,
        }
        return build_manifest(fmt=fmt, options=options, exported_rows=self.exported_rows, configs=self.configs,
                              counts=counts, skipped=self.skipped, seconds=time.perf_counter() - started)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
