"""``dialogforge viz graph``: the Mermaid golden files and the locally rendered SVG/PNG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dialogforge.viewer.diagram import dot_source, mermaid
from dialogforge.records import Mode
from dialogforge.cli.main import main

GOLDEN = Path(__file__).parent / "golden"
USER_ONLY_EDGES = ("task complete", "reply")
SHARED_EDGES = ("continue", "request", "tool calls", "results", "stop")


def golden(mode: Mode) -> str:
    return (GOLDEN / f"graph_{mode.value}.mmd").read_text()


@pytest.mark.parametrize("mode", list(Mode))
def test_mermaid_matches_the_golden_file(mode):
    """A change to the graph's nodes or edges shows up here; regenerate with `viz graph --out`."""
    assert mermaid(mode) == golden(mode)


def test_cli_writes_the_golden_mermaid(run_cli, tmp_path):
    out = tmp_path / "graph_task.mmd"
    result = run_cli("viz", "graph", "--mode", "task", "--out", str(out))
    assert result.code == 0, result.err
    assert out.read_text() == golden(Mode.TASK)
    assert f"wrote {out}" in result.out
    assert main(["viz", "graph", "--out", str(tmp_path / "graph_user.mmd")]) == 0  # --mode defaults to user
    assert (tmp_path / "graph_user.mmd").read_text() == golden(Mode.USER)


def test_golden_files_carry_the_conditions():
    user, task = golden(Mode.USER), golden(Mode.TASK)
    for label in SHARED_EDGES:
        assert f"&nbsp;{label}&nbsp;" in user and f"&nbsp;{label}&nbsp;" in task
    for label in USER_ONLY_EDGES:
        assert f"&nbsp;{label}&nbsp;" in user
        assert f"&nbsp;{label}&nbsp;" not in task  # task mode: the agent's answer ends the trajectory


def test_dot_source_labels_and_dashes_conditional_edges():
    dot = dot_source(Mode.USER)
    assert '"run_agent" -> "execute_tools" [label=" tool calls ", style=dashed];' in dot
    assert '"simulate_user" -> "propose_task" [label=" task complete ", style=dashed];' in dot
    assert '"__start__" -> "propose_task";' in dot  # the one fixed edge: solid, unlabelled


def _svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [" ".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("mode", list(Mode))
def test_svg_is_rendered_locally_with_edge_labels(tmp_path, mode):
    out = tmp_path / "graph.svg"
    assert main(["viz", "graph", "--mode", mode.value, "--out", str(out)]) == 0
    texts = _svg_texts(out)
    for node in ("propose_task", "synthesize_tools", "simulate_user", "run_agent", "execute_tools", "start", "end"):
        assert node in texts
    for label in SHARED_EDGES:
        assert label in texts
    for label in USER_ONLY_EDGES:
        assert (label in texts) is (mode is Mode.USER)
    assert "http" not in out.read_text().replace("http://www.w3.org", "")  # nothing fetched from anywhere


def test_png_is_a_real_image(tmp_path):
    out = tmp_path / "graph.png"
    assert main(["viz", "graph", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 300 and height > 500  # seven nodes stacked, not an empty canvas
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not left with the temp file's private mode


@pytest.mark.parametrize("out_name, message", [
    ("graph.txt", "unknown output format '.txt'"),
    ("graph", "unknown output format '(none)'"),
    ("missing/graph.svg", "does not exist"),
])
def test_bad_output_is_one_line_exit_2_nothing_written(capsys, tmp_path, out_name, message):
    assert main(["viz", "graph", "--out", str(tmp_path / out_name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dialogforge: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_missing_graphviz_is_a_clear_error(capsys, monkeypatch, tmp_path):
    """Without `dot` on PATH an SVG cannot be drawn: say how to get it, write nothing; .mmd still works."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert main(["viz", "graph", "--out", str(tmp_path / "g.svg")]) == 2
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert not (tmp_path / "g.svg").exists()
    assert main(["viz", "graph", "--out", str(tmp_path / "g.mmd")]) == 0


@pytest.mark.parametrize("args", [("viz",), ("viz", "graph"), ("viz", "trajectory"), ("view",)])
def test_help_has_examples(capsys, args):
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    assert "Example: dialogforge" in " ".join(capsys.readouterr().out.split())
