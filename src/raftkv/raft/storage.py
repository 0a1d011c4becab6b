"""The read-only ``Storage`` protocol the core calls, and ``MemoryStorage``.

The core only reads storage. Writes — ``save``, ``apply_snapshot``, ``compact`` — belong to the
host, which performs them while handling a Ready (see ``raftkv.raft.host``). ``MemoryStorage``
implements both halves; it is the storage of unit tests and of the simulator, and the reference
``raftkv.storage.DiskStorage`` is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from raftkv.raft.errors import Compacted, RaftError, Unavailable
from raftkv.raft.types import (
    EMPTY_HARD_STATE,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMeta,
    entry_size,
)


class Storage(Protocol):
    """What the core reads. Indexes are 1-based; ``entries(lo, hi)`` is the half-open [lo, hi).

    Invariant: ``first_index() - 1`` is the snapshot's index, whose term ``term()`` still answers.
    """

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the configuration of the latest snapshot."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi), at most ``max_bytes`` of them but always at least one.

        Raises:
            Compacted: lo <= the snapshot index.
            Unavailable: hi > last_index() + 1.
        """
        ...

    def term(self, i: int) -> int:
        """The term of entry ``i``; valid for first_index() - 1 <= i <= last_index().

        Raises:
            Compacted: i < first_index() - 1.
            Unavailable: i > last_index().
        """
        ...

    def first_index(self) -> int:
        """Index of the first entry kept (snapshot index + 1)."""
        ...

    def last_index(self) -> int:
        """Index of the last entry (the snapshot index when the log is empty)."""
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot."""
        ...


class HostStorage(Storage, Protocol):
    """The read protocol plus the writes a host performs while handling a Ready.

    ``MemoryStorage`` and ``raftkv.storage.DiskStorage`` (its synchronous twin) implement it; the
    simulator drives any ``HostStorage`` through its ``storage_factory``.
    """

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Durably append ``entries`` (replacing any conflicting suffix) and set ``hard_state``."""
        ...

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Durably replace the log with a snapshot received from the leader (if newer)."""
        ...

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Durably record a snapshot of the local state machine at applied ``index``."""
        ...

    def compact(self, index: int) -> None:
        """Drop entries up to ``index``, which a snapshot covers."""
        ...


def limit_size(entries: list[Entry], max_bytes: int | None) -> list[Entry]:
    """The longest prefix of ``entries`` within ``max_bytes``, but at least one entry."""
    if max_bytes is None or not entries:
        return entries
    total = 0
    for n, e in enumerate(entries):
        total += entry_size(e)
        if total > max_bytes and n > 0:
            return entries[:n]
    return entries


class MemoryStorage:
    """Storage in memory: the core's ``Storage`` protocol plus the host's write API.

    ``_ents[0]`` is a dummy entry holding the snapshot's index and term, so that
    ``term(snapshot index)`` works after compaction.
    """

    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard_state = EMPTY_HARD_STATE
        self._snapshot = Snapshot(SnapshotMeta(conf_state=conf_state or ConfState()))
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- the read-only Storage protocol ---------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.meta.conf_state

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise Compacted(f"index {i} is compacted (first kept {offset + 1})")
        if i - offset >= len(self._ents):
            raise Unavailable(f"index {i} is beyond the last index {self.last_index()}")
        return self._ents[i - offset].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise Compacted(f"index {lo} is compacted (first kept {offset + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries up to {hi - 1} requested, last is {self.last_index()}")
        if lo >= hi:
            return []
        return limit_size(self._ents[lo - offset : hi - offset], max_bytes)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- the host's write API -------------------------------------------------------------------

    def hard_state(self) -> HardState:
        return self._hard_state

    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> None:
        """Persist a Ready's hard state and entries. Entries that conflict with the log's suffix
        replace it (Raft §5.3: a follower's conflicting entries are overwritten). Entries already
        compacted away are skipped. A save that would leave a gap changes nothing."""
        if entries:
            self.append(entries)
        if hard_state is not None:
            self._hard_state = hard_state

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        first = self.first_index()
        last = entries[-1].index
        if last < first:
            return  # all already compacted
        if entries[0].index < first:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise RaftError(
                f"missing log entry: last index {self.last_index()}, "
                f"appending at {entries[0].index}"
            )
        del self._ents[offset:]
        self._ents.extend(entries)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the log with a snapshot received from the leader (only if newer)."""
        if snap.meta.index <= self._snapshot.meta.index:
            return
        self._snapshot = snap
        self._ents = [Entry(term=snap.meta.term, index=snap.meta.index)]

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine at ``index`` (which must be applied)."""
        if index <= self._snapshot.meta.index:
            return self._snapshot
        if index > self.last_index():
            raise Unavailable(f"snapshot index {index} is beyond the last index")
        term = self.term(index)
        self._snapshot = Snapshot(SnapshotMeta(index=index, term=term, conf_state=conf_state), data)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Drop entries up to and including ``index`` (which must be covered by a snapshot)."""
        offset = self._ents[0].index
        if index <= offset:
            return
        if index > self.last_index():
            raise Unavailable(f"compact {index} is beyond the last index {self.last_index()}")
        head = self._ents[index - offset]
        self._ents = [Entry(term=head.term, index=head.index), *self._ents[index - offset + 1 :]]
