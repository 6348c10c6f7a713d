"""``dialogforge viz``: pictures of the graph and of one trajectory, written to files."""

from __future__ import annotations

import argparse

from dialogforge.records import Mode
from dialogforge.cli.options import add_db


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "viz", help="draw the graph or write a trajectory as one HTML file",
        description="Draw the dialogue graph or write one trajectory as a self-contained HTML page. "
                    "Example: dialogforge viz graph --mode user --out graph.svg",
    )
    kinds = parser.add_subparsers(dest="viz_kind", required=True, metavar="{graph,trajectory}")
    graph = kinds.add_parser(
        "graph", help="the dialogue graph as Mermaid text, SVG or PNG",
        description="Draw the dialogue graph; the --out suffix picks the format (.mmd, .svg or .png). "
                    "SVG and PNG need Graphviz's `dot`. Example: dialogforge viz graph --mode task --out task.png",
    )
    graph.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.USER.value)
    graph.add_argument("--out", required=True, metavar="FILE", help="FILE.mmd, FILE.svg or FILE.png")
    graph.set_defaults(func=run_graph)
    trajectory = kinds.add_parser(
        "trajectory", help="one trajectory as a self-contained HTML file",
        description="Write one trajectory (with its fork family) as a single offline HTML file. "
                    "Example: dialogforge viz trajectory ab12cd34-00000 --db run.db --out t.html",
    )
    trajectory.add_argument("thread_id", metavar="THREAD")
    add_db(trajectory)
    trajectory.add_argument("--out", required=True, metavar="FILE.html")
    trajectory.set_defaults(func=run_trajectory)


def run_graph(args: argparse.Namespace) -> int:
    from dialogforge.viewer.diagram import write_diagram

    path = write_diagram(Mode(args.mode), args.out)
    print(f"wrote {path}")
    return 0


def run_trajectory(args: argparse.Namespace) -> int:
    from dialogforge.viewer.standalone import write_trajectory_html

    path = write_trajectory_html(args.db, args.thread_id, args.out)
    print(f"wrote {path}")
    return 0
