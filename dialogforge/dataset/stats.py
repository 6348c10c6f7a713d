"""Dataset statistics: the paper's Table 1 measures per mode and tool source, plus validity and cost.

- Step: tool-use iterations per user request (``Counters.step_counts``), pooled
  over every finished request of the group: mean and max.
- Turn: user + assistant + tool messages per trajectory: mean and max.
- Task: tasks per trajectory: mean and max.
- Tokens per trajectory (all roles), and per role.
- Tool errors: the share of tool calls answered with an error, by kind
  (``ToolErrorKind``: invalid calls, not found, conflicts, invalid
  transitions, transient failures, failed SQL).
- Per tool library: how many of its tools the dataset exercises, and how
  often each is called (a library nobody's calls reach is a library wasted).
Validity comes from the ``validations`` table (``dialogforge validate``).
Trajectories are measured as their views: a capped one that completed a
task counts up to its last completed task (``dataset.cut``), as exported.
Everything counts trajectories and their turns, never training samples: a
dialogue whose agent window slid exports as several samples (``samples``),
which ``samples`` reports beside, without changing a Table-1 figure.
States stream one at a time; only the small per-trajectory numbers are kept
(they feed the histograms of the report).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogforge.checkpoints.manifest import Status
from dialogforge.dataset.corpus import iter_trajectories, manifest_rows, run_configs, source_of
from dialogforge.dataset.samples import sample_count
from dialogforge.dataset.validations import JUDGED, NOT_JUDGED, UNJUDGED, judge_status, read_validations, skip_reason
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Mode
from dialogforge.runs.tool_libraries import load_stored_libraries

PIPELINE = {Mode.USER.value: "user-oriented", Mode.TASK.value: "task-oriented"}
LIBRARY_LINES = 8  # libraries the text form lists; --json has every one


@dataclass
class Measure:
    values: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float | None:
        return round(sum(self.values) / len(self.values), 2) if self.values else None

    @property
    def max(self) -> int | None:
        return max(self.values) if self.values else None

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "max": self.max, "n": len(self.values)}

    def cell(self) -> str:
        return "-" if self.mean is None else f"{self.mean:.2f} ({self.max})"


@dataclass
class Group:
    mode: str
    source: str
    samples: int = 0
    step: Measure = field(default_factory=Measure)  # one value per finished user request
    turn: Measure = field(default_factory=Measure)
    task: Measure = field(default_factory=Measure)
    tokens: Measure = field(default_factory=Measure)

    def add(self, state: DialogueState) -> None:
        self.samples += 1
        self.step.values.extend(state.counters.step_counts)
        self.turn.values.append(sum(1 for m in state.messages if m.role in ("user", "assistant", "tool")))
        self.task.values.append(len(state.tasks))
        self.tokens.values.append(state.counters.total_tokens)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": PIPELINE.get(self.mode, self.mode), "mode": self.mode, "source": self.source,
            "samples": self.samples, "step": self.step.as_dict(), "turn": self.turn.as_dict(),
            "task": self.task.as_dict(), "tokens": self.tokens.as_dict(),
        }


@dataclass
class LibraryUse:
    """How a dataset exercises one tool library."""

    id: str
    name: str
    domain: str = ""
    tools: list[str] = field(default_factory=list)  # the library's, in its order
    trajectories: int = 0
    calls: Counter = field(default_factory=Counter)

    def add(self, state: DialogueState) -> None:
        self.trajectories += 1
        self.calls.update(c.name for m in state.messages for c in m.tool_calls)

    def as_dict(self) -> dict[str, Any]:
        calls = {name: self.calls.get(name, 0) for name in self.tools}
        return {"id": self.id, "name": self.name, "domain": self.domain, "tools": len(self.tools),
                "exercised": sum(1 for n in calls.values() if n), "trajectories": self.trajectories, "calls": calls}

    def line(self) -> str:
        used = sorted(((n, name) for name, n in self.as_dict()["calls"].items() if n), reverse=True)
        unused = [name for name in self.tools if not self.calls.get(name)]
        text = (f"  {self.name} ({self.domain}): {len(used)}/{len(self.tools)} tools exercised over "
                f"{self.trajectories} trajectories; calls: " + (", ".join(f"{name} {n}" for n, name in used) or "none"))
        return text + (f"; unused: {', '.join(unused)}" if unused else "")


@dataclass
class DatasetStats:
    statuses: dict[str, int]
    groups: list[Group]
    overall: Group
    validity: dict[str, Any]
    failure_reasons: dict[str, int]
    tokens_by_role: dict[str, float]
    tool_errors: dict[str, Any] = field(default_factory=dict)
    valid_only: bool = False
    cut: int = 0  # measured trajectories that were cut after their last completed task
    libraries: list[LibraryUse] = field(default_factory=list)
    samples: int = 0  # training samples an export writes for the measured trajectories (one per agent window)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trajectories": self.statuses,
            "valid_only": self.valid_only,
            "table1": [g.as_dict() for g in self.groups],
            "overall": self.overall.as_dict(),
            "validity": self.validity,
            "failure_reasons": self.failure_reasons,
            "tokens_by_role": self.tokens_by_role,
            "cut": self.cut,
            "export_samples": self.samples,
            "tool_errors": self.tool_errors,
            "tool_libraries": [use.as_dict() for use in self.libraries],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1)


def collect_stats(db_path: str | Path, *, valid_only: bool = False) -> DatasetStats:
    rows = manifest_rows(db_path, statuses=[s.value for s in Status])
    statuses = Counter(row["status"] for row in rows)
    validations = read_validations(db_path)
    done = [row for row in rows if row["status"] == Status.DONE.value]
    if valid_only:
        done = [row for row in done if _usable(validations.get(row["thread_id"]))]
    configs = run_configs(db_path, (row["run_id"] for row in done))
    groups: dict[tuple[str, str], Group] = {}
    overall = Group("all", "all")
    role_tokens: Counter = Counter()
    cut = samples = 0
    errors = ToolErrorTally()
    uses: dict[str, LibraryUse] = {}
    for trajectory in iter_trajectories(db_path, done):
        state = trajectory.state
        cut += trajectory.cut is not None
        samples += sample_count(state)
        key = (state.mode.value, source_of(state, configs.get(trajectory.row["run_id"], {})))
        groups.setdefault(key, Group(*key)).add(state)
        overall.add(state)
        errors.add(state)
        if state.tool_library is not None:
            ref = state.tool_library
            uses.setdefault(ref.id, LibraryUse(ref.id, ref.name)).add(state)
        for role, usage in state.counters.usage.items():
            role_tokens[role] += usage.total
    return DatasetStats(
        statuses={"total": len(rows), **{s.value: statuses.get(s.value, 0) for s in Status}},
        groups=[groups[key] for key in sorted(groups)],
        overall=overall,
        validity=validity(validations),
        failure_reasons=failure_reasons(validations),
        tokens_by_role={role: round(total / overall.samples, 1) for role, total in sorted(role_tokens.items())} if overall.samples else {},
        tool_errors=errors.as_dict(),
        valid_only=valid_only,
        cut=cut,
        libraries=_with_library_tools(db_path, uses),
        samples=samples,
    )


@dataclass
class ToolErrorTally:
    calls: int = 0
    errors: int = 0
    kinds: Counter = field(default_factory=Counter)

    def add(self, state: DialogueState) -> None:
        counters = state.counters
        self.calls += counters.tool_calls
        self.errors += counters.tool_errors
        self.kinds.update(counters.tool_error_kinds)
        unclassified = counters.tool_errors - sum(counters.tool_error_kinds.values())
        if unclassified > 0:  # imported conversations, and runs from before errors had kinds
            self.kinds["unclassified"] += unclassified

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "errors": self.errors,
                "rate": round(self.errors / self.calls, 4) if self.calls else None, "by_kind": dict(self.kinds.most_common())}


def _with_library_tools(db_path: str | Path, uses: dict[str, LibraryUse]) -> list[LibraryUse]:
    """Each library's whole tool list (a trajectory may hold a subset), from the database."""
    for library_id, library in load_stored_libraries(db_path, set(uses)).items():
        uses[library_id].tools, uses[library_id].domain = library.tool_names(), library.domain
    return sorted(uses.values(), key=lambda use: (use.name, use.id))


