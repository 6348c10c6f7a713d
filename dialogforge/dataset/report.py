"""A Markdown report of the dataset statistics, with one histogram PNG per measure.

Plots use matplotlib's object API (``Figure`` + the Agg canvas) and never
``pyplot``, so no global state or display backend is touched and it runs on
a machine without a screen.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dialogforge.dataset.atomic import check_report_dir
from dialogforge.dataset.errors import ExportError
from dialogforge.dataset.stats import PIPELINE, DatasetStats, Group, table_text

PLOTS = {
    "step": ("Step: tool rounds per user request", "tool rounds"),
    "turn": ("Turn: messages per trajectory", "user + assistant + tool messages"),
    "task": ("Task: tasks per trajectory", "tasks"),
    "tokens": ("Tokens per trajectory", "tokens (all roles)"),
}


def write_report(stats: DatasetStats, out_dir: str | Path) -> Path:
    """Write ``report.md`` and the histograms into ``out_dir``; returns the Markdown path."""
    out_dir = check_report_dir(out_dir)
    try:
        out_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot create report directory ({exc.strerror})") from exc
    images = {name: histogram(stats.groups, name, *labels, out_dir / f"{name}_hist.png") for name, labels in PLOTS.items()}
    report = out_dir / "report.md"
    report.write_text(markdown(stats, {name: path.name for name, path in images.items()}), encoding="utf-8")
    return report


def histogram(groups: list[Group], measure: str, title: str, xlabel: str, path: Path) -> Path:
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    series = [(f"{PIPELINE.get(g.mode, g.mode)} / {g.source}", getattr(g, measure).values) for g in groups]
    series = [(label, values) for label, values in series if values]
    if series:
        top = max(max(values) for _, values in series)
        bins = [x - 0.5 for x in range(0, top + 2)] if top <= 40 and measure != "tokens" else 30
        axes.hist([values for _, values in series], bins=bins, label=[label for label, _ in series], alpha=0.8, rwidth=0.9)
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def markdown(stats: DatasetStats, images: dict[str, str]) -> str:
    rows = ["| pipeline | source | Step | Turn | Task | samples |", "|---|---|---|---|---|---|"]
    for g in [*stats.groups, stats.overall]:
        rows.append(f"| {PIPELINE.get(g.mode, g.mode)} | {g.source} | {g.step.cell()} | {g.turn.cell()} | {g.task.cell()} | {g.samples} |")
    v = stats.validity
    reasons = "\n".join(f"| {reason} | {count} |" for reason, count in stats.failure_reasons.items()) or "| (none) | 0 |"
    parts = [
        "# Dataset report",
        "",
        "## Table 1 measures",
        "Mean (max). Step = tool-use iterations per user request; Turn = user + assistant + tool messages; "
        "Task = tasks per trajectory." + (" Valid, non-duplicate trajectories only." if stats.valid_only else ""),
        "",
        *rows,
        "",
        "## Validity",
        (f"{v['valid']} of {v['validated']} validated trajectories are valid ({v['validity_rate']:.1%}); "
         f"{v['duplicates']} are duplicates; {v['usable']} are usable ({v['usable_rate']:.1%}). Judged: {v['judged']}."
         if v["validated"] else "Not validated yet: run `dialogforge validate --db PATH`."),
        "",
        "| failure reason | trajectories |",
        "|---|---|",
        reasons,
        "",
        "## Cost",
        f"Tokens per trajectory: {stats.overall.tokens.cell()} (mean (max)).",
        "",
        "| role | mean tokens per trajectory |",
        "|---|---|",
        *(f"| {role} | {tokens:g} |" for role, tokens in stats.tokens_by_role.items()),
        "",
        "## Distributions",
        *(f"![{PLOTS[name][0]}]({file})\n" for name, file in images.items()),
        "## As printed by `dialogforge stats`",
        "```",
        table_text(stats),
        "```",
        "",
    ]
    return "\n".join(parts)
