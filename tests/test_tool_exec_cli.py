"""``dialogforge generate --tool-exec sql`` as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import sys
import subprocess
from pathlib import Path

import pytest

from dialogforge.runs.reading import load_state
from dialogforge.cli.main import main
from tests.support.paths import REPO
from tests.support.sql import build_notes_domain, sha256


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example databases, built by the project's own script."""
    out = tmp_path_factory.mktemp("examples")
    proc = subprocess.run([sys.executable, "-m", "dialogforge.cli.build_example_dbs", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_generate_with_sql_tools_lists_and_counts_them_apart(run_cli, examples: Path, tmp_path: Path) -> None:
    source = examples / "bookstore.sqlite"
    source_hash = sha256(source)
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--tool-exec", "sql", "--domain-db", str(source), "--n", "3", "--db", str(db))
    assert result.code == 0, result.err
    assert "3 done, 0 failed" in result.out
    listed = run_cli("list", "--db", str(db), "--json")
    assert listed.code == 0 and len(listed.json()) == 3
    assert {row["tool_exec"] for row in listed.json()} == {"sql"}

    simulated = run_cli("generate", "--backend", "scripted", "--n", "2", "--db", str(db))
    assert simulated.code == 0, simulated.err
    rows = run_cli("list", "--db", str(db), "--json").json()
    assert sorted(row["tool_exec"] for row in rows) == ["simulated"] * 2 + ["sql"] * 3
    stats = run_cli("stats", "--db", str(db), "--json")
    assert stats.code == 0, stats.err
    groups = {(g["mode"], g["source"]): g["samples"] for g in stats.json()["table1"]}
    assert groups[("user", "sql")] == 3 and sum(groups.values()) == 5  # Tool-Exec is its own row
    assert sha256(source) == source_hash


def test_domain_db_alone_implies_sql_and_a_missing_tools_file_means_drafted_tools(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = build_notes_domain(tmp_path / "domain")
    (tmp_path / "domain" / "notes.tools.json").unlink()
    db = tmp_path / "run.db"
    assert main(["generate", "--backend", "scripted", "--domain-db", str(source), "--n", "1", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["list", "--db", str(db), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["tool_exec"] == "sql" and row["status"] == "done"
    tools = {t.name for t in load_state(db, row["thread_id"]).tools}
    assert {"get_note", "search_notes", "create_note", "update_note", "delete_note"} <= tools  # drafted from the schema


def _bad_tools(directory: Path, statement: str) -> Path:
    tools = json.loads((directory / "notes.tools.json").read_text())
    tools[0]["sql"]["statement"] = statement
    path = directory / "evil.tools.json"
    path.write_text(json.dumps(tools))
    return path


BAD_DOMAINS = {
    "not sqlite": (lambda d: ["--domain-db", str(_text_file(d))], "not a usable SQLite database"),
    "missing": (lambda d: ["--domain-db", str(d / "nope.sqlite")], "database not found"),
    "attach template": (lambda d: ["--domain-db", str(build_notes_domain(d)),
                                   "--domain-tools", str(_bad_tools(d, "ATTACH DATABASE 'x.db' AS x"))], "search_notes"),
    "two statements": (lambda d: ["--domain-db", str(build_notes_domain(d)),
                                  "--domain-tools", str(_bad_tools(d, "SELECT 1; DROP TABLE notes"))], "search_notes"),
    "tools not json": (lambda d: ["--domain-db", str(build_notes_domain(d)), "--domain-tools", str(_text_file(d))], "not JSON"),
    "sql without a database": (lambda d: ["--tool-exec", "sql"], "needs --domain-db"),
    "sql with seed tools": (lambda d: ["--domain-db", str(build_notes_domain(d)), "--tools", str(d / "notes.tools.json")], "not --tools"),
}


def _text_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "notes.txt"
    path.write_text("these are not the tables you are looking for\n")
    return path


@pytest.mark.parametrize("case", sorted(BAD_DOMAINS))
def test_a_bad_domain_is_one_line_exit_2_and_nothing_written(tmp_path: Path, case: str, capsys: pytest.CaptureFixture) -> None:
    """In-process through the CLI's own entry point (``dialogforge.cli.main.main``), for speed;
    the subprocess test below covers the same edge as a user meets it."""
    make_args, message = BAD_DOMAINS[case]
    args = make_args(tmp_path / "domain")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main(["generate", "--backend", "scripted", "--n", "2", "--db", str(tmp_path / "run.db"), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dialogforge: error:") and message in lines[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no run.db, no .worlds, nothing


def test_a_bad_domain_from_a_real_process(run_cli, tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    result = run_cli("generate", "--backend", "scripted", "--tool-exec", "sql", "--domain-db", str(_text_file(tmp_path)), "--db", str(db))
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == f"dialogforge: error: --domain-db {tmp_path / 'notes.txt'}: not a usable SQLite database: " \
                                 f"{tmp_path / 'notes.txt'} (file is not a database)"
    assert not db.exists() and not Path(f"{db}.worlds").exists()
