"""Finding this machine's live processes by their command line (for tests that kill drivers and
must show what they leave running)."""

from __future__ import annotations

from pathlib import Path


def live_pids(*needles: bytes) -> list[int]:
    """Processes (not zombies) whose command line has an argument containing each of ``needles``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if state != "Z" and all(any(needle in arg for arg in argv) for needle in needles):
            found.append(int(entry.name))
    return found
