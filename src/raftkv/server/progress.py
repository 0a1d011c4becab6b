"""Periodic watch progress notifications, shared by etcd's watch streams and the native protocol.

etcd's watch stream keeps, per watch created with ``progress_notify``, whether it has sent
events since its last tick; each tick (``--experimental-watch-progress-notify-interval``) it
sends a progress notification to every such watch that had none (``sendLoop`` in etcd 3.4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class ProgressTicker:
    """The ``progress_notify`` watches of one stream.

    Args:
        interval: seconds between ticks.
        notify: sends watch ``id`` a progress notification (no events, the current revision).
    """

    def __init__(self, interval: float, notify: Callable[[int], None]) -> None:
        self._interval = interval
        self._notify = notify
        self._idle: dict[int, bool] = {}  # watch id -> no events since the last tick
        self._task: asyncio.Task[None] | None = None

    def add(self, watch_id: int) -> None:
        """Start ticking for ``watch_id`` (the ticker's task starts with the first watch)."""
        self._idle[watch_id] = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def saw_events(self, watch_id: int) -> None:
        """Events went out for ``watch_id``: its next notification is moot."""
        if watch_id in self._idle:
            self._idle[watch_id] = False

    def discard(self, watch_id: int) -> None:
        self._idle.pop(watch_id, None)

    def close(self) -> None:
        self._idle.clear()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for watch_id, idle in list(self._idle.items()):
                if idle:
                    self._notify(watch_id)
                self._idle[watch_id] = True
