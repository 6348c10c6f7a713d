"""Where a worker's time went: a py-spy profile (``throughput.py --py-spy``) summed by thread and by part.

    python benchmarks/spy_summary.py /tmp/spy.sql.128.txt            # the parts, then the top functions
    python benchmarks/spy_summary.py /tmp/spy.sql.128.txt --top 40

The file holds py-spy's collapsed stacks (``--format raw --threads``): one
line per distinct stack, ``thread (TID): NAME;frame;frame... COUNT``. Each
part below is inclusive: the share of the thread's samples with a frame of
that part on the stack (parts nest, so they need not sum to 100%). Only
active samples are recorded, so the main thread's total against the
window's samples is how busy the event loop was.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

# What the profile named, and what a call costs besides: (label, frame patterns).
PARTS = [
    ("checkpoint writes (put, put_writes)", ("LinearSqliteSaver.put ", "LinearSqliteSaver.put_writes", "CheckpointWriter.")),
    ("checkpoint reads (get_tuple)", ("LinearSqliteSaver.get_tuple",)),
    ("manifest (sqlite-utils)", ("Manifest.",)),
    ("SQL executor (Tool-Exec)", ("SqlToolExecutor.", "TrajectoryDatabase.")),
    ("world-model context (executors.memory, world)", ("simulator_context", "world_of", "earlier_calls")),
    ("OpenAI client (SDK, aiohttp, our hooks)", ("ReasoningChatOpenAI.", "AsyncAPIClient.", "aiohttp/", "_base_client.py")),
    ("LangChain messages (to_langchain, convert)", ("to_langchain", "_convert_message_to_dict", "BaseMessage.__init__",
                                                    "convert_to_messages", "_convert_dict_to_message", "openai_messages")),
    ("LangChain runnable plumbing (ainvoke, callbacks)", ("BaseChatModel.ainvoke", "agenerate_prompt", "callbacks/manager")),
    ("prompts (render, context_block)", ("prompts.py", "render (", "context_block")),
    ("pydantic (validate, copy, dump)", ("pydantic/main.py", "model_validate", "model_copy", "model_dump")),
    ("LangGraph loop (pregel)", ("pregel/_loop.py", "pregel/_runner.py", "pregel/_algo.py")),
    ("node code (nodes/)", ("nodes/",)),
]
_LINE = re.compile(r"^thread \((\w+)\): ([^;]*);?(.*) (\d+)$")


def read(path: str) -> dict[str, list[tuple[list[str], int]]]:
    threads: dict[str, list[tuple[list[str], int]]] = defaultdict(list)
    with open(path) as handle:
        for line in handle:
            found = _LINE.match(line.rstrip("\n"))
            if found:
                tid, name, stack, count = found.groups()
                threads[f"{name or 'thread'} ({tid})"].append((stack.split(";") if stack else [], int(count)))
    return threads


def summary(path: str, top: int = 25) -> str:
    threads = read(path)
    total = sum(c for samples in threads.values() for _, c in samples) or 1
    lines = [f"{path}: {total} active samples"]
    for name, samples in sorted(threads.items(), key=lambda kv: -sum(c for _, c in kv[1])):
        count = sum(c for _, c in samples)
        lines.append(f"  {name}: {count} samples ({100 * count / total:.0f}% of all)")
    main = max(threads.items(), key=lambda kv: sum(c for _, c in kv[1]) if kv[0].startswith("MainThread") else -1)
    samples = main[1]
    count = sum(c for _, c in samples) or 1
    lines.append(f"\nparts of {main[0]} (inclusive):")
    for label, patterns in PARTS:
        hits = sum(c for stack, c in samples if any(p in frame for frame in stack for p in patterns))
        lines.append(f"  {100 * hits / count:5.1f}%  {label}")
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for stack, c in samples:
        names = {re.sub(r" \(([^:]*):\d+\)$", r" (\1)", f) for f in stack}
        for frame in names:
            inclusive[frame] += c
        if stack:
            own[re.sub(r" \(([^:]*):\d+\)$", r" (\1)", stack[-1])] += c
    lines.append(f"\ntop {top} functions of {main[0]} by own samples:")
    lines += [f"  {100 * c / count:5.1f}%  {frame}" for frame, c in own.most_common(top)]
    lines.append(f"\ntop {top} functions of {main[0]} by inclusive samples (below the engine's worker):")
    skip = ("asyncio/", "throughput.py", "runners.py", "engine.py", "<module>", "Pregel.astream", "Pregel.ainvoke")
    ranked = [(f, c) for f, c in inclusive.most_common() if not any(s in f for s in skip)]
    lines += [f"  {100 * c / count:5.1f}%  {frame}" for frame, c in ranked[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="py-spy raw output files")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.paths:
        print(summary(path, args.top))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
