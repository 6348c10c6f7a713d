"""The end of a small ``generate`` run: one of its dialogues, printed, and the path of an HTML view of it.

A first run should show what it made, not only where it stored it. For a
run of up to ``SHOW_UP_TO`` trajectories, ``generate`` prints the one that
shows most (done, with an assistant reply, longest) as ``dialogforge show`` does, and writes
it as a single self-contained HTML file beside the database
(``dialogforge viz trajectory``), whose path it prints. Larger runs, and
stores that are not one SQLite file, skip it: ``show`` and ``view`` are there.
"""

from __future__ import annotations

from pathlib import Path

SHOW_UP_TO = 3


def show_what_was_made(db: str, thread_ids: list[str]) -> Path | None:
    from dialogforge.checkpoints.store_kinds import open_manifest
    from dialogforge.checkpoints.urls import is_postgres_url
    from dialogforge.cli.show_cmd import render_dialogue
    from dialogforge.runs.reading import load_state, trajectory_cost

    if is_postgres_url(db) or not Path(db).is_file() or not thread_ids:
        return None
    manifest = open_manifest(db)
    try:
        statuses = {t: (manifest.get(t) or {}).get("status") for t in thread_ids}
    finally:
        manifest.close()
    states = {t: load_state(db, t) for t in thread_ids if statuses[t] in ("done", "failed")}
    if not states:
        return None
    # the one that shows most: finished well first, then with an assistant reply, then the longest
    chosen = max(states, key=lambda t: (statuses[t] == "done", any(m.role == "assistant" for m in states[t].messages),
                                        len(states[t].messages)))
    state = states[chosen]
    if not state.messages:
        return None
    print(f"\n--- trajectory {chosen} ({statuses[chosen]}) ---")
    print(render_dialogue(state, costs=trajectory_cost(db, chosen, state)))
    print("---")
    from dialogforge.viewer.standalone import write_trajectory_html

    path = write_trajectory_html(db, chosen, Path(db).with_name(f"{Path(db).stem}-{chosen}.html"))
    print(f"HTML view of it (one file, opens offline in any browser): {path}")
    return path
