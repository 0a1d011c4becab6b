"""``AsyncDiskStorage``: ``DiskStorage`` for an asyncio host, with a write pipeline and group
commit.

Reads stay synchronous (they are answered from memory). Writes are awaitable and reach the disk
in the order they were queued:

* A save is validated and encoded on the event loop in the call that queues it, then handed to
  a dedicated I/O thread, which writes and fsyncs so the loop never blocks. The thread never
  waits for the loop: when an fsync returns it reports to the loop and goes straight on with
  what was queued meanwhile, writing every queued save and covering them all with ONE fsync
  (group commit; ARCHITECTURE.md, "The Ready contract"). So the encoding of the next saves
  overlaps the current fsync, and the disk idles only when nothing is queued.
* On the loop, each finished write updates memory and resolves its caller, in queue order:
  a save is visible to reads only once it is durable.
* A save with no fsync that is one small buffered write (a commit index alone) runs on the loop
  at once when nothing is in flight.
* Snapshot and compaction writes are barriers: they wait until the writes before them are done,
  run alone, and the writes after them wait for them (their plans depend on what they change).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
from collections.abc import Awaitable, Sequence
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


@dataclass(slots=True)
class _Write:
    """A planned write (one barrier, or saves planned together) on its way through the I/O
    thread."""

    requests: list[_Request]
    plan: PlannedWrite
    loop: asyncio.AbstractEventLoop


class AsyncDiskStorage:
    """``DiskStorage`` with awaitable writes that never block the event loop.

    Args:
        disk: an open ``DiskStorage``; this object owns it from now on.

    Use ``await AsyncDiskStorage.open(path, ...)`` to open (recovery runs in a thread). The
    read methods are those of ``raftkv.raft.storage.Storage``; pass this object to the core.
    """

    def __init__(self, disk: DiskStorage) -> None:
        self.disk = disk
        self._held: collections.deque[_Request] = collections.deque()  # behind a barrier
        self._unplanned: list[_Request] = []  # saves queued behind a write in flight
        self._planning = False  # a call to _plan_queued is scheduled
        self._in_flight = 0  # writes handed to the I/O thread and not yet finished
        self._barrier = False  # the write in flight is a barrier
        self._idle: asyncio.Future[None] | None = None  # close() waits on it
        self._closing: asyncio.Task[None] | None = None  # set by close(): no more writes
        # Shared with the I/O thread, under _cond: the planned writes it has yet to take.
        self._cond = threading.Condition()
        self._work: collections.deque[_Write | None] = collections.deque()
        self._thread = threading.Thread(target=self._io_loop, name="raftkv-wal", daemon=True)
        self._thread.start()

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

    def apply_snapshot(self, snap: Snapshot) -> Awaitable[None]:
        """``DiskStorage.apply_snapshot``, queued at once (a barrier: see the module doc)."""
        return self._submit("apply_snapshot", snap)

    def create_snapshot(
        self, index: int, conf_state: ConfState, data: bytes
    ) -> Awaitable[Snapshot]:
        """``DiskStorage.create_snapshot``, queued at once (a barrier)."""
        return self._submit("create_snapshot", index, conf_state, data)

    def compact(self, index: int) -> Awaitable[None]:
        """``DiskStorage.compact``, queued at once (a barrier)."""
        return self._submit("compact", index)

    async def close(self) -> None:
        """Finish the queued writes, then close the storage and stop its I/O thread. A caller
        cancelled meanwhile does not stop the close; calling again waits for the same one."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if not self._is_idle():
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle
        with self._cond:
            self._work.append(None)
            self._cond.notify()
        await asyncio.to_thread(self._thread.join)
        self.disk.close()

    # -- the loop's side ----------------------------------------------------------------------
    #
    # Callbacks, not a task: a write is planned and handed to the I/O thread in the call that
    # queues it, and its completion settles its caller in the very callback that brings it
    # back to the loop. Each hop through the event loop saved is tens of microseconds on
    # every request's path.

    def _submit(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        if self._closing is not None:
            raise RaftError("AsyncDiskStorage is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        request = _Request(kind, args, future)
        busy = self._in_flight or self._unplanned
        if self._held or self._barrier or (kind != "save" and busy):
            self._held.append(request)
        elif busy:
            # Behind a write in flight: planned, with the saves queued in this turn of the
            # loop, in one go (one record) at the end of the turn, while the fsync runs.
            self._unplanned.append(request)
            if not self._planning:
                self._planning = True
                loop.call_soon(self._plan_queued, loop)
        else:
            self._start(loop, [request])
        return future

    def _plan_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        self._planning = False
        requests, self._unplanned = self._unplanned, []
        if requests:
            self._start(loop, requests)
        self._release()

    def _start(self, loop: asyncio.AbstractEventLoop, requests: list[_Request]) -> None:
        """Plan ``requests`` (one barrier, or saves) as one write; if that fails, plan them one
        by one (a save that cannot be planned is refused alone; the others go on)."""
        try:
            plan = self._plan(requests)
        except Exception as e:
            if len(requests) == 1:
                _settle(requests, error=e)
                return
            for r in requests:
                self._start(loop, [r])
            return
        self._dispatch(loop, requests, plan)

    def _dispatch(
        self, loop: asyncio.AbstractEventLoop, requests: list[_Request], plan: PlannedWrite
    ) -> None:
        """Run ``plan`` here if it is inline and nothing is in flight, else hand it to the
        I/O thread."""
        if plan.inline and not self._in_flight:
            error: BaseException | None = None
            try:
                plan.io()
            except Exception as e:
                error = e
            _complete(requests, plan, error)
            return
        self._in_flight += 1
        self._barrier = requests[0].kind != "save"
        with self._cond:
            self._work.append(_Write(requests, plan, loop))
            self._cond.notify()

    def _finished(self, writes: list[_Write], error: BaseException | None) -> None:
        """On the loop: ``writes`` are on disk (or failed with ``error``), in queue order."""
        self._in_flight -= len(writes)
        self._barrier = False
        for w in writes:
            _complete(w.requests, w.plan, error)
        self._release()

    def _release(self) -> None:
        """Start the held writes that may start now; tell close() when all is done."""
        loop = asyncio.get_running_loop()
        while self._held and not self._barrier and not self._unplanned:
            if self._held[0].kind != "save":
                if self._in_flight:
                    break
                self._start(loop, [self._held.popleft()])
                continue
            saves = []
            while self._held and self._held[0].kind == "save":
                saves.append(self._held.popleft())
            self._start(loop, saves)
        if self._is_idle() and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def _is_idle(self) -> bool:
        return not (self._in_flight or self._held or self._unplanned)

    def _plan(self, requests: list[_Request]) -> PlannedWrite:
        args = requests[0].args
        match requests[0].kind:
            case "save":
                return self.disk.plan_saves([(r.args[0], r.args[1]) for r in requests])
            case "apply_snapshot":
                return self.disk.plan_apply_snapshot(*args)
            case "create_snapshot":
                return self.disk.plan_create_snapshot(*args)
            case "compact":
                return self.disk.plan_compact(*args)
        raise AssertionError(f"unknown write {requests[0].kind}")

    # -- the I/O thread -----------------------------------------------------------------------

    def _io_loop(self) -> None:
        """Take every queued save at once (or one barrier), write, fsync once, report."""
        while True:
            with self._cond:
                while not self._work:
                    self._cond.wait()
                first = self._work.popleft()
                if first is None:
                    return
                writes = [first]
                if first.requests[0].kind == "save":
                    while self._work and (w := self._work[0]) is not None:
                        if w.requests[0].kind != "save":
                            break
                        writes.append(w)
                        self._work.popleft()
            error: BaseException | None = None
            try:
                if first.requests[0].kind == "save":
                    for w in writes:
                        assert w.plan.write is not None
                        w.plan.write()
                    if any(w.plan.sync for w in writes):
                        self.disk.sync_wal()
                else:
                    first.plan.io()
            except Exception as e:
                error = e
            _call_soon_threadsafe(first.loop, self._finished, writes, error)


def _call_soon_threadsafe(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """From the I/O thread: run ``fn`` on the loop (unless the loop is gone)."""
    with contextlib.suppress(RuntimeError):  # the loop was closed under a write
        loop.call_soon_threadsafe(fn, *args)


def _complete(
    requests: list[_Request], plan: PlannedWrite, error: BaseException | None
) -> None:
    """After ``plan``'s disk half (failed with ``error``, or not): update memory, settle."""
    if error is None:
        try:
            plan.apply()
        except Exception as e:  # a bug; the callers must still hear of it
            error = e
    _settle(requests, result=plan.result, error=error)


def _settle(
    requests: list[_Request], result: Any = None, error: BaseException | None = None
) -> None:
    for request in requests:
        if request.future.done():  # the caller was cancelled; the write happened anyway
            continue
        if error is not None:
            request.future.set_exception(error)
        else:
            request.future.set_result(result)
