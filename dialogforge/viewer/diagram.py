"""The dialogue graph as a picture, drawn from the compiled graph itself.

Mermaid text comes straight from LangGraph's ``draw_mermaid`` (so the golden
file catches any change to nodes or edges). SVG and PNG are rendered here,
offline, by Graphviz's ``dot`` from a DOT description built from the same
nodes and edges: conditional edges are dashed and carry their condition
("tool calls", "reply", "task complete", ...), fixed edges are solid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from langchain_core.runnables.graph import Graph

from dialogforge.viewer.errors import OutputError
from dialogforge.graphs.builder import compile_graph
from dialogforge.records import Mode

FORMATS = (".mmd", ".svg", ".png")
DOT_TIMEOUT_S = 60

_START, _END = "__start__", "__end__"


def graph_of(mode: Mode) -> Graph:
    return compile_graph(mode).get_graph()


def mermaid(mode: Mode) -> str:
    return graph_of(mode).draw_mermaid()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_source(mode: Mode) -> str:
    """DOT text for the graph: one line per node and edge, in a stable order."""
    graph = graph_of(mode)
    lines = [
        f"digraph dialogforge_{mode.value} {{",
        f'  label={_quote(f"dialogforge dialogue graph ({mode.value} mode)")}; labelloc=t; fontsize=18;',
        '  fontname="DejaVu Sans"; rankdir=TB; nodesep=0.5; ranksep=0.55; pad=0.3;',
        '  node [shape=box, style="rounded,filled", fillcolor="#f2f0ff", color="#6b5fd3", fontname="DejaVu Sans", fontsize=13];',
        '  edge [fontname="DejaVu Sans", fontsize=11, color="#444444"];',
    ]
    for node_id in graph.nodes:
        if node_id == _START:
            lines.append(f'  {_quote(node_id)} [label="start", shape=ellipse, fillcolor="#ffffff"];')
        elif node_id == _END:
            lines.append(f'  {_quote(node_id)} [label="end", shape=ellipse, fillcolor="#bfb6fc"];')
        else:
            lines.append(f"  {_quote(node_id)};")
    for edge in sorted(graph.edges, key=lambda e: (e.source, e.target, str(e.data))):
        attrs = []
        if edge.data is not None:
            attrs.append(f"label={_quote(' ' + str(edge.data) + ' ')}")
        if edge.conditional:
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {_quote(edge.source)} -> {_quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_with_dot(source: str, fmt: str) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise OutputError("Graphviz is not installed: `dot` not found (apt-get install graphviz), or write a .mmd file")
    proc = subprocess.run([dot, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=DOT_TIMEOUT_S)
    if proc.returncode != 0:
        raise OutputError(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return proc.stdout


def check_out_path(out: str | Path, allowed: tuple[str, ...]) -> Path:
    """Refuse an output we cannot write, before any work is done."""
    path = Path(out)
    if path.suffix.lower() not in allowed:
        raise OutputError(f"{path}: unknown output format {path.suffix or '(none)'!r}; use one of {', '.join(allowed)}")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: directory {parent} is not writable")
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target and rename, so a failure never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever opens the file next
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def diagram_bytes(mode: Mode, suffix: str) -> bytes:
    if suffix == ".mmd":
        return mermaid(mode).encode()
    return render_with_dot(dot_source(mode), suffix.lstrip("."))


def write_diagram(mode: Mode, out: str | Path) -> Path:
    """Write the graph of ``mode`` to ``out``; the suffix picks Mermaid, SVG or PNG."""
    path = check_out_path(out, FORMATS)
    write_atomically(path, diagram_bytes(mode, path.suffix.lower()))
    return path
