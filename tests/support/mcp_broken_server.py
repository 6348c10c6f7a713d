"""A stdio MCP server that breaks the protocol: it lists one tool, then answers every
``tools/call`` with a result of the wrong shape (``content`` not a list), or, with
``--garbage``, with a line that is not JSON at all. Raw JSON-RPC, no SDK: the SDK's
own server would never send these."""

from __future__ import annotations

import json
import sys

TOOL = {"name": "get_status", "description": "The status.", "inputSchema": {"type": "object", "properties": {}}}


def main() -> None:
    garbage = "--garbage" in sys.argv
    for line in sys.stdin:
        message = json.loads(line)
        if "id" not in message:
            continue  # a notification
        method = message.get("method")
        if method == "initialize":
            result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "broken", "version": "0"}}
        elif method == "tools/list":
            result = {"tools": [TOOL]}
        elif method == "tools/call" and garbage:
            sys.stdout.write("this is not JSON-RPC\n")
            sys.stdout.flush()
            continue
        elif method == "tools/call":
            result = {"content": "not a list of blocks", "isError": "maybe"}
        else:
            result = {}
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
