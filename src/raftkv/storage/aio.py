"""``AsyncDiskStorage``: ``DiskStorage`` for an asyncio host, with group commit.

Reads stay synchronous (they are answered from memory). Writes are awaitable and taken in the
order they were queued: each is validated on the event loop, its disk half (write + fsync) runs in
a dedicated worker thread so the loop never blocks, then memory is updated on the loop and the
callers resolved. A write with no fsync that is one small buffered write (a commit index alone)
runs on the loop at once instead. Saves that arrive while an fsync is in flight are merged into
the next write and share its one fsync (group commit; ARCHITECTURE.md, "The Ready contract").
Snapshot and compaction writes are barriers: they run alone, in queue order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
from collections.abc import Awaitable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from raftkv.raft.errors import RaftError
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot
from raftkv.storage.disk import DiskStorage, PlannedWrite


@dataclass(slots=True)
class _Request:
    kind: str  # "save" or a barrier's name
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


class AsyncDiskStorage:
    """``DiskStorage`` with awaitable writes that never block the event loop.

    Args:
        disk: an open ``DiskStorage``; this object owns it from now on.

    Use ``await AsyncDiskStorage.open(path, ...)`` to open (recovery runs in a thread). The
    read methods are those of ``raftkv.raft.storage.Storage``; pass this object to the core.
    """

    def __init__(self, disk: DiskStorage) -> None:
        self.disk = disk
        self._queue: collections.deque[_Request] = collections.deque()
        self._busy = False  # a write is in the I/O thread
        self._idle: asyncio.Future[None] | None = None  # close() waits on it
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raftkv-wal")
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], **kwargs: Any) -> AsyncDiskStorage:
        """Open ``path`` like ``DiskStorage(path, **kwargs)``, recovering in a worker thread."""
        disk = await asyncio.to_thread(lambda: DiskStorage(path, **kwargs))
        return cls(disk)

    # -- reads (from memory) ------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.disk.initial_state()

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        return self.disk.entries(lo, hi, max_bytes)

    def term(self, i: int) -> int:
        return self.disk.term(i)

    def first_index(self) -> int:
        return self.disk.first_index()

    def last_index(self) -> int:
        return self.disk.last_index()

    def snapshot(self) -> Snapshot:
        return self.disk.snapshot()

    # -- writes ---------------------------------------------------------------------------------

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> Awaitable[None]:
        """``DiskStorage.save``, merged with concurrent saves into one fsync.

        Queued at once (not when first awaited), so a host can start the write and do other
        work while it runs; await the result to know it is durable.
        """
        return self._submit("save", hard_state, entries)

    async def apply_snapshot(self, snap: Snapshot) -> None:
        await self._submit("apply_snapshot", snap)

    async def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        snap: Snapshot = await self._submit("create_snapshot", index, conf_state, data)
        return snap

    async def compact(self, index: int) -> None:
        await self._submit("compact", index)

    async def close(self) -> None:
        """Finish the queued writes, then close the storage and its worker thread."""
        if self._closed:
            return
        self._closed = True
        if self._busy or self._queue:
            self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)
        await asyncio.get_running_loop().run_in_executor(self._executor, self.disk.close)
        self._executor.shutdown(wait=True)

    # -- the runner -------------------------------------------------------------------------------
    #
    # Callbacks, not a task: a write is planned and handed to the I/O thread in the call that
    # queues it (when none is in flight), and its completion settles the callers in the very
    # callback that brings it back to the loop. Each hop through the event loop saved is tens
    # of microseconds on every request's path.

    def _submit(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        if self._closed:
            raise RaftError("AsyncDiskStorage is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Request(kind, args, future))
        if not self._busy:
            self._next(loop)
        return future

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the next write, or run it here when it is inline (see ``PlannedWrite``)."""
        while self._queue:
            batch = self._take()
            plan = self._plan_or_settle(batch)
            if plan is None:
                continue
            if plan.inline:
                error: BaseException | None = None
                try:
                    plan.io()
                except Exception as e:
                    error = e
                _complete(batch, plan, error)
                continue
            self._busy = True
            done = self._executor.submit(plan.io)
            done.add_done_callback(
                functools.partial(_call_soon_threadsafe, loop, self._finish, loop, batch, plan)
            )
            return
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _take(self) -> list[_Request]:
        batch = [self._queue.popleft()]
        if batch[0].kind == "save":
            while self._queue and self._queue[0].kind == "save":
                batch.append(self._queue.popleft())
        return batch

    def _plan_or_settle(self, batch: list[_Request]) -> PlannedWrite | None:
        """Plan ``batch``; if a merged batch fails to plan, plan its first save alone and put
        the others back (one bad save must not fail the others)."""
        try:
            return self._plan(batch)
        except Exception as e:
            if len(batch) > 1:
                self._queue.extendleft(reversed(batch[1:]))
                del batch[1:]
                return self._plan_or_settle(batch)
            _settle(batch, error=e)
            return None

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Request],
        plan: PlannedWrite,
        done: Future[None],
    ) -> None:
        self._busy = False
        _complete(batch, plan, done.exception())
        self._next(loop)

    def _plan(self, batch: list[_Request]) -> PlannedWrite:
        first = batch[0]
        match first.kind:
            case "save":
                return self.disk.plan_saves([(r.args[0], r.args[1]) for r in batch])
            case "apply_snapshot":
                return self.disk.plan_apply_snapshot(*first.args)
            case "create_snapshot":
                return self.disk.plan_create_snapshot(*first.args)
            case "compact":
                return self.disk.plan_compact(*first.args)
        raise AssertionError(f"unknown write {first.kind}")


def _call_soon_threadsafe(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """From the I/O thread: run ``fn`` on the loop (unless the loop is gone)."""
    with contextlib.suppress(RuntimeError):  # the loop was closed under a write
        loop.call_soon_threadsafe(fn, *args)


def _complete(batch: list[_Request], plan: PlannedWrite, error: BaseException | None) -> None:
    """After ``plan``'s disk half (failed with ``error``, or not): update memory, settle."""
    if error is None:
        try:
            plan.apply()
        except Exception as e:  # a bug; the callers must still hear of it
            error = e
    _settle(batch, result=plan.result, error=error)


def _settle(batch: list[_Request], result: Any = None, error: BaseException | None = None) -> None:
    for req in batch:
        if req.future.done():  # the caller was cancelled; the write happened anyway
            continue
        if error is not None:
            req.future.set_exception(error)
        else:
            req.future.set_result(result)
