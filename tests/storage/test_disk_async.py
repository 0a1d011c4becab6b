"""AsyncDiskStorage: group commit, the event loop never blocked by an fsync, errors delivered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from storage_helpers import SEGMENT, GatedFileSystem, assert_same, entries, hs

from raftkv.raft.errors import RaftError
from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, Snapshot, SnapshotMeta
from raftkv.storage import AsyncDiskStorage, DiskStorage, FaultyFileSystem, StorageFatal


def test_concurrent_saves_share_one_fsync(tmp_path: Any) -> None:
    fs = GatedFileSystem()
    fs.gate.set()
    disk = DiskStorage(str(tmp_path), fs=fs, segment_size=1 << 20)
    fs.gate.clear()

    async def main() -> None:
        storage = AsyncDiskStorage(disk)
        before = storage.disk.fsyncs
        # The I/O thread takes the first save (or more, if it wakes late) and waits in its
        # fsync at the gate; everything queued meanwhile shares the next one.
        saves = [storage.save(hs(1, i), entries(i + 1, 1, 1, tag=i)) for i in range(50)]
        fs.gate.set()
        await asyncio.gather(*saves)
        assert storage.disk.fsyncs - before <= 2
        assert storage.last_index() == 50
        assert [e.data[0] for e in storage.entries(1, 51)] == list(range(50))
        await storage.close()

    asyncio.run(main())
    with DiskStorage(str(tmp_path)) as reopened:
        assert reopened.last_index() == 50 and reopened.initial_state()[0].commit == 49


def test_the_loop_runs_while_an_fsync_is_in_flight_and_later_saves_merge(tmp_path: Any) -> None:
    fs = GatedFileSystem()
    fs.gate.set()
    disk = DiskStorage(str(tmp_path), fs=fs, segment_size=1 << 20)
    fs.gate.clear()
    fs.in_sync.clear()

    async def main() -> None:
        storage = AsyncDiskStorage(disk)
        before = disk.fsyncs
        first = asyncio.ensure_future(storage.save(hs(1), entries(1, 1, 1)))
        while not fs.in_sync.is_set():  # the loop is free while the worker is in fsync
            await asyncio.sleep(0)
        assert storage.last_index() == 0  # not acknowledged, not visible
        later = [
            asyncio.ensure_future(storage.save(hs(1, i), entries(i, 1, 1))) for i in range(2, 12)
        ]
        for _ in range(20):
            await asyncio.sleep(0)
        assert not first.done() and not any(f.done() for f in later)
        fs.gate.set()
        await asyncio.gather(first, *later)
        assert disk.fsyncs - before == 2  # the first save, then the ten merged ones
        assert storage.last_index() == 11
        await storage.close()

    asyncio.run(main())


def test_a_commit_index_alone_is_written_on_the_loop_without_an_fsync(tmp_path: Any) -> None:
    fs = GatedFileSystem()
    fs.gate.set()

    async def main() -> None:
        storage = AsyncDiskStorage(DiskStorage(str(tmp_path), fs=fs, segment_size=1 << 20))
        await storage.save(hs(1, 0), entries(1, 3, 1))
        fs.gate.clear()  # any fsync from now on would hang the worker until the test ends
        before = storage.disk.fsyncs
        done = storage.save(hs(1, 3), [])
        assert asyncio.ensure_future(done).done()  # no thread, no loop turn
        assert storage.disk.fsyncs == before
        assert storage.initial_state()[0].commit == 3
        fs.gate.set()
        await storage.save(hs(1, 3), entries(4, 1, 1))  # a synced write makes it durable
        await storage.close()

    asyncio.run(main())
    with DiskStorage(str(tmp_path)) as disk:
        assert disk.initial_state()[0].commit == 3 and disk.last_index() == 4


def test_async_answers_like_memory_through_every_write(tmp_path: Any) -> None:
    mem = MemoryStorage(ConfState(voters=(1,)))

    async def main() -> None:
        storage = await AsyncDiskStorage.open(
            str(tmp_path), segment_size=SEGMENT, conf_state=ConfState(voters=(1,))
        )
        for k in range(10):
            batch = entries(k * 10 + 1, 10, 1, size=100, tag=k)
            await storage.save(hs(1, k * 10), batch)
            mem.save(hs(1, k * 10), batch)
        snap = await storage.create_snapshot(60, ConfState(voters=(1, 2)), b"sm")
        assert snap == mem.create_snapshot(60, ConfState(voters=(1, 2)), b"sm")
        await storage.compact(50)
        mem.compact(50)
        assert_same(storage, mem)
        leader = Snapshot(SnapshotMeta(200, 3, ConfState(voters=(1, 2, 3))), b"from the leader")
        await storage.apply_snapshot(leader)
        mem.apply_snapshot(leader)
        assert_same(storage, mem)
        await storage.close()

    asyncio.run(main())
    with DiskStorage(
        str(tmp_path), segment_size=SEGMENT, conf_state=ConfState(voters=(1,))
    ) as disk:
        assert_same(disk, mem)


def test_a_bad_save_fails_alone_and_fatal_errors_reach_every_caller(tmp_path: Any) -> None:
    fs = FaultyFileSystem()

    async def main() -> None:
        storage = AsyncDiskStorage(DiskStorage(str(tmp_path), fs=fs))
        results = await asyncio.gather(
            storage.save(None, entries(1, 2, 1)),
            storage.save(None, [Entry(1, 10)]),  # a gap: refused, the others go on
            storage.save(None, entries(3, 2, 1)),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], RaftError) and "missing log entry" in str(results[1])
        assert storage.last_index() == 4
        fs.fail_syncs(1)
        failed = await asyncio.gather(
            storage.save(None, entries(5, 1, 1)),
            storage.save(None, entries(6, 1, 1)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StorageFatal) for r in failed)
        assert storage.last_index() == 4  # nothing reported as saved
        with pytest.raises(StorageFatal):
            await storage.compact(2)
        await storage.close()

    asyncio.run(main())


def test_a_cancelled_close_still_closes_and_a_second_close_waits_for_it(tmp_path: Any) -> None:
    fs = GatedFileSystem()
    fs.gate.set()
    disk = DiskStorage(str(tmp_path), fs=fs, segment_size=1 << 20)

    async def main() -> None:
        storage = AsyncDiskStorage(disk)
        fs.gate.clear()
        fs.in_sync.clear()
        saving = asyncio.ensure_future(storage.save(hs(1), entries(1, 1, 1)))
        while not fs.in_sync.is_set():
            await asyncio.sleep(0)
        closing = asyncio.ensure_future(storage.close())
        await asyncio.sleep(0)
        closing.cancel()  # the caller gives up; the close goes on
        fs.gate.set()
        await storage.close()
        await saving
        assert closing.cancelled()

    asyncio.run(main())
    with DiskStorage(str(tmp_path)) as reopened:  # the lock was released
        assert reopened.last_index() == 1
