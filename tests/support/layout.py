"""The installed shape of the package, rebuilt from pyproject.toml's package-dir mapping.

Tools that read a package from disk (import-linter) see the checkout's
folders, where ``graphs/`` is not under ``dialogforge/``; a staged copy laid
out as the wheel installs it is what they should read.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from tests.support.paths import REPO


def setuptools_config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Every package (dotted name) and the checkout folder it is installed from."""
    found: dict[str, Path] = {}
    for package, folder in setuptools_config()["package-dir"].items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root)
            found[".".join([package, *relative.parts])] = init.parent
    return found


def stage_package(dest: Path) -> Path:
    """A copy of the Python sources as the wheel lays them out, under ``dest``; returns ``dest``."""
    mapping = setuptools_config()["package-dir"]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package, folder in sorted(mapping.items(), key=lambda item: item[0].count(".")):
        shutil.copytree(REPO / folder, dest.joinpath(*package.split(".")), ignore=ignore, dirs_exist_ok=True)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest
