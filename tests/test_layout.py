"""One import root and layers that run one way: what a wheel installs, and what imports what."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from tests.support.layout import package_folders, setuptools_config, stage_package
from tests.support.paths import REPO


def test_every_package_folder_is_listed_for_the_wheel():
    assert sorted(setuptools_config()["packages"]) == sorted(package_folders())


def test_the_layers_contract_holds(tmp_path):
    """import-linter over the package as installed (see pyproject.toml, [tool.importlinter])."""
    staged = stage_package(tmp_path / "staged")
    env = {**os.environ, "PYTHONPATH": str(staged)}
    command = "from importlinter.cli import lint_imports_command; lint_imports_command()"  # what `lint-imports` runs
    proc = subprocess.run([sys.executable, "-c", command, "--no-cache"], cwd=staged, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken." in proc.stdout


def test_the_wheel_installs_only_dialogforge_and_works_outside_the_checkout(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = tmp_path.glob("dialogforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"dialogforge"}
    for shipped in ("dialogforge/nodes/prompts/simulate_user.md", "dialogforge/executors/prompts/simulate_tool.md",
                    "dialogforge/viewer/static/index.html", "dialogforge/sqltools/examples/bookstore/schema.sql",
                    "dialogforge/cli/main.py", "dialogforge/graphs/builder.py", "dialogforge/checkpoints/serde.py",
                    "dialogforge/toolprep/prompts/draft_tools.md"):
        assert shipped in names, shipped
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    probe = ("import dialogforge.graphs.builder as b, dialogforge.cli.main as m, dialogforge.nodes.prompting as p; "
             "print(b.__file__); print(p.prompt_text('propose_task_continuation')[:20]); import importlib.util as u; "
             "print([n for n in ('graphs', 'nodes', 'checkpoints', 'scripts') if u.find_spec(n)])")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(str(target)) and lines[2] == "[]"


def test_no_top_level_packages_but_dialogforge_are_importable_outside_the_checkout(tmp_path):
    import importlib.util

    proc = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print([n for n in ('graphs', 'nodes', 'checkpoints', 'scripts') if u.find_spec(n)])"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    assert importlib.util.find_spec("dialogforge.cli.main") is not None


def test_the_database_check_knows_every_table_the_saver_makes():
    """``sqlite_file`` lists the saver's tables itself (so ``list`` need not load LangGraph): they must agree."""
    from dialogforge.checkpoints.sqlite import TABLES
    from dialogforge.checkpoints.sqlite_file import OUR_TABLES

    assert set(TABLES) <= OUR_TABLES
