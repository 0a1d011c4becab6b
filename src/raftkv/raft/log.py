"""The Raft log as the core sees it: stable entries in ``Storage`` plus an unstable tail.

::

    snapshot/first_index ... applied <= committed ... stable_last | unstable entries ... last_index
    └──────────── Storage (persisted) ────────────────────────────┘└── Unstable (in memory) ──┘

Unstable entries are handed to the host in a Ready and become stable when it is advanced. A
snapshot received from the leader is unstable until the host has installed it.
Invariant: applied <= committed <= last_index().
"""

from __future__ import annotations

from collections.abc import Sequence

from raftkv.raft.errors import Compacted, RaftError, Unavailable
from raftkv.raft.storage import Storage, limit_size
from raftkv.raft.types import Entry, Snapshot


class Unstable:
    """Entries (and possibly a snapshot) not yet persisted. ``offset`` is the index of
    ``entries[0]``: everything below it is stable or covered by ``snapshot``."""

    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        return self.snapshot.meta.index + 1 if self.snapshot is not None else None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.meta.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            if self.snapshot is not None and self.snapshot.meta.index == i:
                return self.snapshot.meta.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (index, term) were persisted; drop them unless since overwritten."""
        t = self.maybe_term(index)
        if t is None or t != term or index < self.offset:
            return
        del self.entries[: index + 1 - self.offset]
        self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.snapshot is not None and self.snapshot.meta.index == index:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.meta.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents: Sequence[Entry]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # Raft §5.3: the new entries replace everything unstable from ``after`` on.
            self.offset = after
            self.entries = list(ents)
        else:
            del self.entries[after - self.offset :]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        return self.entries[lo - self.offset : hi - self.offset]


class RaftLog:
    """Stable storage plus the unstable tail, with the commit and apply points."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        # The snapshot's index is committed and applied by definition.
        self.committed = first - 1
        self.applied = first - 1

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed} applied={self.applied} "
            f"unstable.offset={self.unstable.offset} len={len(self.unstable.entries)})"
        )

    # -- indexes and terms ----------------------------------------------------------------------

    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def stable_last_index(self) -> int:
        """The last index the host has persisted (what a leader may count for itself)."""
        if self.unstable.snapshot is not None:
            return min(self.storage.last_index(), self.unstable.offset - 1)
        return self.unstable.offset - 1

    def last_term(self) -> int:
        return self.term(self.last_index())

    def term(self, i: int) -> int:
        """The term of entry ``i``.

        Raises:
            Compacted: ``i`` is below the snapshot.
            Unavailable: ``i`` is beyond the last index.
        """
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        if i < self.first_index() - 1:
            raise Compacted(f"index {i} is compacted")
        if i > self.last_index():
            raise Unavailable(f"index {i} is beyond the last index {self.last_index()}")
        return self.storage.term(i)

    def term_or_zero(self, i: int) -> int:
        try:
            return self.term(i)
        except (Compacted, Unavailable):
            return 0

    def match_term(self, i: int, term: int) -> bool:
        return self.term_or_zero(i) == term if i >= 0 else False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """Raft §5.4.1: a candidate's log is at least as up-to-date as ours."""
        my_term = self.last_term()
        return term > my_term or (term == my_term and last_index >= self.last_index())

    # -- appending ------------------------------------------------------------------------------

    def find_conflict(self, ents: Sequence[Entry]) -> int:
        """The index of the first entry of ``ents`` that is new or conflicts, or 0."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest (i, term(i)) with i <= ``index`` and term(i) <= ``term``: the fast
        backtracking hint; one round trip skips a whole term of conflicting entries."""
        first = self.first_index() - 1
        while index > first:
            t = self.term_or_zero(index)
            if t <= term:
                return index, t
            index -= 1
        return index, self.term_or_zero(index)

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: Sequence[Entry]
    ) -> int | None:
        """Raft §5.3: append ``ents`` after (index, log_term) if our log has that entry.

        Returns the index of the last new entry, or None when the log-matching check fails.
        """
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise RaftError(f"entry {ci} conflicts with committed entry {self.committed}")
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: Sequence[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise RaftError(f"append after {after} is below committed {self.committed}")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    # -- commit and apply -----------------------------------------------------------------------

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise RaftError(f"commit {index} is beyond the last index {self.last_index()}")
            self.committed = index

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit ``max_index`` if it is an entry of ``term``.

        Raft §5.4.2: never commit a previous term's entry by counting replicas.
        """
        if max_index > self.committed and self.term_or_zero(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, index: int) -> None:
        if index == 0:
            return
        if index > self.committed or index < self.applied:
            raise RaftError(
                f"applied {index} out of range [{self.applied}, {self.committed}]"
            )
        self.applied = index

    def has_next_committed_entries(self) -> bool:
        return self.committed > max(self.applied, self.first_index() - 1)

    def next_committed_entries(self, max_bytes: int) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        if self.committed < lo:
            return []
        return self.slice(lo, self.committed + 1, max_bytes)

    # -- persistence ----------------------------------------------------------------------------

    def has_unstable(self) -> bool:
        return bool(self.unstable.entries) or self.unstable.snapshot is not None

    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def unstable_snapshot(self) -> Snapshot | None:
        return self.unstable.snapshot

    def stable_to(self, index: int, term: int) -> None:
        self.unstable.stable_to(index, term)

    def stable_snap_to(self, index: int) -> None:
        self.unstable.stable_snap_to(index)

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def restore(self, snap: Snapshot) -> None:
        """Raft §7: replace the log with a snapshot from the leader."""
        self.committed = snap.meta.index
        self.unstable.restore(snap)

    # -- reading --------------------------------------------------------------------------------

    def entries(self, lo: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries from ``lo`` to the end, at most ``max_bytes`` (but at least one)."""
        if lo > self.last_index():
            return []
        return self.slice(lo, self.last_index() + 1, max_bytes)

    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi) from storage and the unstable tail.

        Raises:
            Compacted: ``lo`` is below the first index.
        """
        if lo < self.first_index():
            raise Compacted(f"index {lo} is compacted (first {self.first_index()})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"slice up to {hi - 1} beyond last index {self.last_index()}")
        if lo >= hi:
            return []
        out: list[Entry] = []
        off = self.unstable.offset
        if lo < off:
            out = self.storage.entries(lo, min(hi, off), max_bytes)
            if len(out) < min(hi, off) - lo:
                return out  # limited by size
        if hi > off:
            out = out + self.unstable.slice(max(lo, off), hi)
        return limit_size(out, max_bytes)
