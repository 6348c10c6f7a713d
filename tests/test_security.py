"""Nothing secret gets out, nothing crafted gets in.

* A recognisable fake API key (``OPENAI_API_KEY`` and a config-named key
  variable) is used by generate, validate, export, stats, fork, list, show
  and history through the stub server; every byte written under the test's
  directory (SQLite files and their journals, exports, manifests, reports)
  and every byte printed must be free of it.
* Crafted checkpoint rows (our ``cp_*`` tables) naming ``os.system``,
  ``subprocess.Popen``, an importable canary module, a method call, or the
  ``json``/``pickle`` encodings we never write: loading them (show,
  history, export, resume) neither imports nor calls anything and fails
  with one line, exit 2.
* A lone surrogate in a tool call's arguments is kept exactly (not as "?").
* The viewer's XSS and the SQL mode's injection cases run under the
  ``security`` marker with these (``python -m pytest -m security``; see
  tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import sys
from pathlib import Path

import ormsgpack
import pytest
from langchain_core.messages import AIMessage

from dialogforge.checkpoints.encoding import pack_typed
from dialogforge.runs.history import history
from dialogforge.runs.reading import load_state
from dialogforge.runs.resume import resume_run
from dialogforge.dataset.export import export
from dialogforge.errors import StoreError
from dialogforge.testing.scripted_model import ScriptedChatModel
from dialogforge.testing.stub_server import StubServer
from tests.support.checkpoints import manifest_rows, small_run

pytestmark = pytest.mark.security

FAKE_KEY = "sk-dfcanary-9f3b2c71e4a8d6050b1e"
CONFIG_KEY = "cfg-dfcanary-77d1a0c9b3e5f2486a"


def _every_byte(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_no_api_key_in_anything_written_or_printed(tmp_path, run_cli):
    config = tmp_path / "models.toml"
    config.write_text("[models.default]\nbackend = \"openai\"\n\n[models.roles.judge]\napi_key_env = \"DF_JUDGE_KEY\"\n")
    env = {"OPENAI_API_KEY": FAKE_KEY, "DF_JUDGE_KEY": CONFIG_KEY}
    db = tmp_path / "run.db"
    printed = []
    with StubServer(lambda request: ScriptedChatModel()) as server:
        base = ["--config", str(config), "--base-url", server.base_url]
        steps = [
            ["generate", *base, "--db", str(db), "--n", "3", "--seed", "2", "--max-turns", "3", "--max-tasks", "1",
             "--progress", "plain", "--progress-interval", "0.1"],
            ["validate", *base, "--db", str(db), "--judge"],
            ["export", "--db", str(db), "--format", "sharegpt", "--out", str(tmp_path / "out" / "train.jsonl"), "--with-reasoning"],
            ["export", "--db", str(db), "--format", "hf", "--out", str(tmp_path / "out" / "hf")],
            ["stats", "--db", str(db), "--report", str(tmp_path / "report")],
            ["config", "--show", *base],
        ]
        (tmp_path / "out").mkdir()
        for step in steps:
            result = run_cli(*step, env=env)
            assert result.code == 0, (step[0], result.err[-2000:])
            printed += [result.out, result.err]
        thread = manifest_rows(db)[0]["thread_id"]
        point = next(e.checkpoint_id for e in history(db, thread) if e.next and e.step >= 1)
        for step in (["fork", thread, "--db", str(db), "--checkpoint", point, "--n", "2", *base],
                     ["list", "--db", str(db)], ["show", thread, "--db", str(db), "--reasoning"],
                     ["history", thread, "--db", str(db), "--json"]):
            result = run_cli(*step, env=env)
            assert result.code == 0, (step[0], result.err[-2000:])
            printed += [result.out, result.err]
        calls = server.stats()["calls"]
    assert calls > 20, "the commands really talked to the endpoint (with the key)"
    assert "set (masked)" in "".join(printed), "config --show saw the keys (and masked them)"
    written = _every_byte(tmp_path)
    assert any(p.endswith("run.db") for p in written) and any("hf" in p for p in written)
    for secret in (FAKE_KEY, CONFIG_KEY):
        for needle in (secret.encode(), secret.encode("utf-16-le"), secret[3:19].encode()):
            leaks = [p for p, data in written.items() if needle in data]
            assert not leaks, f"{secret} written to {leaks}"
        assert not [text for text in printed if secret[3:19] in text]


# --- crafted checkpoint rows ---------------------------------------------------

CANARY_MODULE = '''
import os, pathlib
pathlib.Path(os.environ["DF_CANARY_MARK"] + ".imported").touch()
class Boom:
    def __init__(self, *args, **kwargs):
        pathlib.Path(os.environ["DF_CANARY_MARK"] + ".called").touch()
'''


def _ext(code: int, *fields) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, ormsgpack.packb(list(fields)))


def _payloads(mark: str) -> dict[str, tuple[str, bytes]]:
    """LangGraph's msgpack ext codes: 0 constructor(arg), 1 constructor(*args), 2 constructor(**kw),
    3 method call, 5 pydantic model; plus the two encodings our saver never writes."""
    return {
        "os.system": ("msgpack", ormsgpack.packb(_ext(0, "os", "system", f"touch {mark}.system"))),
        "subprocess.Popen": ("msgpack", ormsgpack.packb(_ext(1, "subprocess", "Popen", [["touch", f"{mark}.popen"]]))),
        "canary kwargs": ("msgpack", ormsgpack.packb({"domain": _ext(2, "df_canary", "Boom", {"a": 1})})),
        "method call": ("msgpack", ormsgpack.packb(_ext(3, "os", "system", f"touch {mark}.method", "__call__"))),
        "canary pydantic": ("msgpack", ormsgpack.packb(_ext(5, "df_canary", "Boom", {"a": 1}, "model_validate_json"))),
        "json constructor": ("json", json.dumps({"lc": 1, "type": "constructor", "id": ["df_canary", "Boom"], "kwargs": {}}).encode()),
        "pickle": ("pickle", pickle.dumps(os.system)),
    }


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("clean") / "run.db"
    return db, small_run(db, n=1, max_turns=3, max_tasks=1)[0]


@pytest.fixture
def canary(tmp_path, monkeypatch) -> Path:
    """An importable module that leaves a mark when imported or called; marks also for os.system & co."""
    home = tmp_path / "canary"
    home.mkdir()
    (home / "df_canary.py").write_text(CANARY_MODULE)
    monkeypatch.syspath_prepend(str(home))
    monkeypatch.setenv("DF_CANARY_MARK", str(home / "mark"))
    monkeypatch.setenv("PYTHONPATH", f"{home}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return home


def _tamper(clean: Path, target: Path, type_name: str, payload: bytes, *, running: bool) -> None:
    """Every stored full value of the ``scenario`` channel replaced by the payload."""
    shutil.copy(clean, target)
    conn = sqlite3.connect(target)
    channel = conn.execute("SELECT id FROM cp_names WHERE kind = 1 AND name = 'scenario'").fetchone()[0]
    changed = conn.execute("UPDATE cp_blobs SET data = ? WHERE channel = ? AND kind = 0",
                           (pack_typed(type_name, payload, compress=False), channel)).rowcount
    assert changed >= 1
    if running:  # so resume loads it
        conn.execute("UPDATE runs SET status = 'running', stop_reason = NULL")
    conn.commit()
    conn.close()


def _load_with(what: str, db: Path, thread: str, tmp_path: Path) -> None:
    if what == "show":
        load_state(db, thread)
    elif what == "history":
        history(db, thread)
    elif what == "export":
        export(db, tmp_path / "out.jsonl", "openai")
    else:
        resume_run(db)


@pytest.mark.parametrize("loader", ["show", "history", "export", "resume"])
@pytest.mark.parametrize("payload", list(_payloads("x")), ids=str)
def test_a_crafted_checkpoint_row_neither_imports_nor_calls(tmp_path, clean_db, canary, payload, loader):
    clean, thread = clean_db
    db = tmp_path / "crafted.db"
    type_name, data = _payloads(str(canary / "mark"))[payload]
    _tamper(clean, db, type_name, data, running=loader == "resume")
    with pytest.raises(StoreError, match="refusing to load it"):
        _load_with(loader, db, thread, tmp_path)
    assert "df_canary" not in sys.modules
    assert sorted(p.name for p in canary.iterdir() if p.name != "__pycache__") == ["df_canary.py"], "something ran"
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("command", ["show", "resume"])  # history and export: in-process above
def test_the_cli_refuses_a_crafted_row_with_one_line(tmp_path, clean_db, canary, run_cli, command):
    clean, thread = clean_db
    db = tmp_path / "crafted.db"
    type_name, data = _payloads(str(canary / "mark"))["subprocess.Popen"]
    _tamper(clean, db, type_name, data, running=command == "resume")
    args = {"show": ["show", thread], "history": ["history", thread],
            "export": ["export", "--format", "openai", "--out", str(tmp_path / "out.jsonl")], "resume": ["resume", "--quiet"]}[command]
    result = run_cli(*args, "--db", str(db), env={"PYTHONPATH": os.environ["PYTHONPATH"]})
    assert result.code == 2, result.err[-2000:]
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "names subprocess.Popen" in lines[0] and "refusing to load it" in lines[0], lines
    assert sorted(p.name for p in canary.iterdir() if p.name != "__pycache__") == ["df_canary.py"]


# --- a lone surrogate in tool arguments ------------------------------------------


class SurrogateArguments(ScriptedChatModel):
    """The scripted agent, but the first tool call of each request has a first string argument ending in a lone surrogate."""

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        result = await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        reply = result.generations[0].message
        if kwargs.get("tools") and not kwargs.get("response_format") and reply.tool_calls \
                and not any(m.type == "tool" for m in messages):
            call = reply.tool_calls[0]
            key = next((k for k, v in call["args"].items() if isinstance(v, str)), "note")
            call["args"] = {**call["args"], key: str(call["args"].get(key, "")) + "\ud800"}
            result.generations[0].message = AIMessage(content=reply.content, tool_calls=[call, *reply.tool_calls[1:]],
                                                      additional_kwargs=reply.additional_kwargs)
        return result


def test_a_lone_surrogate_in_tool_arguments_is_kept_exactly(tmp_path):
    from dialogforge.config import GenerationSettings, ModelConfig, ModelsConfig
    from dialogforge.runs.generate import generate
    from dialogforge.records import Limits

    db = tmp_path / "run.db"
    with StubServer(lambda request: SurrogateArguments()) as server:
        models = ModelsConfig(default=ModelConfig(backend="openai", base_url=server.base_url))
        generate(db, GenerationSettings(n=1, seed=3, concurrency=1, limits=Limits(max_tasks=1, max_user_turns=2)), models)
    (row,) = manifest_rows(db)
    state = load_state(db, row["thread_id"])
    calls = [c for m in state.messages for c in m.tool_calls if c.raw_arguments and "\\ud800" in c.raw_arguments]
    assert calls, [c for m in state.messages for c in m.tool_calls]
    assert "?" not in json.loads(calls[0].raw_arguments)[next(iter(json.loads(calls[0].raw_arguments)))][-1:]
    answer = next(m for m in state.messages if m.role == "tool" and m.tool_call_id == calls[0].id)
    assert answer.is_error and "not valid Unicode text" in answer.content
    out = tmp_path / "train.jsonl"
    export(db, out, "openai")
    assert "\\ud800" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("ext", [
    (5, b"\x01"),  # not msgpack inside
    (5, "short tuple"),  # a pydantic extension without module, name, fields
    (9, b""),  # an extension code LangGraph never writes
    (6, b""),  # numpy arrays: never ours
], ids=["garbage", "short", "unknown code", "numpy"])
def test_a_malformed_or_foreign_extension_is_refused_in_one_line(ext):
    import ormsgpack

    from dialogforge.checkpoints.serde import UnsafeCheckpointError, strict_serializer

    code, payload = ext
    if payload == "short tuple":
        payload = ormsgpack.packb(["dialogforge.records"])
    with pytest.raises(UnsafeCheckpointError, match="refusing to load it"):
        strict_serializer().loads_typed(("msgpack", ormsgpack.packb(ormsgpack.Ext(code, payload))))
