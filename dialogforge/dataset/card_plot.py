"""The dataset card's picture: Step, Turn and Task distributions of the exported data, with the paper's means.

matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``, as in
``dataset.report``: no global state, no display needed.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dialogforge.dataset.stats import PIPELINE, Group

PLOT_FILE = "measures.png"
# The paper's user-oriented means over Nemotron tools (Table 1), drawn as a reference line.
PAPER_MEANS = {"step": 3.45, "turn": 21.79, "task": 2.48}
PANELS = [("step", "Step: tool rounds per request"), ("turn", "Turn: messages per trajectory"),
          ("task", "Task: tasks per trajectory")]


def write_plot(groups: dict[tuple[str, str], Group], path: Path) -> Path:
    figure = Figure(figsize=(11, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    for i, (measure, title) in enumerate(PANELS, start=1):
        axes = figure.add_subplot(1, 3, i)
        series = [(f"{PIPELINE.get(g.mode, g.mode)} / {g.source}", getattr(g, measure).values)
                  for _, g in sorted(groups.items())]
        series = [(label, values) for label, values in series if values]
        if series:
            top = max(max(values) for _, values in series)
            bins = [x - 0.5 for x in range(0, top + 2)] if top <= 40 else 30
            axes.hist([v for _, v in series], bins=bins, label=[label for label, _ in series], alpha=0.8, rwidth=0.9)
        else:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
        axes.axvline(PAPER_MEANS[measure], color="black", linestyle=":", label="paper mean (user-oriented)")
        axes.set_title(title, fontsize="medium")
        axes.set_ylabel("count")
        if i == 1:
            axes.legend(fontsize="x-small")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
