"""Per-trajectory databases: isolation, read-after-write, forks and crash-resume."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from dialogforge.sqltools import (
    SqlDomain,
    SqlWrite,
    TrajectoryDatabase,
    WriteReplayError,
    execute_tool,
    load_sql_domain,
    remove_copy,
)
from dialogforge.sqltools.build import build_example
from dialogforge.sqltools.copies import copy_path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def domain(tmp_path: Path) -> SqlDomain:
    db = build_example("bookstore", tmp_path / "src")
    return load_sql_domain(db, tmp_path / "src" / "bookstore.tools.json")


def stock(db: TrajectoryDatabase, domain: SqlDomain, book_id: int) -> int:
    outcome = execute_tool(db, domain.tool("get_book"), {"book_id": book_id})
    assert not outcome.is_error, outcome.error
    return outcome.result[0]["stock"]


def address(db: TrajectoryDatabase, domain: SqlDomain, order_id: int = 1004) -> str:
    orders = execute_tool(db, domain.tool("search_orders"), {"customer_id": 1}).result
    return next(o["shipping_address"] for o in orders if o["order_id"] == order_id)


def change_address(db: TrajectoryDatabase, domain: SqlDomain, text: str) -> SqlWrite:
    outcome = execute_tool(db, domain.tool("update_order_shipping_address"), {"order_id": 1004, "shipping_address": text})
    assert outcome.result == {"rows_affected": 1, "last_row_id": None} and outcome.write is not None
    return outcome.write


def test_read_after_write_within_a_trajectory(domain: SqlDomain, tmp_path: Path) -> None:
    with domain.open_trajectory(tmp_path / "work", "t1", []) as db:
        before = stock(db, domain, 11)
        created = execute_tool(db, domain.tool("create_order"), {
            "customer_id": 2, "shipping_address": "Praterstrasse 22/4, 1020 Vienna", "placed_at": "2026-01-15 10:00:00"})
        order_id = created.result["last_row_id"]
        added = execute_tool(db, domain.tool("create_order_item"), {"order_id": order_id, "book_id": 11, "quantity": 2})
        assert added.result["rows_affected"] == 1
        assert stock(db, domain, 11) == before - 2  # the schema's trigger reserved the copies
        lines = execute_tool(db, domain.tool("get_order_items"), {"order_id": order_id}).result
        assert [(line["book_id"], line["quantity"]) for line in lines] == [(11, 2)]
        log = [created.write, added.write]
    with domain.open_trajectory(tmp_path / "work", "t1", log) as again:
        assert not again.rebuilt and again.applied == 2
        assert stock(again, domain, 11) == before - 2


def test_two_trajectories_and_the_source_are_isolated(domain: SqlDomain, tmp_path: Path) -> None:
    source_hash = sha256(domain.db_path)
    with domain.open_trajectory(tmp_path / "work", "a", []) as a, domain.open_trajectory(tmp_path / "work", "b", []) as b:
        change_address(a, domain, "1 Trajectory A Street, Leeds")
        assert address(a, domain) == "1 Trajectory A Street, Leeds"
        assert address(b, domain) == "14 Hyde Park Road, Leeds LS6 1AB"
        change_address(b, domain, "2 Trajectory B Road, York")
        assert address(a, domain) == "1 Trajectory A Street, Leeds"
    assert sha256(domain.db_path) == source_hash
    with domain.open_trajectory(tmp_path / "work", "fresh", []) as fresh:
        assert address(fresh, domain) == "14 Hyde Park Road, Leeds LS6 1AB"


def test_a_fork_with_a_shorter_log_is_rebuilt_and_isolated(domain: SqlDomain, tmp_path: Path) -> None:
    work = tmp_path / "work"
    with domain.open_trajectory(work, "main", []) as db:
        first = change_address(db, domain, "First Address 1, Leeds")
        second = change_address(db, domain, "Second Address 2, Leeds")
    # A fork from the checkpoint after the first write, in another thread ...
    with domain.open_trajectory(work, "fork", [first]) as fork:
        assert fork.rebuilt and address(fork, domain) == "First Address 1, Leeds"
        change_address(fork, domain, "Fork Address 3, Leeds")
    # ... or in the same thread (time travel): the copy is ahead of the log.
    with domain.open_trajectory(work, "main", [first]) as back:
        assert back.rebuilt and back.applied == 1
        assert address(back, domain) == "First Address 1, Leeds"
    with domain.open_trajectory(work, "main", [first, second]) as forward:
        assert not forward.rebuilt and forward.applied == 2  # extended, not rebuilt
        assert address(forward, domain) == "Second Address 2, Leeds"
    with domain.open_trajectory(work, "fork", [first]) as fork_again:
        assert address(fork_again, domain) == "First Address 1, Leeds"  # its own write never logged


def test_a_diverging_branch_of_equal_length_is_rebuilt(domain: SqlDomain, tmp_path: Path) -> None:
    work = tmp_path / "work"
    with domain.open_trajectory(work, "k", []) as db:
        change_address(db, domain, "Branch One 1, Leeds")
    other = SqlWrite(tool="update_order_shipping_address", arguments={"order_id": 1004, "shipping_address": "Branch Two 2, Leeds"})
    with domain.open_trajectory(work, "k", [other]) as db:
        assert db.rebuilt and address(db, domain) == "Branch Two 2, Leeds"


def test_crash_between_write_and_checkpoint_is_undone(domain: SqlDomain, tmp_path: Path) -> None:
    """The copy committed a write the saved state never logged: resuming drops it."""
    with domain.open_trajectory(tmp_path / "work", "k", []) as db:
        change_address(db, domain, "Lost In The Crash 9, Leeds")
    with domain.open_trajectory(tmp_path / "work", "k", []) as resumed:
        assert resumed.rebuilt and address(resumed, domain) == "14 Hyde Park Road, Leeds LS6 1AB"


def test_a_write_that_changes_nothing_is_not_logged(domain: SqlDomain, tmp_path: Path) -> None:
    with domain.open_trajectory(tmp_path / "work", "k", []) as db:
        outcome = execute_tool(db, domain.tool("update_order_shipping_address"), {"order_id": 1001, "shipping_address": "Shipped Already 1"})
        assert outcome.result == {"rows_affected": 0, "last_row_id": None}
        assert outcome.write is None and db.applied == 0


def test_a_changed_source_forces_a_rebuild(domain: SqlDomain, tmp_path: Path) -> None:
    with domain.open_trajectory(tmp_path / "work", "k", []) as db:
        assert db.rebuilt
    with domain.open_trajectory(tmp_path / "work", "k", []) as db:
        assert not db.rebuilt
    conn = sqlite3.connect(domain.db_path)
    conn.execute("UPDATE books SET stock = 99 WHERE book_id = 1")
    conn.commit()
    conn.close()
    with domain.open_trajectory(tmp_path / "work", "k", []) as db:
        assert db.rebuilt and stock(db, domain, 1) == 99


def test_a_corrupt_copy_is_replaced(domain: SqlDomain, tmp_path: Path) -> None:
    path = copy_path(tmp_path / "work", "k")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with domain.open_trajectory(tmp_path / "work", "k", []) as db:
        assert db.rebuilt and stock(db, domain, 1) == 7


def test_replaying_an_unknown_tool_fails_loudly(domain: SqlDomain, tmp_path: Path) -> None:
    bogus = SqlWrite(tool="delete_everything", arguments={})
    with pytest.raises(WriteReplayError, match="write #1 uses tool 'delete_everything', which has no write statement"):
        domain.open_trajectory(tmp_path / "work", "k", [bogus])


def test_keys_cannot_escape_the_workdir(domain: SqlDomain, tmp_path: Path) -> None:
    work = tmp_path / "work"
    with domain.open_trajectory(work, "../../etc/evil", []) as db:
        assert db.path.parent == work and db.path.name.startswith("key-")
    remove_copy(work, "../../etc/evil")
    assert not db.path.exists()


def test_the_bookkeeping_table_is_out_of_reach_of_tools(domain: SqlDomain, tmp_path: Path) -> None:
    from dialogforge.records import FunctionSpec, SqlBinding, SqlKind, ToolSpec

    spy = ToolSpec(
        function=FunctionSpec(name="search_replay"),
        sql=SqlBinding(kind=SqlKind.SELECT, statement="SELECT * FROM _dialogforge_replay"),
    )
    with TrajectoryDatabase.open(domain.db_path, tmp_path / "work", "k", [], tools=[*domain.tools, spy]) as db:
        outcome = execute_tool(db, spy, {})
    assert outcome.is_error and "prohibited" in outcome.error


def test_replaying_the_log_reproduces_the_content_exactly(domain: SqlDomain, tmp_path: Path) -> None:
    work = tmp_path / "work"
    calls = [
        ("create_order", {"customer_id": 4, "shipping_address": "Calle Feria 41, 41003 Sevilla", "placed_at": "2026-01-15 09:30:00"}),
        ("create_order_item", {"order_id": 1011, "book_id": 3, "quantity": 2}),
        ("create_order_item", {"order_id": 1011, "book_id": 15, "quantity": 1}),
        ("update_order_shipping_address", {"order_id": 1011, "shipping_address": "a\x00b'; DROP TABLE books; -- ✓"}),
        ("delete_order_item", {"order_id": 1011, "book_id": 3}),
        ("update_order_status", {"order_id": 1006, "status": "cancelled"}),
    ]
    with domain.open_trajectory(work, "original", []) as db:
        log = []
        for name, args in calls:
            outcome = execute_tool(db, domain.tool(name), args)
            assert outcome.write is not None, (name, outcome)
            log.append(outcome.write)
        original = dump(db.path)
    restored_log = [SqlWrite.model_validate_json(w.model_dump_json()) for w in log]  # as a checkpoint returns it
    with domain.open_trajectory(work, "replayed", restored_log) as db:
        assert db.rebuilt and db.applied == len(calls)
        assert dump(db.path) == original


def dump(path: Path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_dialogforge%' ORDER BY name")]
        return [(t, conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()) for t in tables]
    finally:
        conn.close()


def test_a_missing_source_is_a_domain_error(tmp_path: Path) -> None:
    from dialogforge.sqltools import SqlDomainError

    with pytest.raises(SqlDomainError, match="database not found"):
        TrajectoryDatabase.open(tmp_path / "gone.sqlite", tmp_path / "w", "k", [], tools=[])


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_copy_from_the_source_image_is_the_copy_made_the_direct_way(domain: SqlDomain, tmp_path: Path, monkeypatch) -> None:
    """Fresh copies come from an in-memory image of the source (one backup, one commit); a source
    over the image limit is copied the direct way. Both give the same database, record included,
    and a changed source a new image."""
    from dialogforge.sqltools import images

    with domain.open_trajectory(tmp_path / "image", "t1", []) as db:
        assert db.rebuilt and stock(db, domain, 11) > 0
    monkeypatch.setattr(images, "IMAGE_MAX_BYTES", 0)
    images._images.clear()
    with domain.open_trajectory(tmp_path / "direct", "t1", []) as db:
        assert db.rebuilt and stock(db, domain, 11) > 0
    assert not images._images  # too big for an image: none made
    image_copy, direct_copy = copy_path(tmp_path / "image", "t1"), copy_path(tmp_path / "direct", "t1")
    assert _dump(image_copy) == _dump(direct_copy) and "_dialogforge_replay" in "".join(_dump(image_copy))
    monkeypatch.undo()

    with sqlite3.connect(domain.db_path) as conn:  # the source changes: its digest, so its image, too
        conn.execute("UPDATE books SET stock = 777 WHERE book_id = 11")
    conn.close()
    with domain.open_trajectory(tmp_path / "image", "t2", []) as db:
        assert stock(db, domain, 11) == 777
    with domain.open_trajectory(tmp_path / "image", "t1", []) as db:  # the old copy's record names the old source
        assert db.rebuilt and stock(db, domain, 11) == 777


def test_source_images_are_bounded_and_a_dropped_one_is_made_again(tmp_path: Path) -> None:
    from dialogforge.sqltools import images

    images._images.clear()
    domains = []
    for k in range(images._IMAGES + 2):
        db = build_example("bookstore", tmp_path / f"src{k}")
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE books SET stock = ? WHERE book_id = 11", (100 + k,))
        conn.close()
        domains.append(load_sql_domain(db, tmp_path / f"src{k}" / "bookstore.tools.json"))
    for k, each in enumerate(domains):
        with each.open_trajectory(tmp_path / "work", f"t{k}", []) as db:
            assert stock(db, each, 11) == 100 + k
    assert len(images._images) == images._IMAGES
    with domains[0].open_trajectory(tmp_path / "work", "again", []) as db:  # its image was dropped: made again
        assert stock(db, domains[0], 11) == 100
