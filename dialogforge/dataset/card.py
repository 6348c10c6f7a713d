"""The dataset card (``README.md``) of a Hugging Face export: metadata the Hub and ``datasets`` read, then how it was made.

The YAML header holds what the Hub indexes (license, languages, size
category, task categories, tags) and the ``configs`` entry that points
``load_dataset`` at the Parquet files. The body says how to load and train
on it, how it was made (mode, models per role, tool source, caps, seeds,
languages, personas), its Table 1 measures beside the paper's with a plot,
how it was validated, what it cost, and what synthetic data of this kind
cannot be trusted for. Everything in it is computed from the exported
trajectories, the export manifest and the runs' recorded configs, so
``export --card-only`` writes the same card again from the database and
the exported directory, without rewriting the data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

import dialogforge
from dialogforge.dataset.card_plot import PLOT_FILE, write_plot
from dialogforge.dataset.export_manifest import role_models
from dialogforge.dataset.mix import UNSET, Mix, mix_lines
from dialogforge.dataset.stats import PIPELINE, Group, failure_reasons, validity
from dialogforge.graphs.state import DialogueState
from dialogforge.languages import primary
from dialogforge.pricing import Pricing

CARD_FILE = "README.md"
PAPER_ROWS = [  # the paper's Table 1 (user-oriented rows and the baseline), for comparison
    ("task-oriented", "Nemotron tools", "3.95 (89)", "12.84 (178)", "1.63 (18)"),
    ("user-oriented", "Nemotron tools", "3.45 (121)", "21.79 (596)", "2.48 (20)"),
    ("user-oriented", "tau2 tools", "3.05 (63)", "36.16 (780)", "3.02 (20)"),
    ("user-oriented + Tool-Exec", "SQL", "3.74 (322)", "30.85 (680)", "1.86 (11)"),
]
SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]


@dataclass
class CardMeasures:
    """Table 1 groups, languages, personas and cost of the exported trajectories, as they stream out."""

    groups: dict[tuple[str, str], Group] = field(default_factory=dict)
    overall: Group = field(default_factory=lambda: Group("all", "all"))
    mix: Mix = field(default_factory=Mix)

    def add(self, state: DialogueState, source: str, pricing: Pricing | None) -> None:
        key = (state.mode.value, source)
        self.groups.setdefault(key, Group(*key)).add(state)
        self.overall.add(state)
        self.mix.add(state, pricing)


def size_category(count: int) -> str:
    return next((label for limit, label in SIZES if count < limit), "n>100M")


def _licenses(configs: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({(c.get("settings") or {}).get("license") or "unknown" for c in configs.values()}) or ["unknown"]


def metadata(rows: int, measures: CardMeasures, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The YAML header; ``rows``: the dataset's rows (a long dialogue is one row per context window)."""
    licenses = _licenses(configs)
    languages = sorted({"en" if tag == UNSET else primary(tag) for tag in measures.mix.languages}) or ["en"]
    return {
        "license": licenses[0] if len(licenses) == 1 else "other",
        "language": languages,
        "pretty_name": "dialogforge multi-turn tool-use dialogues",
        "size_categories": [size_category(rows)],
        "task_categories": ["text-generation"],
        "tags": ["synthetic", "tool-use", "function-calling", "multi-turn", "agent", "dialogforge"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
    }


def card_text(count: int, manifest: dict[str, Any], measures: CardMeasures, validations: dict[str, dict[str, Any]],
              configs: dict[str, dict[str, Any]]) -> str:
    """The whole README.md. ``count``: the exported trajectories; ``validations``: theirs only."""
    rows = int((manifest.get("counts") or {}).get("samples") or count)
    header = yaml.safe_dump(metadata(rows, measures, configs), sort_keys=False, allow_unicode=True)
    conventions = (manifest.get("target") or {}).get("conventions") or "the Hugging Face message convention"
    parts = [
        f"---\n{header}---",
        "# dialogforge multi-turn tool-use dialogues",
        "",
        f"{count} synthetic conversations between a simulated user and a tool-calling assistant, made with "
        f"[dialogforge](https://pypi.org/project/dialogforge/) {dialogforge.__version__} after *User-Oriented Multi-Turn "
        "Dialogue Generation with Tool Use at scale* (Cho, Jeong, Park, 2026)"
        + (f", in {rows} rows (one per context window of a long dialogue)." if rows != count else "."),
        "",
        "## Using it",
        f"`messages` and `tools` are lists of JSON values (each message keeps only its own keys), written for {conventions}.",
        "Assistant messages carry `train`: false on a turn whose tool call was invalid (answered with an error),",
        "and on a turn shown only as context (a long dialogue is several rows, one per context window, sharing",
        "`thread_id`; each turn is trained in one row, on exactly what the agent saw);",
        "axolotl reads it (`type: chat_template`, `field_messages: messages`, `field_tools: tools`,",
        "`message_field_training: train`); TRL's `assistant_only_loss` trains every assistant turn.",
        "Read with `datasets.load_dataset(PATH)` (Parquet) or `datasets.load_from_disk(PATH)` (Arrow).",
        "Every detail of how it was made, with secrets masked: `dialogforge_manifest.json`.",
        "",
        *recipe(manifest, configs),
        *measures_section(measures),
        *validation_section(validations),
        "## Languages, personas, cost",
        *[f"- {line}" for line in mix_lines(measures.mix)],
        "",
        *limitations(configs),
    ]
    return "\n".join(parts) + "\n"


def recipe(manifest: dict[str, Any], configs: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## How it was made", "",
             "| run | mode | trajectories | run seed | tool source | tool execution | language | personas | caps |",
             "|---|---|---|---|---|---|---|---|---|"]
    model_lines: list[str] = []
    for run in manifest.get("runs") or []:
        run_id = run.get("run_id") or "-"
        settings = (configs.get(run_id) or {}).get("settings") or {}
        limits = settings.get("limits") or {}
        caps = (f"{limits.get('max_user_turns', '-')} user turns, {limits.get('max_tool_steps', '-')} tool rounds per "
                f"request, {limits.get('max_tasks', '-')} tasks, {limits.get('token_budget') or 'no'} token budget"
                + (f", ${settings['budget_usd']} run budget" if settings.get("budget_usd") else ""))
        personas = settings.get("personas") or []
        who = (f"{len(personas)} sampled" if settings.get("sample_personas") else f"{len(personas)} given") if personas else "none"
        tools = settings.get("tools_file") or ", ".join(run.get("seed_tools") or []) or "synthesized per dialogue"
        lines.append(f"| {run_id} | {settings.get('mode', '-')} | {len(run.get('trajectory_seeds') or {})} | {run.get('run_seed')} "
                     f"| {settings.get('tool_source', '-')}: {tools} | {settings.get('tool_exec', 'simulated')} "
                     f"| {settings.get('language') or 'unset'} | {who} | {caps} |")
        models = run.get("models") or {}
        used = {role: m for role, m in models.items() if isinstance(m, dict)}
        if used:
            model_lines.append(f"- run {run_id}: " + "; ".join(
                f"{role} `{m.get('model')}` ({m.get('backend')})" for role, m in used.items()))
    lines += ["", "Models per role:", *(model_lines or ["- (not recorded)"]), "",
              "Each trajectory's own seed is in the manifest (`runs[].trajectory_seeds`): with the same models and "
              "settings, `dialogforge generate --seed` plans the same dialogues again.", ""]
    return lines


def measures_section(measures: CardMeasures) -> list[str]:
    rows = ["| pipeline | source | Step | Turn | Task | samples |", "|---|---|---|---|---|---|"]
    for g in [*(measures.groups[k] for k in sorted(measures.groups)), measures.overall]:
        rows.append(f"| {PIPELINE.get(g.mode, g.mode)} | {g.source} | {g.step.cell()} | {g.turn.cell()} | {g.task.cell()} | {g.samples} |")
    paper = [f"| {a} (paper) | {b} | {c} | {d} | {e} | |" for a, b, c, d, e in PAPER_ROWS]
    return ["## Measures (the paper's Table 1)", "",
            "Mean (max). Step = tool-use iterations per user request; Turn = user + assistant + tool messages; "
            "Task = objectives per trajectory. The paper's figures below ours, for comparison.", "",
            *rows, *paper, "", f"![Step, Turn and Task distributions]({PLOT_FILE})", ""]


def validation_section(validations: dict[str, dict[str, Any]]) -> list[str]:
    v = validity(validations)
    if not v["validated"]:
        return ["## Validation", "", "Not validated: no rule check or judge has looked at these trajectories "
                "(`dialogforge validate --db PATH`, then export again or `export --card-only`).", ""]
    reasons = failure_reasons(validations)
    return ["## Validation", "",
            f"- {v['validated']} validated: {v['rules_ok']} pass every rule check, {v['valid']} valid, "
            f"{v['duplicates']} marked as near-duplicates.",
            f"- Judge: {v['judged']} judged ({v['judged_invalid']} invalid), {v['unjudged']} unjudged (the judge call "
            f"failed), {v['not_judged']} passed the rules with no judge run; one that fails a rule is not judged.",
            "- Failure reasons: " + (", ".join(f"{k} {n}" for k, n in reasons.items()) or "none"), ""]


def limitations(configs: dict[str, dict[str, Any]]) -> list[str]:
    backends = Counter()
    for config in configs.values():
        for m in role_models(config.get("models") or {}).values():
            if isinstance(m, dict):
                backends[m.get("backend")] += 1
    notes = [
        "- **Both sides are models.** The user is an LLM following behavioural rules, not a person: real users are "
        "vaguer, change their minds, make typos and leave; the data under-represents that.",
        "- **Tool results are simulated** by an LLM world model unless a run used Tool-Exec (real SQL): they are "
        "plausible, not true, and can contradict one another over a long dialogue.",
        "- **Errors propagate.** A state-tracking slip early in a long dialogue carries through the turns after it "
        "(a limitation the paper names); the judge checks each task's rubric, not every fact.",
        "- **Judged by a model.** Validity is a rubric judge's and rule checks' verdict: neither proves a dialogue "
        "correct, and a judge shares the blind spots of the models it judges.",
        "- **Language** is checked by language identification (py3langid) on turns of 20 letters or more: it "
        "catches a turn in the wrong language, not poor fluency or translationese.",
        "- **Personas and domains** come from seeds or a model's sampling: they cover what was asked for, with a "
        "model's biases, not a population.",
    ]
    if backends.get("scripted"):
        notes.append("- **Made with the scripted test model** (some runs): deterministic test equipment, not a "
                     "language model. This data exercises the pipeline and must not be trained on.")
    if backends.get("local"):
        notes.append("- **Made with the embedded tiny model** (some runs, Gemma 3 270M by default): it shows the "
                     "pipeline's mechanics, not data quality.")
    return ["## Known limitations", "", *notes]


def write_card(out_dir: Path, count: int, manifest: dict[str, Any], measures: CardMeasures,
               validations: dict[str, dict[str, Any]], configs: dict[str, dict[str, Any]],
               rows: list[dict[str, Any]]) -> Path:
    """README.md and its plot into ``out_dir`` (an export's staging directory, or the export itself).
    ``rows``: the exported trajectories' manifest rows (what they cost)."""
    measures.mix.add_spend(rows, configs)
    write_plot(measures.groups, out_dir / PLOT_FILE)
    path = out_dir / CARD_FILE
    path.write_text(card_text(count, manifest, measures, validations, configs), encoding="utf-8")
    return path


def exported_validations(validations: dict[str, dict[str, Any]], thread_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {t: validations[t] for t in thread_ids if t in validations}
