"""The dataset card of an hf export: it loads with huggingface_hub's DatasetCard offline, carries the Hub
metadata from the run config, the recipe, Table 1 with a plot, validation counts and the limitations, and
`export --card-only` writes it again from the database without touching the data."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.support.paths import REPO

CONFIG = """
[models.default]
backend = "scripted"
[models.prices.default]
input = 0.5
output = 1.5
[generation]
license = "cc-by-4.0"
"""


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test here may reach the Hub: huggingface_hub is told to stay offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def exported(run_cli, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    db = tmp_path / "run.db"
    made = run_cli("generate", "--config", str(config), "--n", "5", "--seed", "6", "--language", "pt-BR",
                   "--personas", "2", "--max-turns", "12", "--max-tasks", "2", "--db", str(db), "--quiet", "--no-show")
    assert made.code == 0, made.err
    out = tmp_path / "hf"
    result = run_cli("export", "--db", str(db), "--format", "hf", "--out", str(out))
    assert result.code == 0, result.err
    return db, out


def load_card(out):
    from huggingface_hub import DatasetCard

    return DatasetCard.load(out / "README.md")


def test_the_card_loads_offline_with_the_hub_metadata(exported, tmp_path):
    db, out = exported
    card = load_card(out)
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0"  # from the run config
    assert data["language"] == ["pt"] and data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["text-generation"] and "synthetic" in data["tags"]
    assert data["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}]
    import datasets

    exported = json.loads((out / "dialogforge_manifest.json").read_text())["counts"]["exported"]
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == exported >= 3  # load_dataset follows the configs entry
    assert card.text.startswith(f"# dialogforge multi-turn tool-use dialogues\n\n{exported} synthetic conversations")


def test_the_card_says_how_it_was_made_and_what_it_measures(exported):
    _, out = exported
    text = load_card(out).text
    for section in ("## How it was made", "## Measures (the paper's Table 1)", "## Validation", "## Known limitations"):
        assert section in text, section
    exported = json.loads((out / "dialogforge_manifest.json").read_text())["counts"]["exported"]
    assert f"| user | {exported} | 6 | synthesize" in text and "| pt-BR | 2 sampled |" in text
    assert "12 user turns, 128 tool rounds per request, 2 tasks" in text
    assert "agent `default` (scripted)" in text and "persona_sampler `default` (scripted)" in text
    assert "| user-oriented (paper) | Nemotron tools | 3.45 (121) | 21.79 (596) | 2.48 (20) |" in text
    assert "![Step, Turn and Task distributions](measures.png)" in text
    assert (out / "measures.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"languages: pt-BR {exported}" in text and "cost: $" in text
    assert "Not validated" in text and "scripted test model" in text


def _digest(out) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name not in ("README.md", "measures.png")}


def test_card_only_rewrites_the_card_after_validation_and_leaves_the_data(run_cli, exported):
    db, out = exported
    before = _digest(out)
    assert run_cli("validate", "--db", str(db)).code == 0
    result = run_cli("export", "--db", str(db), "--format", "hf", "--out", str(out), "--card-only")
    assert result.code == 0, result.err and f"card: {out / 'README.md'}" in result.out
    text = load_card(out).text
    exported = json.loads((out / "dialogforge_manifest.json").read_text())["counts"]["exported"]
    assert f"- {exported} validated:" in text  # the exported ones, not the whole database
    assert f"wrong_language {exported}" in text  # the scripted model speaks English whatever it is asked
    assert _digest(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".hf.")]  # no staging left behind


@pytest.mark.parametrize("case", ["not_an_export", "other_format", "data_flag"])
def test_card_only_refuses_what_it_cannot_do_in_one_line(run_cli, exported, tmp_path, case):
    db, out = exported
    target, extra, fmt = out, [], "hf"
    if case == "not_an_export":
        target = tmp_path / "empty"
        target.mkdir()
    elif case == "other_format":
        fmt = "openai"
    else:
        extra = ["--valid-only"]
    result = run_cli("export", "--db", str(db), "--format", fmt, "--out", str(target), "--card-only", *extra)
    assert result.code == 2 and result.err.startswith("dialogforge: error:") and result.err.count("\n") == 1


def test_the_card_module_is_where_the_card_is_made():
    """format_hf writes data only; the card lives in dataset/card.py (one place to change it)."""
    assert "README.md" not in (REPO / "dialogforge" / "dataset" / "format_hf.py").read_text().split('"""', 2)[2]


def test_a_dialogue_longer_than_the_agents_window_is_counted_as_trajectories_and_rows(tmp_path):
    """Rows are samples (one per agent context window): the card names both counts, and its size
    category is the rows'. The dialogue is grown over HTTP (the stub server) on a small context budget."""
    import asyncio

    import datasets

    from dialogforge.dataset.export import export
    from dialogforge.testing.scripted_model import ScriptedChatModel
    from dialogforge.testing.stub_server import StubServer
    from tests.support.dataset import store_states
    from tests.support.wire import long_dialogue, run_graph

    with StubServer(lambda body: ScriptedChatModel()) as server:
        state = asyncio.run(run_graph(tmp_path / "run.db", "t", long_dialogue(5, 36, context_tokens=3_000), server.base_url))
    store_states(tmp_path / "export.db", {"t": state})
    out = tmp_path / "hf"
    export(tmp_path / "export.db", out, "hf")
    counts = json.loads((out / "dialogforge_manifest.json").read_text())["counts"]
    assert counts["samples"] >= 2 and counts["exported"] == 1  # the window slid
    card = load_card(out)
    assert card.text.startswith("# dialogforge multi-turn tool-use dialogues\n\n1 synthetic conversations")
    assert f", in {counts['samples']} rows (one per context window of a long dialogue)." in card.text
    assert "shown only as context" in card.text and card.data.to_dict()["size_categories"] == ["n<1K"]
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == counts["samples"]
