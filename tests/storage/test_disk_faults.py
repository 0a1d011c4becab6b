"""Crashes, power cuts, ENOSPC and failed fsyncs through FaultyFileSystem, under the real WAL.

The invariant everywhere (thesis §3.8): after a restart, every write whose call returned is
intact, and the log is what the first k writes produced, where k is the number acknowledged
(or one more: the interrupted write may have made it whole).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from storage_helpers import SEGMENT, assert_same

from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, HardState
from raftkv.storage import CorruptionError, DiskStorage, FaultyFileSystem, StorageFatal
from raftkv.storage.wal import WalWriter

Op = tuple[Any, ...]


def workload(rng: random.Random, n: int) -> list[Op]:
    """Writes a follower might see: appends, conflicting suffixes, hard states, snapshots."""
    ops: list[Op] = []
    last, term, snap = 0, 1, 0
    for k in range(n):
        roll = rng.random()
        if roll < 0.12 and last > 3:
            term += 1
            start = max(snap + 1, last - rng.randrange(0, 4))
            size = rng.randrange(1, 6)
            ops.append(("save", HardState(term, 2, snap), _batch(start, size, term, k, rng)))
            last = start + size - 1
        elif roll < 0.16 and last > snap + 5:
            snap = rng.randrange(snap + 1, last)
            ops.append(("create_snapshot", snap, ConfState(voters=(1, 2, 3)), b"sm%d" % k))
            ops.append(("compact", snap))
        else:
            size = rng.randrange(1, 9)
            ops.append(
                (
                    "save",
                    HardState(term, 1, max(snap, last - 2)),
                    _batch(last + 1, size, term, k, rng),
                )
            )
            last += size
    return ops


def _batch(start: int, n: int, term: int, tag: int, rng: random.Random) -> list[Entry]:
    return [
        Entry(term, i, bytes([tag % 256]) * rng.randrange(10, 200)) for i in range(start, start + n)
    ]


def model_after(ops: list[Op]) -> MemoryStorage:
    mem = MemoryStorage(ConfState(voters=(1,)))
    for name, *args in ops:
        getattr(mem, name)(*args)
    return mem


def run_until_failure(disk: DiskStorage, ops: list[Op]) -> tuple[int, StorageFatal | None]:
    """Apply ``ops`` until one raises StorageFatal; returns how many were acknowledged."""
    for k, (name, *args) in enumerate(ops):
        try:
            getattr(disk, name)(*args)
        except StorageFatal as e:
            return k, e
    return len(ops), None


def open_disk(path: str, fs: FaultyFileSystem | None = None) -> DiskStorage:
    return DiskStorage(path, fs=fs, segment_size=SEGMENT, conf_state=ConfState(voters=(1,)))


def assert_recovered(
    path: str, ops: list[Op], acked: int, fs: FaultyFileSystem | None = None
) -> None:
    """The reopened dir is exactly the state after ``acked`` ops, or after ``acked + 1``."""
    try:
        disk = open_disk(path, fs)
    except CorruptionError as e:  # a crash must never look like corruption
        raise AssertionError(f"acknowledged writes lost: recovery failed: {e}") from e
    try:
        errors = []
        for k in (acked, acked + 1)[: 1 + (acked < len(ops))]:
            try:
                assert_same(disk, model_after(ops[:k]))
                return
            except AssertionError as e:
                errors.append(f"after {k} ops: {e!r}")
        raise AssertionError(f"acknowledged writes lost: the state matches no prefix: {errors}")
    finally:
        disk.close()


@pytest.mark.parametrize("lose_unsynced", [False, True], ids=["process-crash", "power-cut"])
@pytest.mark.parametrize("seed", range(12))
def test_a_write_cut_at_a_random_byte(tmp_path: Any, seed: int, lose_unsynced: bool) -> None:
    rng = random.Random(seed)
    ops = workload(rng, 120)
    fs = FaultyFileSystem()
    disk = open_disk(str(tmp_path), fs)
    fs.crash_after(rng.randrange(1, 40_000))
    acked, err = run_until_failure(disk, ops)
    assert err is not None and fs.dead, "the budget should have cut a write"
    assert "\n" not in str(err)
    fs.crash(lose_unsynced=lose_unsynced)
    assert_recovered(str(tmp_path), ops, acked, fs)


def check_power_cut_keeps_acknowledged(path: str, seed: int) -> None:
    """Power is cut after a run of writes: every acknowledged write survives."""
    rng = random.Random(seed)
    ops = workload(rng, 60)
    fs = FaultyFileSystem()
    disk = open_disk(path, fs)
    acked, err = run_until_failure(disk, ops)
    assert err is None
    fs.crash(lose_unsynced=True)  # no close: everything not fsynced is gone
    assert_recovered(path, ops, acked, fs)


@pytest.mark.parametrize("seed", range(4))
def test_a_power_cut_keeps_every_acknowledged_write(tmp_path: Any, seed: int) -> None:
    check_power_cut_keeps_acknowledged(str(tmp_path), seed)


def test_without_the_wal_fsync_the_power_cut_check_fails(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept mutation test: with THE fsync of the WAL a no-op, acknowledged data is lost,
    and the check above notices. Proof that it can catch a missing fsync."""
    monkeypatch.setattr(WalWriter, "_sync", lambda self, f: None)
    with pytest.raises(AssertionError, match="acknowledged writes lost"):
        check_power_cut_keeps_acknowledged(str(tmp_path), 0)


