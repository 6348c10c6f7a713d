"""The bad-input corpus (tests/bad_inputs/): every malformed input is refused cleanly.

Each case of ``tests/bad_inputs/cases.toml`` runs the real CLI on one
malformed config, tool file, conversation file, seed file, flag or
database. A user must get one line naming the file (or flag) and the
problem, exit code 2, and nothing written: no database created, none
modified, no output file, no side file beside an input.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tomllib
from pathlib import Path

import pytest

from tests.support.checkpoints import small_run
from tests.support.mcp_servers import server_command

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]


@pytest.fixture(scope="module")
def good_db(tmp_path_factory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("good") / "good.db"
    threads = small_run(db, n=2, max_turns=3, max_tasks=1)
    return db, threads[0]


def _prepare_inputs(root: Path, good: Path) -> Path:
    """The corpus copied under ``root``, with its databases built and damaged."""
    inputs = root / "in"
    shutil.copytree(CORPUS, inputs)
    for script in inputs.glob("*.sql"):
        conn = sqlite3.connect(script.with_suffix(".db"))
        conn.executescript(script.read_text())
        conn.close()
    shutil.copy(good, inputs / "good.db")
    data = bytearray(good.read_bytes())
    damaged = data[:]
    for offset in range(4096, len(damaged), 512):  # keep the header, scramble every page after it
        damaged[offset : offset + 64] = bytes(range(64))
    (inputs / "corrupt_database.db").write_bytes(bytes(damaged))
    (inputs / "truncated_database.db").write_bytes(bytes(data[: len(data) // 2 + 100]))
    return inputs


def snapshot(*dirs: Path) -> dict[str, str]:
    """Every file under ``dirs`` and a digest of its bytes."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


class Outcome:
    def __init__(self, code: int, err: str):
        self.code, self.err = code, err


def run_in_process(args: list[str], capsys, monkeypatch) -> Outcome:
    """``dialogforge.cli.main.main`` in this process: the CLI minus interpreter start-up (2 s a case)."""
    from dialogforge.cli.main import main

    monkeypatch.setenv("DF_BAD_INPUT_ABSENT_KEY", "")
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    return Outcome(code, capsys.readouterr().err)


def check_case(case: dict, tmp_path: Path, good_db: tuple[Path, str], run) -> None:
    good, thread = good_db
    inputs = _prepare_inputs(tmp_path, good)
    out = tmp_path / "out"
    out.mkdir()
    places = {"in": str(inputs), "out": str(out), "good": str(inputs / "good.db"), "thread": thread,
              "records_server": server_command()}  # an MCP server of the tests' own (tests/support)
    args = [a.format(**places) for a in case["args"]]
    before = snapshot(inputs, out)

    result = run(args)

    lines = result.err.strip().splitlines()
    assert result.code == 2, (result.code, result.err[-2000:])
    assert len(lines) == 1, result.err[-2000:]
    assert lines[0].startswith("dialogforge"), lines[0]
    assert ": error: " in lines[0] and case["expect"] in lines[0], lines[0]
    assert snapshot(inputs, out) == before, "a refused input must leave every file as it was"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_bad_input_gives_one_line_exit_2_and_writes_nothing(case, tmp_path, good_db, capsys, monkeypatch):
    check_case(case, tmp_path, good_db, lambda args: run_in_process(args, capsys, monkeypatch))


# One case of each kind of input as a real process (start-up, exit code, stderr as a user sees them).
AS_PROCESS = ["config unknown key", "tools not JSON", "BFCL bad second line", "seed tools dir with a bad file", "judge role with an unknown backend",
              "conversation with an unknown role", "--n 0", "export a truncated database", "stats of a corrupt database",
              "generate into a database with another runs table", "tool library with a tool named against the rules",
              "tools check: a gap addition naming no tool",
              "MCP tool with an unknown key"]


def _subprocess_run(run_cli):  # the process runner
    return lambda args: run_cli(*args, env={"DF_BAD_INPUT_ABSENT_KEY": ""}, timeout=60)


@pytest.mark.parametrize("case", [c for c in CASES if c["name"] in AS_PROCESS], ids=lambda c: c["name"])
def test_a_bad_input_refused_by_the_cli_process(case, tmp_path, good_db, run_cli_process):
    check_case(case, tmp_path, good_db, _subprocess_run(run_cli_process))


@pytest.mark.soak
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_soak_every_bad_input_refused_by_the_cli_process(case, tmp_path, good_db, run_cli_process):
    check_case(case, tmp_path, good_db, _subprocess_run(run_cli_process))


def test_the_corpus_is_big_and_covers_every_kind_of_input():
    assert len(CASES) >= 30 and set(AS_PROCESS) <= {c["name"] for c in CASES}
    flags = {a for c in CASES for a in c["args"]}
    for flag in ("--config", "--tools", "--tools-dir", "--domains-file", "--personas-file", "--from-conversations",
                 "--tool-library"):
        assert flag in flags, flag
    used = {Path(a.replace("{in}/", "")).parts[0] for c in CASES for a in c["args"] if a.startswith("{in}/")}
    unused = {p.name for p in CORPUS.iterdir() if p.name != "cases.toml"} - used - {
        p.with_suffix(".sql").name for p in map(Path, used) if p.suffix == ".db"}
    assert not unused, f"corpus files no case uses: {sorted(unused)}"
