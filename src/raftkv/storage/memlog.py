"""The in-memory index of the log: what ``DiskStorage`` reads from, never the disk.

It answers exactly like ``raftkv.raft.storage.MemoryStorage`` (same errors, same messages): the
entries after the compaction point ``base`` in a list, so ``term`` and ``entries`` are a list
index away. ``base`` plays the role of MemoryStorage's dummy entry ``_ents[0]``.
"""

from __future__ import annotations

from collections.abc import Sequence

from raftkv.raft.errors import Compacted, RaftError, Unavailable
from raftkv.raft.storage import limit_size
from raftkv.raft.types import Entry
from raftkv.storage.codec import LogBase


class MemLog:
    """Entries ``base.index + 1 .. last_index()``, consecutive.

    Invariant: ``ents[k].index == base.index + 1 + k``.
    """

    def __init__(self, base: LogBase, ents: list[Entry]) -> None:
        self.base = base
        self.ents = ents

    def first_index(self) -> int:
        return self.base.index + 1

    def last_index(self) -> int:
        return self.base.index + len(self.ents)

    def term(self, i: int) -> int:
        offset = self.base.index
        if i < offset:
            raise Compacted(f"index {i} is compacted (first kept {offset + 1})")
        if i - offset > len(self.ents):
            raise Unavailable(f"index {i} is beyond the last index {self.last_index()}")
        return self.base.term if i == offset else self.ents[i - offset - 1].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        offset = self.base.index
        if lo <= offset:
            raise Compacted(f"index {lo} is compacted (first kept {offset + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries up to {hi - 1} requested, last is {self.last_index()}")
        if lo >= hi:
            return []
        return limit_size(self.ents[lo - offset - 1 : hi - offset - 1], max_bytes)

    def trim(self, entries: Sequence[Entry], last_index: int) -> Sequence[Entry]:
        """``entries`` without what is compacted, checked to follow a log ending at
        ``last_index`` (MemoryStorage.append's rules).

        Raises:
            RaftError: the entries would leave a gap.
        """
        if not entries:
            return entries
        first = self.first_index()
        if entries[-1].index < first:
            return ()  # all already compacted
        if entries[0].index < first:
            entries = entries[first - entries[0].index :]
        if entries[0].index > last_index + 1:
            raise RaftError(
                f"missing log entry: last index {last_index}, appending at {entries[0].index}"
            )
        return entries

    def append(self, entries: Sequence[Entry]) -> None:
        """Append trimmed ``entries``, replacing any conflicting suffix (Raft §5.3)."""
        if entries:
            del self.ents[entries[0].index - self.base.index - 1 :]
            self.ents.extend(entries)

    def compact(self, index: int) -> None:
        """Drop entries up to and including ``index`` (``base.index < index <= last``)."""
        k = index - self.base.index
        self.base = LogBase(index, self.ents[k - 1].term)
        del self.ents[:k]

    def reset(self, base: LogBase) -> None:
        self.base = base
        self.ents = []
