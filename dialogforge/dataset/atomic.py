"""Writing an export so that a kill never leaves a half-written file at the target path.

Everything is built under a temporary name in the target's own directory
(same filesystem, so the final ``os.replace`` is atomic) and only renamed
onto the target once complete. A kill leaves at most a ``.NAME.tmp-*``
sibling behind, never a truncated target. Paths are checked before any work
starts, so a bad ``--out`` costs nothing and writes nothing.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dialogforge.dataset.errors import ExportError

MARKER = "dialogforge_manifest.json"  # what makes a directory recognisably one of our exports


def check_file_target(out: str | Path) -> Path:
    out = Path(out)
    _check_parent(out)
    if out.is_dir():
        raise ExportError(f"{out}: is a directory; give a file path for this format")
    if out.exists() and not os.access(out, os.W_OK):
        raise ExportError(f"{out}: exists and is not writable")
    return out


def check_dir_target(out: str | Path) -> Path:
    out = Path(out)
    _check_parent(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a directory; the hf format writes a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ExportError(f"{out}: directory exists, is not empty and is not a dialogforge export; refusing to replace it")
    return out


def check_report_dir(out_dir: str | Path) -> Path:
    """Refuse an unusable report directory before any work, writing nothing."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a directory")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not out_dir.exists() and not parent.is_dir():
        raise ExportError(f"{out_dir}: directory {parent} does not exist")
    target = out_dir if out_dir.exists() else parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise ExportError(f"{out_dir}: directory {target} is not writable")
    return out_dir


def _check_parent(out: Path) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"{out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"{out}: directory {parent} is not writable")


def temp_sibling(target: Path, kind: str = "tmp") -> Path:
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it is flushed to disk and renamed onto ``target``."""
    temp = temp_sibling(target)
    try:
        yield temp
        _fsync(temp)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh directory; on success it takes ``target``'s place (an old export is removed)."""
    temp = temp_sibling(target)
    temp.mkdir()
    old = temp_sibling(target, "old")
    try:
        yield temp
        if target.exists():
            os.rename(target, old)  # between these two renames the target is absent, never partial
        os.rename(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
