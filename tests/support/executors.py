"""A thread pool that counts what it is given: to show that code ran on the event loop, not in threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)
