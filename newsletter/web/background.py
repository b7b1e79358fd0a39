"""Work a request hands off, so that its answer neither waits for it nor reveals it.

The sign-up form answers before the store is looked at or the provider called: how long
that work takes depends on the address's state (new, subscribed, bounced), and an answer
that waited for it would tell anyone who times it. The work runs as tasks of the app's
event loop, not of the request, so a client cannot time it through a kept-alive
connection either; the app waits for what is left when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("newsletter.web")

Work = Callable[[], Awaitable[None]]


class Background:
    """Runs handed-off work, at most ``concurrency`` at a time and ``max_pending`` queued.

    Beyond ``max_pending`` new work is dropped with a warning: a flood of requests must
    not grow memory without bound (the per-IP rate limit should stop it long before).
    """

    def __init__(self, *, concurrency: int = 4, max_pending: int = 1000) -> None:
        self.max_pending = max_pending
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, what: str, work: Work) -> bool:
        """Start ``work`` (described as ``what`` in the log); False when dropped."""
        if len(self._tasks) >= self.max_pending:
            log.warning("%s dropped: %d tasks already waiting", what, len(self._tasks))
            return False
        task = asyncio.get_running_loop().create_task(self._run(what, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    @property
    def pending(self) -> int:
        """How many tasks are queued or running."""
        return len(self._tasks)

    async def _run(self, what: str, work: Work) -> None:
        if self._slots is None:  # made here: a semaphore belongs to the loop that uses it
            self._slots = asyncio.Semaphore(self._concurrency)
        async with self._slots:
            try:
                await work()
            except Exception as exc:  # nobody awaits this task: the log is all there is
                log.error("%s failed: %s: %r", what, type(exc).__name__, str(exc)[:200])
                log.debug("traceback of the error above", exc_info=exc)

    async def drain(self) -> None:
        """Wait until every task (and any task those start) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
