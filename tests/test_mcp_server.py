"""The MCP client against real servers of our own (stdio and streamable HTTP): listing every
page, answers and tool errors, a dying server, a timeout, and a bad server named in one line."""

from __future__ import annotations

import sys

import pytest

from dialogforge.mcp import McpConnection, McpServer, McpServerError, McpTransportError, list_tools_now
from dialogforge.runs.mcp_backend import backend_for_run, prepare_mcp, survey
from dialogforge.config import GenerationSettings
from dialogforge.graphs.state import DialogueState
from dialogforge.records import Scenario
from tests.support.mcp_servers import broken_server_command, http_server, new_tag, server_command, wait_no_servers

TOOLS = ["list_records", "get_record", "create_record", "close_record", "delete_record"]


@pytest.fixture(scope="module")
def http_url():
    with http_server("--page-size", "2") as url:
        yield url


def test_listing_follows_every_page_over_stdio_and_stops_its_server() -> None:
    tag = new_tag()
    command = server_command("--page-size", "2", tag=tag)
    one_page = list_tools_now(McpServer.from_settings(server_command(), None))
    paged = list_tools_now(McpServer.from_settings(command, None))
    assert [t["name"] for t in paged] == [t["name"] for t in one_page] == TOOLS  # 3 pages of 2, 2, 1
    assert paged[0]["annotations"] == {"readOnlyHint": True} and "inputSchema" in paged[0]
    assert wait_no_servers(tag) == []


def test_listing_follows_every_page_over_http(http_url: str) -> None:
    assert [t["name"] for t in list_tools_now(McpServer.from_settings(None, http_url))] == TOOLS


def test_survey_turns_the_listing_into_seed_specs_and_samples_the_argument_free_reads(http_url: str) -> None:
    tools, samples = survey(GenerationSettings(mcp_url=http_url))
    assert [t.name for t in tools] == TOOLS and all(t.mcp is not None and t.source == "seed" for t in tools)
    reads = {t.name for t in tools if t.mcp.read_only}
    assert reads == {"list_records", "get_record"}
    assert set(samples) == {"list_records"}  # get_record needs an id: not called
    assert '"records"' in samples["list_records"]


def test_tasks_are_proposed_against_what_the_server_offers(http_url: str) -> None:
    """The executor's task context (what ``propose_task`` shows the proposer as the world):
    the server's tools, which of them only read, and what its reads answered at the start."""
    settings = GenerationSettings(mcp_url=http_url, tool_exec="mcp")
    backend, recorded, tools = prepare_mcp(settings, None)
    assert backend is not None and backend.executes and recorded.tool_source.value == "seed"
    context = backend.executor_for("t-00000").task_context(DialogueState(scenario=Scenario(domain="records")))["mcp_server"]
    assert {t["name"]: t["reads_only"] for t in context["tools"]} == {
        "list_records": True, "get_record": True, "create_record": False, "close_record": False, "delete_record": False}
    assert context["transport"] == "http (shared)" and "list_records" in context["sample_results"]
    assert backend.record()["server"] == http_url and backend.record()["renamed"] == {}


async def test_answers_tool_errors_and_a_server_that_dies() -> None:
    tag = new_tag()
    connection = McpConnection(McpServer.from_settings(server_command("--die-at", "3", tag=tag), None), timeout_s=30)
    await connection.start()
    try:
        await connection.list_tools()
        created = await connection.call("create_record", {"title": "first"})
        assert not created.is_error and created.content == '{"id": 1, "title": "first", "body": "", "status": "open"}'
        missing = await connection.call("get_record", {"record_id": 3})
        assert missing.is_error and "no record 3" in missing.content  # isError: the agent sees it
        refused = await connection.call("create_record", {})  # the server's own argument check
        assert refused.is_error
        with pytest.raises(McpTransportError, match="Connection closed"):
            await connection.call("close_record", {"record_id": 1})  # its 3rd counted call (the refused one never ran): it exits
        assert wait_no_servers(tag, timeout=5) == []
        with pytest.raises(McpTransportError):
            await connection.call("list_records", {})  # and stays gone, failing at once
    finally:
        await connection.aclose()


async def test_a_call_past_its_timeout_fails_as_a_transport_error_not_a_hang() -> None:
    tag = new_tag()
    connection = McpConnection(McpServer.from_settings(server_command("--slow", "30", tag=tag), None), timeout_s=5)
    await connection.start()
    try:
        with pytest.raises(McpTransportError, match="timed out"):
            await connection.call("get_record", {"record_id": 1})
    finally:
        await connection.aclose()
    assert wait_no_servers(tag) == []


@pytest.mark.parametrize("flags, expected", [
    ([], "malformed reply at content: Input should be a valid list"),
    (["--garbage"], "timed out"),  # the SDK skips a line that is not JSON-RPC; the call then times out
], ids=["wrong shape", "not JSON"])
async def test_a_reply_outside_the_protocol_is_a_transport_error(flags: list[str], expected: str) -> None:
    connection = McpConnection(McpServer.from_settings(broken_server_command(*flags), None), timeout_s=3)
    await connection.start()
    try:
        assert [t["name"] for t in await connection.list_tools()] == ["get_status"]
        with pytest.raises(McpTransportError, match=expected):
            await connection.call("get_status", {})
    finally:
        await connection.aclose()


@pytest.mark.parametrize("command, expected", [
    ("no-such-mcp-server --flag", "MCP server no-such-mcp-server --flag: FileNotFoundError"),
    (f"{sys.executable} -c \"import sys; sys.stderr.write('cannot open the vault\\n')\"", "server stderr: cannot open the vault"),
])
def test_a_server_that_cannot_start_is_one_error_naming_it(command: str, expected: str) -> None:
    with pytest.raises(McpServerError) as caught:
        list_tools_now(McpServer.from_settings(command, None), timeout_s=20)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreachable_url_is_one_error_naming_it() -> None:
    with pytest.raises(McpServerError, match=r"MCP server http://127\.0\.0\.1:9/mcp: ConnectError"):
        list_tools_now(McpServer.from_settings(None, "http://127.0.0.1:9/mcp"), timeout_s=10)


def test_a_resumed_run_starts_its_stdio_server_where_the_run_began(tmp_path) -> None:
    """``--mcp-server "python server.py"`` is relative to the directory the run started in:
    the run config keeps it, so a resume from anywhere starts the same server."""
    settings = GenerationSettings(mcp_server="python server.py", tool_exec="mcp")
    backend = backend_for_run({"settings": settings.model_dump(mode="json"), "mcp": {"cwd": str(tmp_path)}})
    assert backend is not None and backend.server.cwd == str(tmp_path)
    assert backend.server.command == ("python", "server.py") and backend.server.per_trajectory
