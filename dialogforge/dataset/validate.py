"""``validate``: rule checks, the optional rubric judge, then dedup, stored per trajectory.

Order matters. Rules first (cheap, no model). The judge reads only
trajectories that pass the rules: the others are out anyway and a model call
costs money. Dedup last, among the trajectories still valid, so that an
invalid trajectory never claims to be the original that a valid one repeats.

Re-running is idempotent: rule and dedup findings are recomputed and
written only when they change; a judge verdict is kept while the trajectory
is unchanged (same fingerprint) and redone only with ``rejudge``, after a
judge error, or when the trajectory changed (a resume continued it).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from dialogforge.checkpoints.manifest import now
from dialogforge.config import ModelsConfig
from dialogforge.dataset.corpus import fingerprint, load_or_none, manifest_rows, run_configs
from dialogforge.dataset.dedup import Features, features, find_duplicates
from dialogforge.dataset.options import DEFAULT_THRESHOLD
from dialogforge.dataset.judge import TrajectoryVerdict, judge_trajectory
from dialogforge.dataset.rules import Rule, check_rules
from dialogforge.dataset.validations import JUDGE_FIELDS, ValidationStore
from dialogforge.errors import ConfigError, ModelCallError
from dialogforge.models import RoleModel
from dialogforge.graphs.state import DialogueState

# run_id -> the judge model for that run's trajectories
JudgeModelFor = Callable[[str], RoleModel]


@dataclass
class ValidationSummary:
    checked: int = 0
    passed_rules: int = 0
    judged_now: int = 0
    judged_invalid: int = 0
    judge_errors: int = 0
    duplicates: int = 0
    valid: int = 0  # valid and not a duplicate: what --valid-only exports
    failure_reasons: Counter = field(default_factory=Counter)  # rule -> trajectories failing it
    judge_error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failure_reasons"] = dict(sorted(self.failure_reasons.items()))
        return data


def validate(
    db_path: str | Path,
    *,
    judge_model_for: JudgeModelFor | None = None,
    concurrency: int = 8,
    rejudge: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
) -> ValidationSummary:
    rows = manifest_rows(db_path)
    summary = ValidationSummary()
    with ValidationStore(db_path) as store:
        current = store.all()
        found, to_judge = _check_rules(db_path, rows, store, current, summary, rejudge)
        if judge_model_for is not None and to_judge:
            asyncio.run(_judge_all(db_path, to_judge, judge_model_for, concurrency, store, current, summary))
        _mark_duplicates(rows, found, store, current, summary, threshold)
    return summary


def recorded_models(db_path: str | Path) -> dict[str, ModelsConfig | None]:
    """Each run's recorded models config (None when a run has none, e.g. an import).

    The embedded local server's address was only valid while that run lasted,
    so a recorded ``local`` backend loses its ``base_url`` and gets a fresh server.
    """
    runs = run_configs(db_path, (row["run_id"] for row in manifest_rows(db_path)))
    configs: dict[str, ModelsConfig | None] = {}
    for run_id, config in runs.items():
        if not config.get("models"):
            configs[run_id] = None
            continue
        try:
            models = ModelsConfig.model_validate(config["models"])
        except ValidationError as exc:
            raise ConfigError(f"{db_path}: run {run_id} has a recorded models config this version cannot read "
                              f"({exc.errors()[0]['msg']}); choose the judge with --backend, --base-url or --config") from exc
        if models.default.backend == "local":
            models = models.model_copy(update={"default": models.default.model_copy(update={"base_url": None})})
        configs[run_id] = models
    return configs


def _check_rules(
    db_path: str | Path,
    rows: list[dict[str, Any]],
    store: ValidationStore,
    current: dict[str, dict[str, Any]],
    summary: ValidationSummary,
    rejudge: bool,
) -> tuple[dict[str, Features], list[dict[str, Any]]]:
    """Pass 1, one state at a time: rules, fingerprint, dedup features; which need the judge."""
    found: dict[str, Features] = {}
    to_judge = []
    for row in rows:
        thread_id = row["thread_id"]
        state = load_or_none(db_path, thread_id)
        existing = current.get(thread_id)
        fields = rule_fields(state)
        if existing and existing.get("judge_fingerprint") not in (None, fields["fingerprint"]):
            fields.update({name: None for name in JUDGE_FIELDS})  # the trajectory changed: verdict is stale
        store.update(thread_id, fields, existing)
        current.setdefault(thread_id, {**fields, "thread_id": thread_id})
        summary.checked += 1
        if not fields["rules_ok"]:
            summary.failure_reasons.update(json.loads(fields["failure_rules"]))
            continue
        summary.passed_rules += 1
        found[thread_id] = features(state)
        row_now = current[thread_id]
        if rejudge or row_now.get("judge_verdict") is None or row_now.get("judge_error"):
            to_judge.append(row)
    return found, to_judge


def rule_fields(state: DialogueState | None) -> dict[str, Any]:
    if state is None:
        failures = [{"rule": Rule.STOPPED_BY_ERROR.value, "detail": "failed before its first checkpoint", "message_index": None}]
        digest = None
    else:
        failures = [f.as_dict() for f in check_rules(state)]
        digest = fingerprint(state)
    rules = sorted({f["rule"] for f in failures})
    return {
        "fingerprint": digest,
        "rules_ok": int(not failures),
        "failure_rules": json.dumps(rules),
        "rule_failures": json.dumps(failures),
    }


async def _judge_all(
    db_path: str | Path,
    rows: list[dict[str, Any]],
    judge_model_for: JudgeModelFor,
    concurrency: int,
    store: ValidationStore,
    current: dict[str, dict[str, Any]],
    summary: ValidationSummary,
) -> None:
    """Judge with at most ``concurrency`` trajectories in flight; each verdict is stored as it lands."""
    gate = asyncio.Semaphore(concurrency)

    async def judge_one(row: dict[str, Any]):
        async with gate:
            state = await asyncio.to_thread(load_or_none, db_path, row["thread_id"])
            model = judge_model_for(row["run_id"])
            try:
                return row, state, model, await judge_trajectory(model, state), None
            except ModelCallError as exc:
                return row, state, model, None, str(exc)

    for next_done in asyncio.as_completed([judge_one(row) for row in rows]):
        row, state, model, verdict, error = await next_done
        fields = judge_fields(state, model, verdict, error)
        store.update(row["thread_id"], fields, current[row["thread_id"]])
        if error:
            summary.judge_errors += 1
            if len(summary.judge_error_samples) < 3:
                summary.judge_error_samples.append(f"{row['thread_id']}: {error}")
        else:
            summary.judged_now += 1


def judge_fields(state: DialogueState, model: RoleModel, verdict: TrajectoryVerdict | None, error: str | None) -> dict[str, Any]:
    base = {"judge_model": f"{model.config.backend}:{model.config.model}", "judge_fingerprint": fingerprint(state), "judged_at": now()}
    if verdict is None:
        return {**base, "judge_verdict": None, "judge_reasoning": None, "judge_tasks": None, "judge_tokens": None, "judge_error": error}
    return {
        **base,
        "judge_verdict": verdict.verdict,
        "judge_reasoning": verdict.reasoning,
        "judge_tasks": json.dumps([t.as_dict() for t in verdict.tasks]),
        "judge_tokens": verdict.usage.total,
        "judge_error": None,
    }


def _mark_duplicates(
    rows: list[dict[str, Any]],
    found: dict[str, Features],
    store: ValidationStore,
    current: dict[str, dict[str, Any]],
    summary: ValidationSummary,
    threshold: float,
) -> None:
    """Pass 3: decide validity, then dedup among the valid ones, in manifest order."""
    valid_ids = []
    for row in rows:
        record = current[row["thread_id"]]
        valid = bool(record["rules_ok"]) and record.get("judge_verdict") != "invalid"
        if record.get("judge_verdict") == "invalid":
            summary.judged_invalid += 1
            summary.failure_reasons["judge_invalid"] += 1
        record["_valid"] = valid
        if valid:
            valid_ids.append(row["thread_id"])
    duplicates = find_duplicates(((tid, found[tid]) for tid in valid_ids), threshold)
    for row in rows:
        thread_id = row["thread_id"]
        record = current[thread_id]
        dup = duplicates.get(thread_id)
        fields = {
            "valid": int(record.pop("_valid")),
            "duplicate_of": dup.of if dup else None,
            "duplicate_kind": dup.kind if dup else None,
            "duplicate_similarity": dup.similarity if dup else None,
        }
        store.update(thread_id, fields, record)
        if dup:
            summary.duplicates += 1
            summary.failure_reasons["duplicate"] += 1
        elif fields["valid"]:
            summary.valid += 1
