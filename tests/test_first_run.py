"""A first run shows what it made: a small generate prints one dialogue and writes it as one HTML file;
the README's main command names files that exist."""

from __future__ import annotations

import re

from dialogforge.inputs.seed_tools import load_tools_file
from tests.support.paths import REPO


def test_a_small_run_ends_with_a_dialogue_and_its_html_view(run_cli, tmp_path):
    db = tmp_path / "demo.db"
    result = run_cli("generate", "--backend", "scripted", "--n", "2", "--seed", "1", "--max-turns", "3",
                     "--max-tasks", "1", "--db", str(db), "--quiet")
    assert result.code == 0, result.err
    shown = re.search(r"--- trajectory (\S+) \((done|failed)\) ---\n(.*?)\n---\n", result.out, re.DOTALL)
    assert shown, result.out
    thread, dialogue = shown.group(1), shown.group(3)
    assert "     USER: " in dialogue and "ASSISTANT: " in dialogue and "=== task 1:" in dialogue
    path = re.search(r"HTML view of it \(one file, opens offline in any browser\): (\S+)", result.out).group(1)
    html = (tmp_path / f"demo-{thread}.html")
    assert path == str(html) and html.read_text().startswith("<!doctype html>")
    assert result.out.rstrip().splitlines()[-1].startswith("next: dialogforge list")


def test_no_show_and_large_runs_print_only_the_summary(run_cli, tmp_path):
    for args in (("--n", "1", "--no-show"), ("--n", "4")):
        db = tmp_path / f"run{len(args)}.db"
        result = run_cli("generate", "--backend", "scripted", *args, "--max-turns", "3", "--db", str(db), "--quiet")
        assert result.code == 0 and "--- trajectory" not in result.out and "HTML view" not in result.out
        assert not list(tmp_path.glob(f"run{len(args)}-*.html"))


def test_the_readme_main_command_uses_files_of_the_checkout():
    readme = (REPO / "README.md").read_text()
    command = next(line.strip() for line in readme.splitlines() if "pip install -e '.[local]' && dialogforge generate" in line)
    tools = re.search(r"--tools (\S+)", command).group(1)
    assert len(load_tools_file(REPO / tools)) >= 2
    assert all(t.result_schema.get("properties") for t in load_tools_file(REPO / tools))  # so nothing is synthesized
