"""AsyncDiskStorage's write pipeline: writes queued behind an fsync in flight, planned before the
ones ahead of them are on disk, end exactly as MemoryStorage does them one at a time.

Each burst is queued in one go while the I/O thread holds the first write's fsync at a gate,
so every later write is planned against a state that is not yet on disk, merged into a
group with its neighbours, or held behind a barrier (snapshot, compaction).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import SEGMENT, GatedFileSystem, assert_same, entries, hs

from raftkv.raft.errors import RaftError
from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage import AsyncDiskStorage, DiskStorage

CONF = ConfState(voters=(1, 2, 3))

write = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 30), st.integers(0, 1), st.integers(0, 300)),
    st.tuples(st.just("conflict"), st.integers(0, 20), st.integers(1, 15), st.integers(0, 300)),
    st.tuples(st.just("hard_state"), st.integers(0, 2), st.integers(0, 3), st.floats(0, 1)),
    st.tuples(st.just("gap"),),
    st.tuples(st.just("create_snapshot"), st.floats(0, 1)),
    st.tuples(st.just("compact"), st.floats(0, 1.2)),
    st.tuples(st.just("apply_snapshot"), st.integers(-3, 10)),
)


class Burst:
    """Queues writes on the async storage and does them on MemoryStorage, in the same order."""

    def __init__(self, storage: AsyncDiskStorage, mem: MemoryStorage, term: int) -> None:
        self.storage, self.mem, self.term = storage, mem, term
        self.pending: list[tuple[Awaitable[Any], tuple[str, Any]]] = []
        self.tag = 0

    def queue(self, name: str, *args: Any) -> None:
        try:
            want: tuple[str, Any] = ("ok", getattr(self.mem, name)(*args))
        except RaftError as e:  # the storage errors, and a save that would leave a gap
            want = ("error", type(e).__name__)
        self.pending.append((getattr(self.storage, name)(*args), want))

    def batch(self, start: int, n: int, size: int) -> list[Entry]:
        self.tag += 1
        return entries(start, n, self.term, size=size, tag=self.tag)

    def add(self, step: tuple[Any, ...]) -> None:
        mem = self.mem
        first, last = mem.first_index(), mem.last_index()
        match step[0]:
            case "append":
                self.term += step[2]
                self.queue("save", None, self.batch(last + 1, step[1], step[3]))
            case "conflict":
                self.term += 1
                start = max(first, last + 1 - step[1])
                self.queue("save", hs(self.term, 0, 2), self.batch(start, step[2], step[3]))
            case "hard_state":
                commit = first - 1 + round(step[3] * (last - first + 1))
                self.term += step[1]
                self.queue("save", HardState(self.term, step[2], commit), [])
            case "gap":  # refused alone; the writes around it go on
                self.queue("save", None, self.batch(last + 2, 1, 10))
            case "create_snapshot":
                lo = mem.snapshot().meta.index
                self.queue("create_snapshot", lo + round(step[1] * (last - lo)), CONF, b"sm")
            case "compact":
                self.queue("compact", first - 1 + round(step[1] * (last - first + 1)))
            case "apply_snapshot":
                self.term += 1
                meta = SnapshotMeta(max(0, last + step[1]), self.term, ConfState(voters=(1, 2)))
                self.queue("apply_snapshot", Snapshot(meta, b"leader"))

    async def finish(self) -> None:
        for fut, want in self.pending:
            try:
                got: tuple[str, Any] = ("ok", await fut)
            except RaftError as e:
                got = ("error", type(e).__name__)
            assert got == want


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(write, min_size=1, max_size=12), min_size=1, max_size=4))
def test_pipelined_writes_end_like_memory(bursts: list[list[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        fs = GatedFileSystem()
        fs.gate.set()
        mem = MemoryStorage(CONF)

        async def main() -> None:
            disk = DiskStorage(d, conf_state=CONF, segment_size=SEGMENT, fs=fs)
            storage = AsyncDiskStorage(disk)
            term = 1
            for steps in bursts:
                fs.gate.clear()
                burst = Burst(storage, mem, term)
                for step in steps:
                    burst.add(step)
                fs.gate.set()
                await burst.finish()
                term = burst.term
                assert_same(storage, mem)
            await storage.close()

        asyncio.run(main())
        with DiskStorage(d, conf_state=CONF, segment_size=SEGMENT) as reopened:
            assert_same(reopened, mem)


def test_a_save_queued_behind_an_fsync_is_written_after_it_with_its_own_segment_state(
    tmp_path: Any,
) -> None:
    """A merged group that crosses into a new segment: the new segment's STATE record holds
    the hard state planned by the save before it, which was not on disk when it was planned."""
    fs = GatedFileSystem()
    fs.gate.set()
    disk = DiskStorage(str(tmp_path), fs=fs, segment_size=SEGMENT)

    async def main() -> None:
        storage = AsyncDiskStorage(disk)
        fs.gate.clear()
        first = storage.save(hs(2, 0), entries(1, 1, 2, size=10))
        queued = [storage.save(hs(2, i), entries(i + 1, 1, 2, size=900)) for i in range(1, 9)]
        assert storage.last_index() == 0  # nothing is visible before it is durable
        fs.gate.set()
        await asyncio.gather(first, *queued)
        assert len(disk.segments) > 1
        await storage.close()

    asyncio.run(main())
    with DiskStorage(str(tmp_path), segment_size=SEGMENT) as reopened:
        assert reopened.last_index() == 9
        assert reopened.initial_state()[0] == hs(2, 8)
