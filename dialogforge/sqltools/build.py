"""Building the example Tool-Exec databases from data the project ships.

Each example lives in ``examples/<name>/``: ``schema.sql`` (tables and
indexes), ``rows.json`` (``{table: [row, ...]}`` in load order), an optional
``triggers.sql`` applied after the rows (so loading seed rows does not fire
them), and ``tools.json``. Building is reproducible and idempotent: a
database whose bytes would not change is left untouched.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import sqlite3
from pathlib import Path

from dialogforge.sqltools.connect import quote_ident
from dialogforge.sqltools.domain import load_sql_domain
from dialogforge.sqltools.errors import SqlDomainError
from dialogforge.sqltools.sqltext import significant, tokenize

EXAMPLES_DIR = Path(__file__).parent / "examples"


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / "schema.sql").is_file())


def build_examples(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Build every example into ``out_dir`` (``<name>.sqlite`` + ``<name>.tools.json``)."""
    return [build_example(name, out_dir) for name in example_names()]


def build_example(name: str, out_dir: str | os.PathLike[str]) -> Path:
    """Build one example, check that its tools load, and return the database path."""
    source = EXAMPLES_DIR / name
    if not (source / "schema.sql").is_file():
        raise SqlDomainError(f"no example named {name!r}; available: {', '.join(example_names())}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    db_path, tools_path = out / f"{name}.sqlite", out / f"{name}.tools.json"
    staged = out / f".{name}.sqlite.building"
    staged.unlink(missing_ok=True)
    _build_db(source, staged)
    _replace_if_changed(staged, db_path)
    staged_tools = out / f".{name}.tools.json.building"
    shutil.copyfile(source / "tools.json", staged_tools)
    _replace_if_changed(staged_tools, tools_path)
    load_sql_domain(db_path, tools_path, name=name)  # refuse to ship an example that does not load
    return db_path


def _build_db(source: Path, target: Path) -> None:
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        _run_script(conn, source / "schema.sql")
        _load_rows(conn, json.loads((source / "rows.json").read_text(encoding="utf-8")))
        if (source / "triggers.sql").is_file():
            _run_script(conn, source / "triggers.sql")
        conn.execute("COMMIT")
    except sqlite3.Error as error:
        raise SqlDomainError(f"example {source.name!r} does not build: {error}") from error
    finally:
        conn.close()


def _run_script(conn: sqlite3.Connection, path: Path) -> None:
    """Run a script statement by statement, inside the caller's transaction
    (``executescript`` would commit it)."""
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if significant(tokenize(pending)):
        raise SqlDomainError(f"{path} ends with an incomplete statement")


def _load_rows(conn: sqlite3.Connection, tables: dict[str, list[dict]]) -> None:
    for table, rows in tables.items():
        for row in rows:
            columns = ", ".join(quote_ident(c) for c in row)
            marks = ", ".join("?" for _ in row)
            conn.execute(f"INSERT INTO {quote_ident(table)} ({columns}) VALUES ({marks})", list(row.values()))


def _replace_if_changed(staged: Path, target: Path) -> None:
    """Keep an identical existing file (and its mtime); otherwise swap atomically."""
    if target.is_file() and filecmp.cmp(staged, target, shallow=False):
        staged.unlink()
    else:
        os.replace(staged, target)
