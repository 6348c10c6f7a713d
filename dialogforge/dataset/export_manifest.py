"""The manifest written beside every export: how the data was made, with secrets masked.

It records, per generation run, the settings (with seeds), the model each
role used and its endpoint (credentials in URLs and secret-looking keys
masked; API keys themselves are never stored anywhere, only the name of the
variable that held one), plus the export's own options and counts, and what the data's shape is
(``target``: conventions, where reasoning went, how masking is written, and
what the format changed or left out on the way).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

import dialogforge
from dialogforge.config import ModelsConfig, Role
from dialogforge.config_file import masked_url

_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|passwd|authorization|bearer|access[_-]?token|auth[_-]?token|credential)", re.I)
MASK = "***"


def masked(value: Any) -> Any:
    """A deep copy with secret-looking keys masked and URL credentials hidden."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and _SECRET_KEY.search(key) and not key.endswith("_env") and item not in (None, ""):
                out[key] = MASK
            elif key == "base_url" or (isinstance(item, str) and "://" in item):
                out[key] = masked_url(item) if isinstance(item, str) else masked(item)
            else:
                out[key] = masked(item)
        return out
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def role_models(models: dict[str, Any]) -> dict[str, Any]:
    """Which model played each role, resolved from the recorded default plus overrides."""
    if not models:
        return {}
    try:
        config = ModelsConfig.model_validate(models)
    except ValidationError:
        return {"recorded": masked(models)}  # written by another version: keep it as it was, masked
    view = {}
    for role in Role:
        c = config.for_role(role)
        view[role.value] = masked({
            "backend": c.backend, "model": c.model, "base_url": c.base_url, "temperature": c.temperature,
            "max_tokens": c.max_tokens, "structured_method": c.structured_method.value, "extra_body": c.extra_body,
        })
    return view


def run_entry(run_id: str, config: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    settings = dict(config.get("settings") or {})
    seed_tools = config.get("seed_tools") or []
    return {
        "run_id": run_id,
        "settings": masked(settings),
        "run_seed": settings.get("seed"),
        "trajectory_seeds": {row["thread_id"]: row.get("seed") for row in rows},
        # capped trajectories exported up to their last completed task, and what was cut from each
        "cuts": {row["thread_id"]: row["cut"] for row in rows if row.get("cut")},
        # trajectories written as several samples (the agent's context window slid), and how many each
        "samples": {row["thread_id"]: row["samples"] for row in rows if row.get("samples", 1) > 1},
        "models": role_models(config.get("models") or {}),
        "seed_tools": [t.get("function", {}).get("name") for t in seed_tools if isinstance(t, dict)],
    }


def build_manifest(
    *,
    fmt: str,
    options: dict[str, Any],
    exported_rows: list[dict[str, Any]],
    configs: dict[str, dict[str, Any]],
    counts: dict[str, Any],
    skipped: Counter,
    seconds: float,
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in exported_rows:
        by_run.setdefault(row.get("run_id") or "", []).append(row)
    return {
        "dialogforge_version": dialogforge.__version__,
        "format": fmt,
        "target": target or {},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": options,
        "counts": {**counts, "skipped": dict(sorted(skipped.items()))},
        "seconds": round(seconds, 3),
        "runs": [run_entry(run_id, configs.get(run_id, {}), rows) for run_id, rows in sorted(by_run.items())],
    }
