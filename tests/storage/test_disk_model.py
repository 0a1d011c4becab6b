"""DiskStorage answers exactly like MemoryStorage after any sequence of writes and reopens.

Tiny segments (4 KiB) make rollover and segment removal happen all the time.
"""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_helpers import SEGMENT, assert_same, outcome

from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage import DiskStorage

CONF = ConfState(voters=(1, 2, 3))

op = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 40), st.integers(0, 1), st.integers(0, 200)),
    st.tuples(st.just("conflict"), st.integers(0, 30), st.integers(1, 20), st.integers(0, 200)),
    st.tuples(st.just("hard_state"), st.integers(0, 3), st.integers(0, 3), st.floats(0, 1)),
    st.tuples(
        st.just("group"),
        st.lists(st.tuples(st.integers(0, 4), st.integers(1, 10), st.booleans()), max_size=6),
        st.integers(0, 100),
    ),
    st.tuples(st.just("create_snapshot"), st.floats(0, 1), st.binary(max_size=300)),
    st.tuples(st.just("compact"), st.floats(0, 1.2)),
    st.tuples(st.just("apply_snapshot"), st.integers(-5, 20), st.integers(0, 1)),
    st.tuples(st.just("reopen")),
)


class Pair:
    """The same writes applied to a MemoryStorage and a DiskStorage."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.mem = MemoryStorage(CONF)
        self.disk = DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)
        self.term = 1
        self.tag = 0

    def both(self, name: str, *args: Any) -> None:
        want = outcome(lambda: getattr(self.mem, name)(*args))
        got = outcome(lambda: getattr(self.disk, name)(*args))
        assert got == want, (name, args)

    def batch(self, start: int, n: int, size: int) -> list[Entry]:
        self.tag += 1
        return [
            Entry(term=self.term, index=i, data=bytes([self.tag % 256]) * size)
            for i in range(start, start + n)
        ]

    def run(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        mem = self.mem
        first, last = mem.first_index(), mem.last_index()
        if kind == "append":
            self.term += step[2]
            self.both("save", None, self.batch(last + 1, step[1], step[3]))
        elif kind == "conflict":
            self.term += 1
            start = max(1, last + 1 - step[1])
            self.both("save", HardState(self.term, 2, 0), self.batch(start, step[2], step[3]))
        elif kind == "hard_state":
            commit = first - 1 + round(step[3] * (last - first + 1))
            self.both("save", HardState(self.term + step[1], step[2], commit), [])
        elif kind == "group":  # several saves, one write and one fsync (group commit)
            saves: list[tuple[HardState | None, list[Entry]]] = []
            for back, n, bump in step[1]:
                start = max(1, last + 1 - back)
                self.term += back > 0
                h = HardState(self.term, 1, max(0, start - 2)) if bump else None
                saves.append((h, self.batch(start, n, step[2])))
                last = start + n - 1
            self.disk._run(self.disk.plan_saves(saves))
            for h, ents in saves:
                mem.save(h, ents)
        elif kind == "create_snapshot":
            lo = mem.snapshot().meta.index
            index = lo + round(step[1] * (last - lo))
            self.both("create_snapshot", index, CONF, step[2])
        elif kind == "compact":
            self.both("compact", first - 1 + round(step[1] * (last - first + 1)))
        elif kind == "apply_snapshot":
            index = max(0, last + step[1])
            term = self.term + step[2]
            self.term = term
            snap = Snapshot(SnapshotMeta(index, term, ConfState(voters=(1, 2))), b"leader")
            self.both("apply_snapshot", snap)
        elif kind == "reopen":
            self.disk.close()
            self.disk = DiskStorage(self.path, conf_state=CONF, segment_size=SEGMENT)
        assert_same(self.disk, self.mem)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=25))
def test_disk_answers_like_memory(steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        pair = Pair(d)
        try:
            for step in steps:
                pair.run(step)
            pair.run(("reopen",))
        finally:
            pair.disk.close()


def test_rollover_and_compaction_remove_segments(tmp_path: Any) -> None:
    pair = Pair(str(tmp_path))
    for _ in range(30):
        pair.run(("append", 20, 0, 100))
    assert len(pair.disk.segments) > 10
    pair.run(("create_snapshot", 0.9, b"sm"))
    pair.run(("compact", 0.9))
    assert len(pair.disk.segments) <= 3
    pair.run(("reopen",))
    pair.run(("apply_snapshot", 5, 1))
    assert len(pair.disk.segments) == 1
    pair.run(("reopen",))
    pair.disk.close()
