"""``DiskStorage``: the ``HostStorage`` protocol on disk — WAL, hard state, snapshots, recovery.

A data dir holds ``wal/`` (segments, see ``raftkv.storage.wal``) and ``snap/`` (snapshot files,
see ``raftkv.storage.snap``), and is locked with ``flock`` while open. Reads are answered from
memory (``MemLog``) exactly as ``MemoryStorage`` answers them; every write goes to the WAL and
is fsynced before the call returns and before memory changes, so what the core reads has always
been acknowledged by the disk (thesis §3.8).

Each write is split in two: ``io`` (disk only, may run in a worker thread) and ``apply``
(memory only, runs where reads run). ``DiskStorage`` runs both at once; ``AsyncDiskStorage``
runs ``io`` in a thread and merges the saves that queue up meanwhile into one fsync.

Failure: any failed write, fsync or allocation raises ``StorageFatal``; from then on every write
raises it again (a failed fsync may have lost data the OS claimed to have, so retrying is not
safe). Reopen the data dir to recover.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from raftkv.raft.errors import Unavailable
from raftkv.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from raftkv.storage.codec import (
    LogBase,
    SegmentState,
    SnapshotMark,
    encode_record,
    encode_save,
)
from raftkv.storage.errors import CorruptionError, DataDirLocked, DiskStorageError, StorageFatal
from raftkv.storage.fs import Buffer, FileSystem, Lock, OSFileSystem
from raftkv.storage.memlog import MemLog
from raftkv.storage.replay import Replayed, replay
from raftkv.storage.snap import SnapshotStore
from raftkv.storage.wal import DEFAULT_SEGMENT_SIZE, WalWriter, fatal

log = logging.getLogger(__name__)

WAL_DIR = "wal"
SNAP_DIR = "snap"


@dataclass(slots=True)
class PlannedWrite:
    """A write split in two: ``io`` touches only the disk, ``apply`` only memory.

    ``inline`` says ``io`` is cheap enough to run on an event loop: nothing at all, or a small
    buffered write with no fsync, no segment rollover and no zeroing (a commit index alone).

    A save also has ``write`` and ``sync``, so that a writer can put several saves on disk
    and cover them with one fsync (``DiskStorage.sync_wal``) instead of one each.
    """

    io: Callable[[], None]
    apply: Callable[[], None]
    result: Any = None
    inline: bool = False
    write: Callable[[], None] | None = None  # a save's ``io`` without its fsync
    sync: bool = False  # whether the save's data must be fsynced before it is acknowledged


def _noop() -> None:
    return None


class DiskStorage:
    """Durable ``HostStorage``: the synchronous twin, used by tests, the simulator and hosts.

    Args:
        path: the data dir; created if missing.
        conf_state: the configuration reported while no snapshot exists (as ``MemoryStorage``).
        segment_size: bytes preallocated per WAL segment (64 MiB; small in tests).
        fs: the file-system layer (``OSFileSystem``; a ``FaultyFileSystem`` in tests).
        keep_snapshots: how many snapshot files to keep.

    Raises:
        DataDirLocked: another open DiskStorage holds ``path``.
        CorruptionError: the WAL or the snapshots failed validation; nothing was changed.
        StorageFatal: the repairs after validation (torn tail, leftovers) failed.

    Not thread-safe: call it from one thread at a time (``AsyncDiskStorage`` runs only the
    disk half of its writes in a worker thread).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        conf_state: ConfState | None = None,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        fs: FileSystem | None = None,
        keep_snapshots: int = 3,
    ) -> None:
        self._fs: FileSystem = fs or OSFileSystem()
        self.path = os.path.abspath(os.fspath(path))
        self._failed: StorageFatal | None = None
        self._lock: Lock | None = None
        self._wal: WalWriter | None = None
        # The log's last index and the hard state once every planned write is applied (an
        # AsyncDiskStorage plans a save before the ones ahead of it are on disk).
        self._plan_last = 0
        self._plan_hs = HardState()
        if not self._fs.exists(self.path):
            _makedirs(self._fs, self.path)
        elif not self._fs.is_dir(self.path):
            raise DiskStorageError(f"data dir {self.path} is not a directory")
        try:
            self._lock = self._fs.lock(self.path)
        except BlockingIOError:
            raise DataDirLocked(
                f"data dir {self.path} is already open (its lock is held by this or another "
                "process); stop that process or choose another data dir"
            ) from None
        try:
            self._open(conf_state or ConfState(), segment_size, keep_snapshots)
        except BaseException:
            self.close()
            raise

    def _open(self, conf_state: ConfState, segment_size: int, keep: int) -> None:
        fs = self._fs
        waldir = os.path.join(self.path, WAL_DIR)
        snapdir = os.path.join(self.path, SNAP_DIR)
        # Validate everything before changing anything on disk.
        rec = replay(fs, waldir) if fs.is_dir(waldir) else Replayed()
        self._snaps = SnapshotStore(fs, snapdir, keep)
        if not rec.segments and self._snaps.files()[0]:
            raise CorruptionError(waldir, 0, "no WAL segments, but snapshot files exist")
        snap, unneeded = self._snaps.load(rec.mark, rec.base.index)
        self._hard_state = rec.hard_state
        self._mark = rec.mark
        self._snapshot = snap or Snapshot(SnapshotMeta(conf_state=conf_state))
        self._log = MemLog(rec.base, rec.entries)
        self._resync_plan()
        # Repairs.
        try:
            for d in (waldir, snapdir):
                if not fs.is_dir(d):
                    fs.mkdir(d)
            if rec.torn is not None:
                log.warning("%s; cutting it off", rec.torn.describe())
                _cut_tail(fs, rec.torn.path, rec.torn.offset, segment_size)
            for tmp in rec.temps:
                fs.remove(tmp)
            if rec.temps:
                fs.fsync_dir(waldir)
            self._snaps.remove(unneeded)
            if rec.segments:
                names = [s.name for s in rec.segments]
                self._wal = WalWriter(fs, waldir, names, rec.tail, segment_size)
            else:
                self._wal = WalWriter.create(
                    fs, waldir, self._segment_state(), self._log.last_index() + 1, segment_size
                )
        except OSError as e:
            raise fatal(f"repairing data dir {self.path}", e) from e
        log.info(
            "opened %s: entries %d..%d, term %d, commit %d, snapshot %d",
            self.path,
            self._log.first_index(),
            self._log.last_index(),
            self._hard_state.term,
            self._hard_state.commit,
            self._snapshot.meta.index,
        )

    # -- the read-only Storage protocol (from memory) -------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.meta.conf_state

    def first_index(self) -> int:
        return self._log.first_index()

    def last_index(self) -> int:
        return self._log.last_index()

    def term(self, i: int) -> int:
        return self._log.term(i)

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        return self._log.entries(lo, hi, max_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def hard_state(self) -> HardState:
        return self._hard_state

    # -- the host's write API -------------------------------------------------------------------

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Durably append ``entries`` (replacing a conflicting suffix) and set ``hard_state``:
        one write and one fsync, done before returning (thesis §3.8).

        Raises:
            RaftError: the entries would leave a gap in the log (nothing is written).
            StorageFatal: the write or fsync failed; the storage refuses further writes.
        """
        self._run(self.plan_saves([(hard_state, entries)]))

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Durably replace the log with a snapshot from the leader, if newer than ours.

        The snapshot file is made durable first, then a reset mark in the WAL, so a crash in
        between leaves the old log and snapshot in force (the new file is ignored).
        """
        self._run(self.plan_apply_snapshot(snap))

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Durably record a snapshot of the state machine at applied ``index``.

        Raises:
            Unavailable: ``index`` is beyond the last index.
            Compacted: the term of ``index`` is no longer known.
        """
        return self._run(self.plan_create_snapshot(index, conf_state, data))  # type: ignore[no-any-return]

    def compact(self, index: int) -> None:
        """Drop entries up to and including ``index``, then the WAL segments wholly below it.

        Raises:
            Unavailable: ``index`` is beyond the last index.
        """
        self._run(self.plan_compact(index))

    def close(self) -> None:
        """Close the WAL and release the data dir's lock. Idempotent."""
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> DiskStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def fsyncs(self) -> int:
        """WAL fsyncs so far (one per save, or per merged group of saves)."""
        return self._wal.syncs if self._wal is not None else 0

    @property
    def segments(self) -> list[str]:
        """Paths of the live WAL segments, oldest first."""
        return [s.path for s in self._wal.segments] if self._wal is not None else []

    # -- planning: validate on the caller's thread, do disk I/O later ------------------------------

    def plan_saves(self, saves: Sequence[tuple[HardState | None, Sequence[Entry]]]) -> PlannedWrite:
        """Plan several saves as ONE write and ONE fsync (group commit).

        The saves are acknowledged together, after that fsync, so only their end state needs
        to be durable: runs of consecutive entries become one SAVE record (a conflicting
        suffix starts a new one: replay replaces from there), carrying the last hard state.

        Raises:
            RaftError: one of the saves would leave a gap; nothing is planned.
        """
        self._check_writable()
        last = self._plan_last
        hs = self._plan_hs
        runs: list[list[Sequence[Entry]]] = [[]]  # runs of consecutive entries
        steps: list[tuple[HardState | None, Sequence[Entry]]] = []
        for hard_state, entries in saves:
            ents = self._log.trim(entries, last)
            if ents:
                if runs[-1] and ents[0].index != last + 1:
                    runs.append([])
                runs[-1].append(ents)
                last = ents[-1].index
            if hard_state is not None:
                hs = hard_state
            steps.append((hard_state, ents))
        changed = hs if hs != self._plan_hs else None
        # etcd's MustSync rule: entries, a new term or a new vote must be durable before
        # anything acknowledges them (thesis §3.8); a commit index alone need not be (it is
        # relearned from the leader), so it is written without its own fsync.
        must_sync = any(runs[-1]) or len(runs) > 1 or (
            changed is not None
            and (changed.term != self._plan_hs.term or changed.vote != self._plan_hs.vote)
        )
        parts = [_encode_run(None, run) for run in runs[:-1]]
        if runs[-1] or changed is not None:
            parts.append(_encode_run(changed, runs[-1]))

        def apply() -> None:
            for hard_state, ents in steps:
                self._log.append(ents)
                if hard_state is not None:
                    self._hard_state = hard_state

        if not parts:
            return PlannedWrite(_noop, apply, inline=True, write=_noop)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        assert self._wal is not None
        inline = not must_sync and self._wal.cheap(len(data))
        write = self._wal_io(data, sync=False)

        def io() -> None:
            write()
            if must_sync:
                self.sync_wal()

        self._plan_last, self._plan_hs = last, hs  # the next plan follows this one
        return PlannedWrite(io, apply, inline=inline, write=write, sync=must_sync)

    def plan_apply_snapshot(self, snap: Snapshot) -> PlannedWrite:
        self._check_writable()
        if snap.meta.index <= self._snapshot.meta.index:
            return PlannedWrite(_noop, _noop, inline=True)
        mark = SnapshotMark(snap.meta.index, snap.meta.term, reset=True)
        wal_io = self._wal_io(encode_record(mark))

        def io() -> None:
            self._snapshot_io(snap)
            wal_io()
            self._guarded("removing obsolete files", self._drop_sealed, mark)

        def apply() -> None:
            self._snapshot = snap
            self._mark = mark
            self._log.reset(LogBase(mark.index, mark.term))
            self._resync_plan()

        return PlannedWrite(io, apply)

    def plan_create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> PlannedWrite:
        self._check_writable()
        if index <= self._snapshot.meta.index:
            return PlannedWrite(_noop, _noop, self._snapshot, inline=True)
        if index > self._log.last_index():
            raise Unavailable(f"snapshot index {index} is beyond the last index")
        term = self._log.term(index)
        snap = Snapshot(SnapshotMeta(index=index, term=term, conf_state=conf_state), data)
        mark = SnapshotMark(index, term)
        wal_io = self._wal_io(encode_record(mark))

        def io() -> None:
            self._snapshot_io(snap)
            wal_io()
            self._guarded("removing old snapshots", self._snaps.prune, mark)

        def apply() -> None:
            self._snapshot = snap
            self._mark = mark

        return PlannedWrite(io, apply, snap)

    def plan_compact(self, index: int) -> PlannedWrite:
        self._check_writable()
        if index <= self._log.base.index:
            return PlannedWrite(_noop, _noop, inline=True)
        last = self._log.last_index()
        if index > last:
            raise Unavailable(f"compact {index} is beyond the last index {last}")
        base = LogBase(index, self._log.term(index))
        wal_io = self._wal_io(encode_record(base))

        def io() -> None:
            wal_io()
            assert self._wal is not None
            self._guarded("removing WAL segments", self._wal.drop_through, index)

        return PlannedWrite(io, lambda: self._log.compact(index))

    # -- internals --------------------------------------------------------------------------------

    def _run(self, plan: PlannedWrite) -> Any:
        plan.io()
        plan.apply()
        return plan.result

    def sync_wal(self) -> None:
        """fsync what ``PlannedWrite.write`` calls left in the WAL: one fsync for them all.

        Raises:
            StorageFatal: the fsync failed; the storage refuses further writes.
        """
        self._check_writable()
        assert self._wal is not None
        try:
            self._wal.sync()
        except StorageFatal as e:
            self._failed = e
            raise

    def _resync_plan(self) -> None:
        """Plans start from memory again (no write is planned but not yet applied)."""
        self._plan_last = self._log.last_index()
        self._plan_hs = self._hard_state

    def _check_writable(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._wal is None:
            raise StorageFatal(f"storage {self.path} is closed")

    def _segment_state(self) -> SegmentState:
        return SegmentState(self._hard_state, self._log.base, self._mark)

    def _wal_io(self, data: Buffer, sync: bool = True) -> Callable[[], None]:
        """The disk half of a WAL write, with the state a new segment would start from: that
        of the planned writes before it (which reach the disk first)."""
        state = SegmentState(self._plan_hs, self._log.base, self._mark)
        next_index = self._plan_last + 1

        def io() -> None:
            self._check_writable()
            assert self._wal is not None
            try:
                self._wal.write(data, state, next_index, sync)
            except StorageFatal as e:
                self._failed = e
                raise

        return io

    def _snapshot_io(self, snap: Snapshot) -> None:
        self._check_writable()
        self._guarded("writing a snapshot", self._snaps.write, snap)

    def _drop_sealed(self, mark: SnapshotMark) -> None:
        assert self._wal is not None
        self._wal.drop_sealed()
        self._snaps.prune(mark)

    def _guarded(self, what: str, fn: Callable[[Any], Any], arg: Any) -> None:
        """Run an I/O step; an OSError or StorageFatal in it makes the storage fatal."""
        try:
            fn(arg)
        except StorageFatal as e:
            self._failed = e
            raise
        except OSError as e:
            self._failed = fatal(f"{what} in {self.path}", e)
            raise self._failed from e


def _encode_run(hard_state: HardState | None, run: list[Sequence[Entry]]) -> bytearray:
    """One SAVE record for consecutive batches (no copy for the usual single batch)."""
    entries = run[0] if len(run) == 1 else [e for batch in run for e in batch]
    return encode_save(hard_state, entries)


def _makedirs(fs: FileSystem, path: str) -> None:
    parent = os.path.dirname(path)
    if parent and parent != path and not fs.exists(parent):
        _makedirs(fs, parent)
    fs.mkdir(path)


def _cut_tail(fs: FileSystem, path: str, offset: int, segment_size: int) -> None:
    """Zero a torn tail: truncate at ``offset``, reallocate the zeros, fsync."""
    f = fs.open(path)
    try:
        f.truncate(offset)
        f.allocate(segment_size)
        f.sync()
    finally:
        f.close()
