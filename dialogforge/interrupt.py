"""Ctrl-C and SIGTERM during a run: drain on the first, stop at once on the second.

First signal: no new trajectory starts and every running one stops after
its current step is checkpointed (LangGraph's ``RunControl`` drain); the
run then ends normally with the unfinished rows still ``pending`` /
``running`` in the manifest, so ``dialogforge resume`` continues them.
Second signal: the run task is cancelled at once. Checkpoints are written
one step at a time in a transaction, so even then at most the step in
flight is lost (it is redone on resume). A third signal gets Python's
default behaviour, in case something refuses to die.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Callable

from langgraph.runtime import RunControl

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C where ``resume`` has nothing to continue (e.g. while a run is planned); the message says what to do."""


def resume_hint(db_path: object) -> str:
    return f"run `dialogforge resume --db {db_path}` to continue"


class GracefulInterrupt:
    """Installs the two-stage handlers on the running loop for the duration of a ``with`` block."""

    def __init__(self, control: RunControl, task: asyncio.Task, notify: Callable[[str], None], db_path: object) -> None:
        self.control = control
        self.task = task
        self.notify = notify
        self.db_path = db_path
        self.signals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, object] = {}

    @property
    def requested(self) -> bool:
        return self.signals > 0

    @property
    def forced(self) -> bool:
        return self.signals > 1

    def __enter__(self) -> GracefulInterrupt:
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            self._loop.add_signal_handler(sig, self._on_signal, sig)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._uninstall()

    def _uninstall(self) -> None:
        if self._loop is not None:
            for sig in SIGNALS:
                self._loop.remove_signal_handler(sig)
                previous = self._previous.get(sig)
                if previous is not None:  # e.g. the embedded model server's clean-up handler
                    signal.signal(sig, previous)
            self._loop = None

    def _on_signal(self, sig: signal.Signals) -> None:
        self.signals += 1
        name = signal.Signals(sig).name
        if self.signals == 1:
            self.control.request_drain(name)
            self.notify(f"{name}: finishing the steps in flight, starting nothing new "
                        f"(again to stop at once); then {resume_hint(self.db_path)}")
            return
        self.notify(f"{name} again: stopping now; {resume_hint(self.db_path)}")
        self._uninstall()  # a third signal gets the default handling
        self.task.cancel()
