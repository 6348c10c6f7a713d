"""Check that every endpoint answers before a run starts any work.

An overnight run against a mistyped URL should fail in a second with one
line, not after planning ten thousand trajectories.
"""

from __future__ import annotations

import httpx

from dialogforge.config import ModelsConfig, Role
from dialogforge.config_file import masked_url
from dialogforge.errors import ConfigError

PREFLIGHT_TIMEOUT_S = 5.0


def check_endpoints(config: ModelsConfig) -> None:
    urls = {e.url for r in Role if config.for_role(r).backend in ("openai", "local") for e in config.for_role(r).endpoints()}
    for url in sorted(u for u in urls if u):
        try:
            httpx.get(url.rstrip("/") + "/models", timeout=PREFLIGHT_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise ConfigError(f"endpoint {masked_url(url)} is unreachable ({type(exc).__name__})") from exc
