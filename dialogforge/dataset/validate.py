"""``validate``: rule checks, the optional rubric judge, then dedup, stored per trajectory.

Order matters. Rules first (cheap, no model). The judge reads only
trajectories that pass the rules: the others are out anyway and a model call
costs money. Dedup last, among the trajectories still valid, so that an
invalid trajectory never claims to be the original that a valid one repeats.

What "valid" means: the trajectory, read as its view (a capped one cut
after its last completed task, ``dataset.cut``), passes the rules; and once
judging was asked for it (``--judge``, remembered per trajectory), a judge
verdict exists and says valid. A judge call that still fails after its
bounded retries, or a task too long for the judge's context budget, leaves
the trajectory *unjudged* with the reason in ``judge_error``: not valid, out
of ``--valid-only`` exports unless they ask for unjudged ones, and judged
again by the next ``validate --judge``. A trajectory never put to the judge
is valid by the rules alone, and the summary says that nothing was judged.

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
from dialogforge.dataset.corpus import View, load_view, manifest_rows, run_configs
from dialogforge.dataset.dedup import Features, features, find_duplicates
from dialogforge.dataset.errors import JudgeContextError
from dialogforge.dataset.options import DEFAULT_JUDGE_CONTEXT_TOKENS, DEFAULT_THRESHOLD
from dialogforge.dataset.judge import TrajectoryVerdict, judge_trajectory
from dialogforge.dataset.rules import Rule, check_rules
from dialogforge.dataset.validations import JUDGE_FIELDS, JUDGED, NOT_JUDGED, UNJUDGED, ValidationStore
from dialogforge.errors import ConfigError, ModelCallError
from dialogforge.models import RoleModel

# run_id -> the judge model for that run's trajectories
JudgeModelFor = Callable[[str], RoleModel]


STALE = "the trajectory changed since it was judged; `dialogforge validate --judge` judges it again"
NOT_YET = "not judged yet; `dialogforge validate --judge` judges it"


@dataclass
class ValidationSummary:
    checked: int = 0
    passed_rules: int = 0
    cut: int = 0  # capped trajectories read up to their last completed task
    cut_messages: int = 0  # messages those cuts left out
    judge_asked: bool = False  # this run had a judge
    judged_now: int = 0
    judge_errors: int = 0  # judge failures in this run
    judged: int = 0  # passing the rules, with a verdict
    judged_invalid: int = 0
    unjudged: int = 0  # passing the rules, judging asked for, no verdict: not valid
    unjudged_reasons: Counter = field(default_factory=Counter)  # reason -> trajectories
    not_judged: int = 0  # passing the rules, never put to the judge: valid by the rules alone
    duplicates: int = 0
    valid: int = 0  # valid and not a duplicate: what --valid-only exports
    failure_reasons: Counter = field(default_factory=Counter)  # rule -> trajectories failing it
    judge_error_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failure_reasons"] = dict(sorted(self.failure_reasons.items()))
        data["unjudged_reasons"] = dict(self.unjudged_reasons.most_common())
        return data


def validate(
    db_path: str | Path,
    *,
    judge_model_for: JudgeModelFor | None = None,
    concurrency: int = 8,
    rejudge: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    judge_context_tokens: int = DEFAULT_JUDGE_CONTEXT_TOKENS,
) -> ValidationSummary:
    """Check every finished trajectory; with ``judge_model_for``, judge those passing the rules."""
    rows = manifest_rows(db_path)
    summary = ValidationSummary(judge_asked=judge_model_for is not None)
    with ValidationStore(db_path) as store:
        current = store.all()
        found, to_judge = _check_rules(db_path, rows, store, current, summary, rejudge)
        if judge_model_for is not None and to_judge:
            asyncio.run(_judge_all(db_path, to_judge, judge_model_for, concurrency, judge_context_tokens, store, current, summary))
        _decide(rows, found, store, current, summary, threshold)
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
    """Pass 1, one view at a time: rules, fingerprint, cut, dedup features; which need the judge."""
    found: dict[str, Features] = {}
    to_judge = []
    for row in rows:
        thread_id = row["thread_id"]
        view = load_view(db_path, thread_id)
        existing = current.get(thread_id)
        fields = rule_fields(view)
        fields["judge_requested"] = int(summary.judge_asked or _was_put_to_judge(existing))
        if existing and existing.get("judge_fingerprint") not in (None, fields["fingerprint"]):
            fields.update({name: None for name in JUDGE_FIELDS})  # the trajectory changed: verdict is stale
            fields["judge_error"] = STALE
        store.update(thread_id, fields, existing)
        current.setdefault(thread_id, {**fields, "thread_id": thread_id})
        summary.checked += 1
        if view is not None and view.cut is not None:
            summary.cut += 1
            summary.cut_messages += view.cut.dropped_messages
        if not fields["rules_ok"]:
            summary.failure_reasons.update(json.loads(fields["failure_rules"]))
            continue
        summary.passed_rules += 1
        found[thread_id] = features(view.state)
        row_now = current[thread_id]
        if summary.judge_asked and (rejudge or row_now.get("judge_verdict") is None or row_now.get("judge_error")):
            to_judge.append(row)
    return found, to_judge


def _was_put_to_judge(existing: dict[str, Any] | None) -> bool:
    """Judging was asked for before (an older release's row: it has a verdict or a judge error)."""
    if not existing:
        return False
    if existing.get("judge_requested") is not None:
        return bool(existing["judge_requested"])
    return existing.get("judge_verdict") is not None or existing.get("judge_error") is not None


def rule_fields(view: View | None) -> dict[str, Any]:
    if view is None:
        failures = [{"rule": Rule.STOPPED_BY_ERROR.value, "detail": "failed before its first checkpoint", "message_index": None}]
        digest, cut = None, None
    else:
        failures = [f.as_dict() for f in check_rules(view.state, view.cut)]
        digest, cut = view.fingerprint, view.cut
    rules = sorted({f["rule"] for f in failures})
    return {
        "fingerprint": digest,
        "rules_ok": int(not failures),
        "failure_rules": json.dumps(rules),
        "rule_failures": json.dumps(failures),
        "cut": json.dumps(cut.as_dict()) if cut else None,
    }


async def _judge_all(
    db_path: str | Path,
    rows: list[dict[str, Any]],
    judge_model_for: JudgeModelFor,
    concurrency: int,
    context_tokens: int,
    store: ValidationStore,
    current: dict[str, dict[str, Any]],
    summary: ValidationSummary,
) -> None:
    """Judge with at most ``concurrency`` trajectories in flight; each verdict is stored as it lands."""
    gate = asyncio.Semaphore(concurrency)

    async def judge_one(row: dict[str, Any]):
        async with gate:
            view = await asyncio.to_thread(load_view, db_path, row["thread_id"])
            model = judge_model_for(row["run_id"])
            try:
                verdict = await judge_trajectory(model, view.state, cut=view.cut, context_tokens=context_tokens)
                return row, view, model, verdict, None
            except (ModelCallError, JudgeContextError) as exc:
                return row, view, model, None, str(exc)

    for next_done in asyncio.as_completed([judge_one(row) for row in rows]):
        row, view, model, verdict, error = await next_done
        fields = judge_fields(view, model, verdict, error)
        store.update(row["thread_id"], fields, current[row["thread_id"]])
        if error:
            summary.judge_errors += 1
            if len(summary.judge_error_samples) < 3:
                summary.judge_error_samples.append(f"{row['thread_id']}: {error}")
        else:
            summary.judged_now += 1


def judge_fields(view: View, model: RoleModel, verdict: TrajectoryVerdict | None, error: str | None) -> dict[str, Any]:
    base = {"judge_model": f"{model.config.backend}:{model.config.model}", "judge_fingerprint": view.fingerprint, "judged_at": now()}
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


def judge_status_of(record: dict[str, Any]) -> str | None:
    """judged (a verdict), unjudged (asked for, none), not_judged (never asked), None (failed the rules)."""
    if record.get("judge_verdict") is not None:
        return JUDGED
    if not record.get("rules_ok"):
        return None
    return UNJUDGED if record.get("judge_requested") else NOT_JUDGED


def _decide(
    rows: list[dict[str, Any]],
    found: dict[str, Features],
    store: ValidationStore,
    current: dict[str, dict[str, Any]],
    summary: ValidationSummary,
    threshold: float,
) -> None:
    """Pass 3: decide validity, then dedup in manifest order: the valid ones first, then the
    unjudged ones, so an unjudged trajectory is never the original a valid one repeats."""
    valid_ids, unjudged_ids = [], []
    for row in rows:
        record = current[row["thread_id"]]
        status = judge_status_of(record)
        record["_status"] = status
        record["_valid"] = bool(record["rules_ok"]) and (
            status == NOT_JUDGED or (status == JUDGED and record.get("judge_verdict") == "valid"))
        _count(summary, record, status)
        if record["_valid"]:
            valid_ids.append(row["thread_id"])
        elif status == UNJUDGED:
            unjudged_ids.append(row["thread_id"])
    duplicates = find_duplicates(((tid, found[tid]) for tid in [*valid_ids, *unjudged_ids]), threshold)
    for row in rows:
        thread_id = row["thread_id"]
        record = current[thread_id]
        dup = duplicates.get(thread_id)
        fields = {
            "valid": int(record.pop("_valid")),
            "judge_status": record.pop("_status"),
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


def _count(summary: ValidationSummary, record: dict[str, Any], status: str | None) -> None:
    if status == JUDGED and record["rules_ok"]:
        summary.judged += 1
        if record.get("judge_verdict") == "invalid":
            summary.judged_invalid += 1
            summary.failure_reasons["judge_invalid"] += 1
    elif status == UNJUDGED:
        summary.unjudged += 1
        summary.unjudged_reasons[record.get("judge_error") or NOT_YET] += 1
        summary.failure_reasons["unjudged"] += 1
    elif status == NOT_JUDGED:
        summary.not_judged += 1