def test_one_fsync_per_save(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    disk = DiskStorage(str(tmp_path), fs=fs)  # 64 MiB segments: no rollover here
    before = fs.syncs
    for i in range(1, 21):
        disk.save(HardState(1, 1, i - 1), [Entry(1, i, b"x" * 100)])
    assert fs.syncs - before == 20
    disk.save(None, [])
    disk.save(HardState(1, 1, 19), [])  # unchanged hard state, no entries: nothing to write
    assert fs.syncs - before == 20
    disk.close()


@pytest.mark.parametrize("seed", range(6))
def test_enospc_is_fatal_and_reopening_after_freeing_space_works(tmp_path: Any, seed: int) -> None:
    rng = random.Random(seed)
    ops = workload(rng, 150)
    fs = FaultyFileSystem()
    disk = open_disk(str(tmp_path), fs)
    fs.enospc_after(rng.randrange(500, 20_000))
    acked, err = run_until_failure(disk, ops)
    assert err is not None and "No space left" in str(err) and "\n" not in str(err)
    fs.free_space()
    with pytest.raises(StorageFatal):  # refused even with space again: reopen is the way
        disk.save(None, [Entry(99, disk.last_index() + 1)])
    with pytest.raises(StorageFatal):
        disk.compact(disk.last_index())
    disk.close()
    assert_recovered(str(tmp_path), ops, acked, fs)


@pytest.mark.parametrize("lose_unsynced", [False, True], ids=["reopen", "power-cut"])
@pytest.mark.parametrize("seed", range(4))
def test_a_failed_fsync_is_fatal(tmp_path: Any, seed: int, lose_unsynced: bool) -> None:
    rng = random.Random(seed)
    ops = workload(rng, 80)
    fs = FaultyFileSystem()
    disk = open_disk(str(tmp_path), fs)
    good = rng.randrange(0, 40)
    assert run_until_failure(disk, ops[:good]) == (good, None)
    fs.fail_syncs(1)
    failed, err = run_until_failure(disk, ops[good:])
    assert err is not None and "fsync" in str(err) and "\n" not in str(err)
    acked = good + failed
    with pytest.raises(StorageFatal):
        disk.save(None, [Entry(99, disk.last_index() + 1)])
    fs.crash(lose_unsynced=lose_unsynced)
    assert_recovered(str(tmp_path), ops, acked, fs)


def test_a_commit_index_alone_is_written_without_an_fsync_and_may_be_lost(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """etcd's MustSync rule: entries, term and vote are synced; a commit-only change is not,
    and after power loss the store reopens with the last synced state (the commit index is
    relearned from the leader)."""
    from raftkv.raft.types import ConfState, Entry, HardState
    from raftkv.storage import DiskStorage, FaultyFileSystem, OSFileSystem

    fs = FaultyFileSystem(OSFileSystem())
    st = DiskStorage(tmp_path / "d", conf_state=ConfState(voters=(1,)), fs=fs, segment_size=1 << 16)
    st.save(HardState(term=1, vote=1, commit=0), [Entry(term=1, index=1, data=b"a")])
    synced = st.fsyncs
    st.save(HardState(term=1, vote=1, commit=1), [])
    assert st.fsyncs == synced  # no fsync for the commit index alone
    st.save(HardState(term=2, vote=0, commit=1), [])
    assert st.fsyncs == synced + 1  # a new term is synced
    st.save(HardState(term=2, vote=0, commit=1), [Entry(term=2, index=2, data=b"b")])
    st.save(HardState(term=2, vote=0, commit=2), [])
    fs.crash(lose_unsynced=True)
    st2 = DiskStorage(tmp_path / "d", conf_state=ConfState(voters=(1,)))
    hs, _ = st2.initial_state()
    assert (hs.term, hs.vote, hs.commit) == (2, 0, 1)  # the unsynced commit=2 was lost
    assert st2.last_index() == 2
    st2.close()
