"""``dialogforge export``: trajectories to a training file or dataset, with a run manifest beside it."""

from __future__ import annotations

import argparse

from dialogforge.dataset.options import CHAT_TEMPLATES, FORMATS, WITH_REASONING_DEFAULT
from dialogforge.cli.options import add_db


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export trajectories for training",
        description="Export finished trajectories as OpenAI fine-tuning JSONL, ShareGPT JSONL for LLaMA-Factory "
                    "(with a dataset_info.json entry beside it), or a Hugging Face dataset directory whose samples "
                    "render through a model family's chat template (--chat-template); a run manifest (config with "
                    "secrets masked, models, seeds, counts, what the format changed) is written beside it. The output "
                    "appears only when complete. "
                    "Example: dialogforge export --db run.db --format hf --chat-template qwen3 --out data/ --valid-only",
    )
    add_db(parser)
    parser.add_argument("--format", required=True, choices=FORMATS, help="openai | sharegpt (JSONL files) | hf (a directory)")
    parser.add_argument("--out", required=True, metavar="PATH", help="output file (openai, sharegpt) or directory (hf)")
    parser.add_argument("--chat-template", choices=CHAT_TEMPLATES, metavar="FAMILY",
                        help="hf only: write messages the way this family's chat template reads them "
                             f"({', '.join(CHAT_TEMPLATES)}); without it, the Hugging Face message convention")
    parser.add_argument("--valid-only", action="store_true",
                        help="only trajectories that `dialogforge validate` found valid, without duplicates")
    parser.add_argument("--keep-duplicates", action="store_true", help="with --valid-only: keep duplicates too")
    parser.add_argument("--include-unjudged", action="store_true",
                        help="with --valid-only: also admit trajectories that pass the rules but have no judge verdict "
                             "because their judge call failed (left out by default)")
    reasoning = parser.add_mutually_exclusive_group()
    reasoning.add_argument("--with-reasoning", dest="with_reasoning", action="store_const", const=True,
                           help="keep the agent's reasoning where the target reads it (refused where it has no place)"
                                + (" (the default; where the target has no place for it, it is left out and the "
                                   "manifest says so)" if WITH_REASONING_DEFAULT else ""))
    reasoning.add_argument("--no-reasoning", dest="with_reasoning", action="store_const", const=False,
                           help="leave the agent's reasoning out" + ("" if WITH_REASONING_DEFAULT else " (the default)"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.dataset.export import export
    from dialogforge.errors import ConfigError

    for flag, value in (("--keep-duplicates", args.keep_duplicates), ("--include-unjudged", args.include_unjudged)):
        if value and not args.valid_only:
            raise ConfigError(f"{flag} only filters a --valid-only export; add --valid-only")
    result = export(args.db, args.out, args.format, valid_only=args.valid_only, with_reasoning=args.with_reasoning,
                    keep_duplicates=args.keep_duplicates, include_unjudged=args.include_unjudged,
                    chat_template=args.chat_template)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items())) or "none"
    print(f"exported {result.exported} trajectories ({result.samples} samples) to {result.out} ({args.format}) "
          f"in {result.seconds:.1f}s; skipped: {skipped}")
    if result.samples > result.exported:
        print(f"{result.samples - result.exported} extra samples: dialogues whose agent context window slid are one "
              "sample per window (the manifest's samples)")
    if result.cut:
        print(f"{result.cut} of them stopped at a cap and end after their last completed task (what was cut: the manifest's cuts)")
    if result.skipped.get("unjudged"):
        print(f"note: {result.skipped['unjudged']} unjudged trajectories (their judge call failed) were left out; "
              "`dialogforge validate --judge` retries them, --include-unjudged admits them")
    print(f"manifest: {result.manifest_path}")
    return 0
