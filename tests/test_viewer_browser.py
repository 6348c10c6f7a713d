"""The viewer in a real browser: Debian's chromium, headless, driven by Playwright.

Against the served page (a real server on 127.0.0.1 over a real database)
and against the single HTML file opened from disk. `.ci/install-browser`
installs chromium and playwright; without them these tests fail, saying so
(set DIALOGFORGE_SKIP_BROWSER=1 to skip them on a machine without a browser).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dialogforge.runs.reading import load_state
from dialogforge.viewer.server import BackgroundServer
from dialogforge.viewer.standalone import write_trajectory_html
from tests.support.viewer import DOMAIN_PAYLOAD, USER_PAYLOAD, build_viewer_db

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOT_DIR = os.environ.get("DIALOGFORGE_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def browser(vdb):
    """Started after the database is built: playwright's sync API keeps an event loop running on
    this thread, and ``generate`` runs one of its own (asyncio.run refuses to nest)."""
    if os.environ.get("DIALOGFORGE_SKIP_BROWSER") == "1":
        pytest.skip("DIALOGFORGE_SKIP_BROWSER=1")
    if not Path(CHROMIUM).exists() or shutil.which("dot") is None:
        pytest.fail(f"{CHROMIUM} or graphviz missing: run .ci/install-browser")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see .ci/install-browser)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def vdb(tmp_path_factory):
    return build_viewer_db(tmp_path_factory.mktemp("viewer") / "run.db")


@pytest.fixture(scope="module")
def server(vdb):
    with BackgroundServer(vdb.path) as running:
        yield running


class Page:
    """A browser tab that records script errors, console messages and every request it makes."""

    def __init__(self, browser, base: str):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900},
                                           permissions=["clipboard-read", "clipboard-write"])
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        self.page.on("request", lambda req: self.requests.append(req.url))

    def open_trajectory(self, thread_id: str) -> None:
        self.page.goto(f"{self.base}#/t/{thread_id}")
        self.wait_title(thread_id)

    def wait_title(self, thread_id: str) -> None:
        self.page.wait_for_function(
            "t => { const h = document.getElementById('thread-title'); return h && h.textContent === t; }",
            arg=thread_id, timeout=15_000)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors
        assert not [c for c in self.console if "Content Security Policy" in c or c.startswith("error")], self.console


@pytest.fixture
def tab(browser, server):
    page = Page(browser, server.url)
    yield page
    page.close()
    outside = [u for u in page.requests if not (u.startswith(server.url) or u.startswith("data:"))]
    assert outside == []  # offline: nothing but this server


def test_list_renders_with_counters_and_filters(tab, vdb):
    page = tab.page
    page.goto(tab.base)
    rows = page.locator("#trajectory-table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 7
    assert page.locator("#list-summary strong").inner_text() == "7 of 7 trajectories"
    first = page.locator(f"tr[data-thread='{vdb.threads[0]}'] td")
    state = load_state(vdb.path, vdb.threads[0])
    assert first.nth(8).inner_text() == str(state.counters.tool_calls)
    assert first.nth(7).inner_text() == str(len(state.messages))
    assert page.locator("select[name=validity]").is_disabled()  # no validations in this database

    page.select_option("select[name=mode]", "task")
    page.wait_for_function("() => document.querySelectorAll('#trajectory-table tbody tr').length === 1")
    assert page.locator("#trajectory-table tbody tr").first.get_attribute("data-thread") == vdb.threads[2]
    page.select_option("select[name=mode]", "")
    page.select_option("select[name=status]", "failed")
    # Wait for the failed filter's own row: the task filter's one row (still shown until the list
    # re-renders) would satisfy a wait on the count alone.
    page.wait_for_function(
        "t => { const r = document.querySelectorAll('#trajectory-table tbody tr');"
        " return r.length === 1 && r[0].dataset.thread === t; }", arg=vdb.failed, timeout=15_000)
    assert page.locator("#trajectory-table tbody tr").count() == 1
    assert "status=failed" in page.url


def test_click_opens_a_trajectory_and_reasoning_expands(tab, vdb):
    page = tab.page
    thread = next(t for t in vdb.threads if any(m.is_error for m in load_state(vdb.path, t).messages))  # one with a tool error
    state = load_state(vdb.path, thread)
    page.goto(tab.base)
    page.click(f"a.thread-link:text-is('{thread}')")
    tab.wait_title(thread)
    assert page.locator(".msg").count() == len(state.messages)
    assert page.locator(".task-boundary").count() == len(state.tasks)
    assert page.locator(".task-boundary .task-goal").first.inner_text() == state.tasks[0].goal
    assert page.locator(".msg-error").count() == sum(m.is_error for m in state.messages) > 0

    first_reasoning = next(i for i, m in enumerate(state.messages) if m.reasoning)
    body = page.locator(f"#m{first_reasoning} details.reasoning pre")
    assert not body.is_visible()
    page.click(f"#m{first_reasoning} details.reasoning summary")
    assert body.is_visible() and body.inner_text() == state.messages[first_reasoning].reasoning

    call_msg = next(i for i, m in enumerate(state.messages) if m.tool_calls)
    args = page.locator(f"#m{call_msg} .tool-call pre").first.inner_text()
    assert args.startswith("{\n  \"")  # pretty-printed arguments
    page.click("#tools > summary")
    assert page.locator("#tools details.tool .fn").all_inner_texts() == [t.name for t in state.tools]


def test_fork_links_navigate_and_the_fork_point_is_marked(tab, vdb):
    page = tab.page
    tab.open_trajectory(vdb.fork)
    marker = page.locator("#fork-point")
    assert marker.is_visible() and vdb.fork_checkpoint in marker.inner_text()
    inherited = page.locator(".msg.inherited").count()
    assert 0 < inherited < page.locator(".msg").count()
    assert page.locator(".msg").nth(inherited).get_attribute("id") == f"m{inherited}"

    marker.locator("a.fork-link").click()  # to the parent
    tab.wait_title(vdb.threads[0])
    fork_to = page.locator(".fork-to a.fork-link")
    assert fork_to.all_inner_texts() == [vdb.fork]
    page.click("#checkpoints > summary")
    forked_row = page.locator(f"#checkpoints li[data-checkpoint='{vdb.fork_checkpoint}']")
    assert "forked" in forked_row.get_attribute("class") and vdb.fork in forked_row.inner_text()
    forked_row.locator("button.copy", has_text="copy id").click()
    assert page.evaluate("navigator.clipboard.readText()") == vdb.fork_checkpoint
    forked_row.locator("button.copy", has_text="copy fork cmd").click()
    command = page.evaluate("navigator.clipboard.readText()")
    assert command == f"dialogforge fork {vdb.threads[0]} --db {vdb.path} --checkpoint {vdb.fork_checkpoint} --n 1"

    fork_to.click()  # back down to the fork
    tab.wait_title(vdb.fork)
    page.click(f"#fork-tree a.tree-link:text-is('{vdb.fork_of_fork}')")  # and down the tree
    tab.wait_title(vdb.fork_of_fork)
    assert page.locator("#fork-tree .tree-current").inner_text() == f"{vdb.fork_of_fork} (this)"
    page.go_back()
    tab.wait_title(vdb.fork)


@pytest.mark.security
def test_payloads_render_as_text_and_never_run(tab, vdb):
    page = tab.page
    tab.open_trajectory(vdb.poisoned)
    first_user = page.locator("#m0 .content")
    assert first_user.inner_text() == USER_PAYLOAD
    assert DOMAIN_PAYLOAD in page.locator(".traj-head .meta").inner_text()
    assert DOMAIN_PAYLOAD in page.locator(".task-boundary .task-goal").first.inner_text()
    assert page.locator("img").count() == 0 and page.locator("#app script").count() == 0
    assert page.locator("#app b:text-is('bold')").count() == 0  # the domain's <b> stayed text
    assert page.evaluate("typeof window.__pwned") == "undefined"

    page.goto(tab.base + "#/?q=poisoned")
    page.locator("#trajectory-table tbody tr").first.wait_for()
    assert DOMAIN_PAYLOAD in page.locator("#trajectory-table td.domain").first.get_attribute("title")
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_failed_trajectory_is_highlighted(tab, vdb):
    page = tab.page
    tab.open_trajectory(vdb.failed)
    banner = page.locator(".error-banner")
    error = load_state(vdb.path, vdb.failed).error
    assert error.startswith("agent: ") and banner.is_visible() and error in banner.inner_text()
    assert "error" in page.locator("#end").get_attribute("class")


def test_screenshot(tab, vdb, tmp_path):
    page = tab.page
    tab.open_trajectory(vdb.fork)
    page.locator("details.reasoning summary").first.click()
    out = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "viewer_trajectory.png"))
    page.goto(tab.base)
    page.locator("#trajectory-table tbody tr").first.wait_for()
    page.screenshot(path=str(out / "viewer_list.png"))
    for name in ("viewer_trajectory.png", "viewer_list.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_single_html_file_in_the_browser(browser, vdb, tmp_path):
    poisoned = write_trajectory_html(vdb.path, vdb.poisoned, tmp_path / "poisoned.html")
    tab = Page(browser, poisoned.as_uri())
    page = tab.page
    page.goto(poisoned.as_uri())
    tab.wait_title(vdb.poisoned)
    assert page.locator("#m0 .content").inner_text() == USER_PAYLOAD
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    tab.close()
    assert all(u.startswith("file:") or u.startswith("data:") for u in tab.requests), tab.requests

    fork = write_trajectory_html(vdb.path, vdb.fork, tmp_path / "fork.html")
    tab = Page(browser, fork.as_uri())
    page = tab.page
    page.goto(fork.as_uri())
    tab.wait_title(vdb.fork)
    page.click(f"#fork-tree a.tree-link:text-is('{vdb.threads[0]}')")  # the family travels in the file
    tab.wait_title(vdb.threads[0])
    page.click("a.back")
    page.locator("#trajectory-table tbody tr").first.wait_for()
    assert page.locator("#trajectory-table tbody tr").count() == 3
    tab.close()
