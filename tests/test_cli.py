"""The command line as a user runs it: output, exit codes, one-line errors."""

from dialogforge.cli.main import command_modules


def test_generate_list_show(tmp_path, run_cli):
    db = tmp_path / "run.db"
    gen = run_cli("generate", "--backend", "scripted", "--mode", "user", "--n", "3", "--seed", "4", "--db", str(db))
    assert gen.code == 0, gen.err
    assert "3 done, 0 failed" in gen.out
    listed = run_cli("list", "--db", str(db), "--json")
    assert listed.code == 0
    rows = listed.json()
    assert len(rows) == 3
    for row in rows:
        assert {"thread_id", "mode", "status", "stop_reason", "user_turns", "messages", "tool_calls", "tasks"} <= set(row)
        assert row["status"] == "done" and row["mode"] == "user" and row["messages"] > 0
    shown = run_cli("show", rows[0]["thread_id"], "--db", str(db), "--reasoning")
    assert shown.code == 0
    assert "USER:" in shown.out and "ASSISTANT:" in shown.out and "(thinking)" in shown.out


def test_generate_with_bfcl_seed_tools(tmp_path, run_cli, bfcl_dir):
    db = tmp_path / "run.db"
    gen = run_cli("generate", "--backend", "scripted", "--n", "2", "--db", str(db),
                  "--tools", str(bfcl_dir / "func_doc" / "ticket_api.jsonl"), "--domain", "IT support tickets")
    assert gen.code == 0, gen.err
    shown = run_cli("show", run_cli("list", "--db", str(db), "--json").json()[0]["thread_id"], "--db", str(db))
    assert "close_ticket" in shown.out


def _one_line_error(result, *needles):
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_backend(tmp_path, run_cli):
    db = tmp_path / "run.db"
    _one_line_error(run_cli("generate", "--backend", "gpt9", "--db", str(db)), "gpt9")
    assert not db.exists()


def test_malformed_tools_file(tmp_path, run_cli):
    db, tools = tmp_path / "run.db", tmp_path / "tools.json"
    tools.write_text("[{\"name\": ")
    _one_line_error(run_cli("generate", "--backend", "scripted", "--db", str(db), "--tools", str(tools)), str(tools), "not valid JSON")
    assert not db.exists()


def test_unwritable_db_path(run_cli):
    # /sys refuses new files even to root, unlike a chmod-ed directory.
    _one_line_error(run_cli("generate", "--backend", "scripted", "--db", "/sys/run.db"), "/sys is not writable")


def test_db_in_a_missing_directory(tmp_path, run_cli):
    db = tmp_path / "nope" / "run.db"
    _one_line_error(run_cli("generate", "--backend", "scripted", "--db", str(db)), "does not exist")
    assert not db.parent.exists()


def test_a_database_that_is_not_ours_is_refused_and_untouched(tmp_path, run_cli):
    import sqlite3

    db = tmp_path / "theirs.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    _one_line_error(run_cli("generate", "--backend", "scripted", "--db", str(db)), "not a dialogforge database")
    _one_line_error(run_cli("list", "--db", str(db)), "not a dialogforge database")
    assert db.read_bytes() == before


def test_not_a_sqlite_file(tmp_path, run_cli):
    db = tmp_path / "notes.db"
    db.write_text("hello")
    _one_line_error(run_cli("list", "--db", str(db)), "not a SQLite database")
    assert db.read_text() == "hello"


def test_unknown_thread(tmp_path, run_cli):
    db = tmp_path / "run.db"
    assert run_cli("generate", "--backend", "scripted", "--n", "1", "--db", str(db)).code == 0
    _one_line_error(run_cli("show", "nope-00000", "--db", str(db)), "no trajectory 'nope-00000'")


def test_every_command_has_help_with_an_example(run_cli):
    for module in command_modules():
        name = module.__name__.split(".")[-1].removesuffix("_cmd")
        result = run_cli(*name.split("_"), "--help")
        assert result.code == 0, (name, result.err)
        assert "Example" in result.out, name


def test_a_gguf_that_is_not_one_is_one_line_and_writes_nothing(tmp_path, run_cli):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    db = tmp_path / "run.db"
    result = run_cli("generate", "--n", "1", "--db", str(db), "--gguf", str(fake))
    assert result.code == 2
    assert result.err.strip() == f"dialogforge: error: {fake} is not a GGUF file"
    assert not list(tmp_path.glob("run.db*"))
