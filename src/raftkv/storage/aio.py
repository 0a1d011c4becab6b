"""``AsyncDiskStorage``: ``DiskStorage`` for an asyncio host, with group commit.

Reads stay synchronous (they are answered from memory). Writes are coroutines: each one is
queued; a single runner takes the queue in order, validates on the event loop, runs the disk
half (write + fsync) in a dedicated worker thread so the loop never blocks, then updates memory
on the loop and resolves the callers. Saves that arrive while an fsync is in flight are merged
into the next write and share its one fsync (group commit; ARCHITECTURE.md, "The Ready
contract"). Snapshot and compaction writes are barriers: they run alone, in queue order.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
        self._runner: asyncio.Task[None] | None = None
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
        if self._runner is not None:
            await asyncio.shield(self._runner)
        await asyncio.get_running_loop().run_in_executor(self._executor, self.disk.close)
        self._executor.shutdown(wait=True)

    # -- the runner -------------------------------------------------------------------------------

    def _submit(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        if self._closed:
            raise RaftError("AsyncDiskStorage is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Request(kind, args, future))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run())
        return future

    async def _run(self) -> None:
        while self._queue:
            batch = [self._queue.popleft()]
            if batch[0].kind == "save":
                while self._queue and self._queue[0].kind == "save":
                    batch.append(self._queue.popleft())
            if not await self._execute(batch):
                for req in batch:  # one bad save must not fail the others
                    await self._execute([req])

    async def _execute(self, batch: list[_Request]) -> bool:
        """Plan, write, apply and settle ``batch``; False if a merged batch failed to plan."""
        try:
            plan = self._plan(batch)
        except Exception as e:
            if len(batch) > 1:
                return False
            _settle(batch, error=e)
            return True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, plan.io)
        except Exception as e:
            _settle(batch, error=e)
            return True
        plan.apply()
        _settle(batch, result=plan.result)
        return True

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


def _settle(batch: list[_Request], result: Any = None, error: BaseException | None = None) -> None:
    for req in batch:
        if req.future.done():  # the caller was cancelled; the write happened anyway
            continue
        if error is not None:
            req.future.set_exception(error)
        else:
            req.future.set_result(result)
