"""An MCP run: the server's tools as seed tools, and the server as the tool backend.

``--mcp-server "COMMAND ARGS"`` (stdio) or ``--mcp-url URL`` (streamable
HTTP) names the server. Planning lists its tools once (every page), turns
them into seed specs (``dialogforge.inputs.mcp_tools``) and, like Tool-Exec
samples rows for the task proposer, asks a few of its read-only tools that
take no arguments what they say, so tasks are proposed against what the
server really holds. With ``--tool-exec mcp`` (the default once a server is
given) the server also answers the calls (``dialogforge.executors.mcp``);
with ``--tool-exec simulated`` its tools are only the seed.

All of it is recorded with the run (the tools as its seed tools, the rest
under ``mcp``), so resume and fork reach the same server without listing it again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dialogforge.config import GenerationSettings
from dialogforge.errors import ConfigError
from dialogforge.executors.contract import ToolExecutor
from dialogforge.executors.mcp import McpSlots, McpToolExecutor
from dialogforge.inputs.mcp_tools import mcp_tool_specs, renamed
from dialogforge.mcp import McpConnection, McpServer, with_server_now
from dialogforge.records import ToolExec, ToolSource, ToolSpec

SAMPLED_TOOLS = 5  # read-only, argument-free tools asked at planning
SAMPLE_CHARS = 600  # of each answer, shown to the task proposer


@dataclass
class McpBackend:
    """What executes an MCP run's calls: one executor per trajectory, sharing the pool of slots."""

    server: McpServer
    tools: list[ToolSpec]
    settings: GenerationSettings
    samples: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slots = McpSlots(self.settings.mcp_pool)

    @property
    def executes(self) -> bool:
        """Whether the server answers the calls (``--tool-exec mcp``), or only seeded the tools."""
        return self.settings.tool_exec is ToolExec.MCP

    def executor_for(self, _thread_id: str) -> ToolExecutor:
        context = {"transport": "http (shared)" if self.server.url else "stdio (own server)",
                   **({"sample_results": self.samples} if self.samples else {})}
        return McpToolExecutor(self.server, self.tools, slots=self.slots,
                               timeout_s=self.settings.mcp_timeout_s, context=context)

    def record(self) -> dict[str, Any]:
        """What the run config keeps: the server, the renamed tools' mapping, the samples."""
        return {"server": self.server.describe(), "transport": "http" if self.server.url else "stdio", "cwd": self.server.cwd,
                "tools": len(self.tools), "renamed": renamed(self.tools), "samples": self.samples}


def server_of(settings: GenerationSettings, cwd: str | None = None) -> McpServer | None:
    """The run's MCP server, or None; contradictory settings are refused."""
    if not settings.mcp_server and not settings.mcp_url:
        if settings.tool_exec is ToolExec.MCP:
            raise ConfigError('--tool-exec mcp needs --mcp-server "COMMAND ARGS" (stdio) or --mcp-url URL (streamable HTTP)')
        return None
    if settings.tool_exec is ToolExec.SQL:
        raise ConfigError("--tool-exec sql runs the domain's SQL tools; --mcp-server/--mcp-url cannot be combined with it")
    if settings.tools_file:
        raise ConfigError("--mcp-server/--mcp-url take the tools from the server; --tools cannot be combined with them")
    if settings.tool_exec is ToolExec.MCP and settings.tool_source is ToolSource.SEED_PLUS:
        raise ConfigError("--tool-exec mcp runs the server's tools only; --synthesize-more cannot be combined with it")
    return McpServer.from_settings(settings.mcp_server, settings.mcp_url, cwd or os.getcwd())


Survey = tuple[list[ToolSpec], dict[str, str]]  # the server's tools as seed specs, and its sample answers


def prepare_mcp(
    settings: GenerationSettings, seed_tools: list[ToolSpec] | None, tool_sets: Sequence[object] | None = None,
    surveyed: Survey | None = None,
) -> tuple[McpBackend | None, GenerationSettings, list[ToolSpec] | None]:
    """For a run with an MCP server: its backend (``executes`` says whether it answers calls), the settings to
    record, and the server's tools as the seed tools (``surveyed`` if the caller listed the server
    already, as the CLI does before it starts any model). Any other run: unchanged."""
    server = server_of(settings)
    if server is None:
        return None, settings, seed_tools
    if seed_tools or tool_sets:
        raise ConfigError("--mcp-server/--mcp-url take the tools from the server; other seed tools cannot be added")
    tools, samples = surveyed if surveyed is not None else survey(settings)
    source = ToolSource.SEED if settings.tool_source is ToolSource.SYNTHESIZE else settings.tool_source
    settings = settings.model_copy(update={"tool_source": source})
    return McpBackend(server, tools, settings, samples), settings, tools


def survey(settings: GenerationSettings) -> Survey:
    """The server's tools as seed specs, and what its read-only, argument-free tools answer
    (a few of them): one connection, started and stopped here."""
    server = McpServer.from_settings(settings.mcp_server, settings.mcp_url, os.getcwd())

    async def look(connection: McpConnection) -> tuple[list[ToolSpec], dict[str, str]]:
        specs = mcp_tool_specs(f"MCP server {server.describe()}", await connection.list_tools(), where="tool")
        if not specs:
            raise ConfigError(f"MCP server {server.describe()}: lists no tools")
        samples = {}
        for spec in [s for s in specs if s.mcp and s.mcp.read_only is True and not s.function.parameters.get("required")][:SAMPLED_TOOLS]:
            answer = await connection.call(spec.mcp.name, {})
            if not answer.is_error:
                samples[spec.name] = answer.content[:SAMPLE_CHARS]
        return specs, samples

    return with_server_now(server, look, timeout_s=settings.mcp_timeout_s)


def backend_for_run(run_config: dict[str, Any]) -> McpBackend | None:
    """The backend that continues a recorded MCP run (``resume``, ``fork``)."""
    settings = GenerationSettings.model_validate(run_config.get("settings") or {})
    if settings.tool_exec is not ToolExec.MCP:
        return None
    recorded = run_config.get("mcp") or {}
    server = server_of(settings, recorded.get("cwd"))
    assert server is not None  # server_of refuses tool_exec mcp without one
    tools = [ToolSpec.model_validate(t) for t in run_config.get("seed_tools") or []]
    return McpBackend(server, tools, settings, dict(recorded.get("samples") or {}))
