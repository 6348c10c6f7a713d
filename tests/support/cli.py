"""Running ``dialogforge`` in a test: in this process (fast) or as a real process (signals, kills, start-up).

In-process runs call ``dialogforge.cli.main.main`` with stdout and stderr
captured and the environment and working directory set as a process would
have them; they skip the interpreter start-up that cost ~2 s a command. Tests
that send signals, kill, read environment at import time or need a fresh
interpreter use the process runner.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import REPO


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)


def run_in_process(*args: str, env: dict[str, str] | None = None, timeout: float | None = None) -> CliResult:
    """``dialogforge ARGS`` in this process; ``timeout`` is accepted for the process runner's signature."""
    from dialogforge.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in (env or {}).items():
            patch.setenv(key, value)
        patch.chdir(REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors and --help
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_as_process(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
    """``dialogforge ARGS`` as a user runs it: a new interpreter on this checkout's code."""
    proc = subprocess.run(
        [sys.executable, "-m", "dialogforge.cli", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