def _usable(validation: dict[str, Any] | None) -> bool:
    return validation is not None and skip_reason(validation) is None


def validity(validations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rows = list(validations.values())
    validated = len(rows)
    valid = sum(1 for v in rows if v.get("valid"))
    usable = sum(1 for v in rows if _usable(v))
    statuses = Counter(judge_status(v) for v in rows)
    return {
        "validated": validated,
        "rules_ok": sum(1 for v in rows if v.get("rules_ok")),
        "judged": statuses[JUDGED],
        "unjudged": statuses[UNJUDGED],
        "not_judged": statuses[NOT_JUDGED],
        "judged_invalid": sum(1 for v in rows if v.get("judge_verdict") == "invalid"),
        "valid": valid,
        "validity_rate": round(valid / validated, 4) if validated else None,
        "duplicates": sum(1 for v in rows if v.get("duplicate_of")),
        "usable": usable,
        "usable_rate": round(usable / validated, 4) if validated else None,
    }


def failure_reasons(validations: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Trajectories per reason: each rule that failed, a judge's invalid verdict, a duplicate mark."""
    reasons: Counter = Counter()
    for v in validations.values():
        reasons.update(json.loads(v.get("failure_rules") or "[]"))
        if v.get("judge_verdict") == "invalid":
            reasons["judge_invalid"] += 1
        if judge_status(v) == UNJUDGED:
            reasons["unjudged"] += 1
        if v.get("duplicate_of"):
            reasons["duplicate"] += 1
    return dict(reasons.most_common())


def table_text(stats: DatasetStats) -> str:
    """The human-readable form: Table 1 as in the paper, then validity and cost."""
    lines = [f"{'pipeline':<14} {'source':<24} {'Step':>14} {'Turn':>14} {'Task':>12} {'samples':>8}"]
    for g in [*stats.groups, stats.overall]:
        name = PIPELINE.get(g.mode, g.mode)
        lines.append(f"{name:<14} {g.source:<24} {g.step.cell():>14} {g.turn.cell():>14} {g.task.cell():>12} {g.samples:>8}")
    lines.append("Step = tool rounds per user request, Turn = user+assistant+tool messages, Task = tasks per trajectory; mean (max)")
    t = stats.statuses
    lines.append(f"trajectories: {t['total']} ({t['done']} done, {t['failed']} failed, {t['pending'] + t['running']} unfinished)"
                 + ("; statistics over valid, non-duplicate ones" if stats.valid_only else "")
                 + (f"; {stats.cut} capped ones measured up to their last completed task" if stats.cut else "")
                 + (f"; they export as {stats.samples} samples (one per agent context window)"
                    if stats.samples > stats.overall.samples else ""))
    v = stats.validity
    if v["validated"]:
        lines.append(f"validity: {v['valid']}/{v['validated']} valid ({v['validity_rate']:.1%}), "
                     f"{v['duplicates']} duplicates, {v['usable']} usable ({v['usable_rate']:.1%}); judged {v['judged']}, "
                     f"unjudged {v['unjudged']} (judge failed), not judged {v['not_judged']} (rules only)")
        if stats.failure_reasons:
            lines.append("failure reasons: " + ", ".join(f"{k} {n}" for k, n in stats.failure_reasons.items()))
    else:
        lines.append("validity: not validated yet (run `dialogforge validate --db PATH`)")
    e = stats.tool_errors
    if e.get("calls"):
        lines.append(f"tool errors: {e['errors']}/{e['calls']} calls ({e['rate']:.1%}): "
                     + (", ".join(f"{kind} {n}" for kind, n in e["by_kind"].items()) or "none"))
    lines.append(f"tokens per trajectory: {stats.overall.tokens.cell()}; by role (mean): "
                 + (", ".join(f"{role} {n:g}" for role, n in stats.tokens_by_role.items()) or "-"))
    if stats.libraries:
        lines.append("tool libraries (tools the dataset calls, and how often):")
        lines += [use.line() for use in stats.libraries[:LIBRARY_LINES]]
        if len(stats.libraries) > LIBRARY_LINES:
            lines.append(f"  ... and {len(stats.libraries) - LIBRARY_LINES} more libraries (--json lists them all)")
    return "\n".join(lines)
