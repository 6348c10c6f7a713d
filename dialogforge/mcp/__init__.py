"""Talking to MCP servers through the official ``mcp`` SDK: listing tools, calling them.

Below both the executors (``dialogforge.executors.mcp`` calls tools) and
the runs layer (``--mcp-server`` / ``--mcp-url`` list them), so neither
imports the other. The SDK itself loads only when a server is contacted
(``dialogforge.mcp.sdk``): it costs over a second of imports that runs
without MCP, and ``--help``, never pay.
"""

from dialogforge.mcp.connection import McpConnection, list_tools_now, with_server_now
from dialogforge.mcp.servers import CallAnswer, McpServer, McpServerError, McpTransportError

__all__ = ["CallAnswer", "McpConnection", "McpServer", "McpServerError", "McpTransportError", "list_tools_now", "with_server_now"]
