"""The multi-version store: revisions, per-key history, range, write transactions, compaction.

Theory of operation (etcd 3.4's ``mvcc`` package, kept in memory):

- The store's ``rev`` starts at 1. A write transaction that changes something (a put, a delete
  that deletes a key) adds exactly one revision, shared by all its changes; each change gets a
  sub-revision, its position in the transaction. A read-only transaction adds none.
- Every key owns a :class:`KeyHistory`: its records in revision order, a live ``KeyValue`` or a
  tombstone (``version == 0``). The keys are indexed by a ``SortedDict``, so a range is a slice.
- Reading at revision R takes each key's last record at or below R. Compacting at C drops, per
  key, every record below its last record at or below C, and that record too if it is a
  tombstone; a key with no record left leaves the index. Reads below C then fail with Compacted.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable, Iterator

from sortedcontainers import SortedDict  # type: ignore[import-untyped]

from raftkv.kv.errors import Compacted, FutureRev
from raftkv.kv.types import Event, EventType, KeyValue

_RECORD = struct.Struct("<8q")  # a record's numbers, then its key and value lengths

CommitListener = Callable[[int, list[Event]], None]
"""Called with (revision, events in sub-revision order) after each write transaction."""


class KeyHistory:
    """The records of one key. Invariant: ``revs`` ascending; the three lists have one length."""

    __slots__ = ("kvs", "revs", "subs")

    def __init__(self) -> None:
        self.revs: list[int] = []
        self.subs: list[int] = []
        self.kvs: list[KeyValue] = []

    def at(self, rev: int) -> KeyValue | None:
        """The live value at ``rev``, or None if the key did not exist then."""
        i = bisect.bisect_right(self.revs, rev) - 1
        if i < 0:
            return None
        kv = self.kvs[i]
        return kv if kv.version else None

    def latest(self) -> KeyValue | None:
        return self.kvs[-1] if self.kvs and self.kvs[-1].version else None

    def append(self, rev: int, sub: int, kv: KeyValue) -> None:
        self.revs.append(rev)
        self.subs.append(sub)
        self.kvs.append(kv)

    def compact(self, rev: int) -> bool:
        """Drop what no read at or above ``rev`` can see. Returns True if nothing is left."""
        i = bisect.bisect_right(self.revs, rev) - 1
        if i >= 0 and not self.kvs[i].version:
            i += 1  # a tombstone at or below the compaction point is dropped too
        if i > 0:
            del self.revs[:i], self.subs[:i], self.kvs[:i]
        return not self.revs

    def events_since(self, start: int) -> Iterator[tuple[int, int, Event]]:
        """(rev, sub, event) of every record at or above ``start``."""
        first = bisect.bisect_left(self.revs, start)
        for j in range(first, len(self.revs)):
            kv = self.kvs[j]
            prev = self.kvs[j - 1] if j > 0 and self.kvs[j - 1].version else None
            kind = EventType.PUT if kv.version else EventType.DELETE
            yield self.revs[j], self.subs[j], Event(kind, kv, prev)


def is_range(range_end: bytes) -> bool:
    return range_end != b""


class MVCCStore:
    """An in-memory etcd 3.4 MVCC store. Pure: only committed entries change it."""

    def __init__(self) -> None:
        self.index: SortedDict = SortedDict()  # bytes -> KeyHistory
        self.rev = 1
        """The current revision. Invariant: compact_rev <= rev."""
        self.compact_rev = 0
        self.listeners: list[CommitListener] = []

    # --- reads -------------------------------------------------------------------------------

    def keys_in(self, key: bytes, range_end: bytes) -> Iterator[bytes]:
        """Indexed keys of ``key`` alone (empty end), ``[key, range_end)``, or ``key..`` (``\\x00``)."""
        if not range_end:
            if key in self.index:
                yield key
            return
        if range_end == b"\x00":
            yield from self.index.irange(minimum=key)
        elif range_end > key:
            yield from self.index.irange(minimum=key, maximum=range_end, inclusive=(True, False))

    def check_rev(self, revision: int, current: int | None = None) -> int:
        """The revision a read at ``revision`` (0 = current) sees, or Compacted / FutureRev."""
        cur = self.rev if current is None else current
        if revision <= 0:
            return cur
        if revision > cur:
            raise FutureRev()
        if revision < self.compact_rev:
            raise Compacted()
        return revision

    def range_at(self, key: bytes, range_end: bytes, rev: int) -> list[KeyValue]:
        """Every live kv in the range at ``rev`` (already checked), in key order."""
        out: list[KeyValue] = []
        for k in self.keys_in(key, range_end):
            kv = self.index[k].at(rev)
            if kv is not None:
                out.append(kv)
        return out

    def get(self, key: bytes) -> KeyValue | None:
        h: KeyHistory | None = self.index.get(key)
        return None if h is None else h.at(self.rev)

    def events_since(
        self, key: bytes, range_end: bytes, start: int
    ) -> list[tuple[int, list[Event]]]:
        """History of the range from revision ``start``: (revision, events), ascending."""
        found: list[tuple[int, int, Event]] = []
        for k in self.keys_in(key, range_end):
            found.extend(self.index[k].events_since(start))
        found.sort(key=lambda t: (t[0], t[1]))
        grouped: list[tuple[int, list[Event]]] = []
        for rev, _, ev in found:
            if grouped and grouped[-1][0] == rev:
                grouped[-1][1].append(ev)
            else:
                grouped.append((rev, [ev]))
        return grouped

    def hash_kv(self, revision: int) -> tuple[int, int]:
        """(CRC-32 of the history up to ``revision``, that revision): etcd's HashKV, at once.
        See ``KVHasher``; a server hashes a chunk at a time instead."""
        h = KVHasher(self, revision)
        while not h.step(1 << 62):
            pass
        return h.crc, h.rev

    # --- writes ------------------------------------------------------------------------------

    def begin(self) -> WriteTxn:
        return WriteTxn(self)

    def compact(self, revision: int) -> None:
        """Compact history below ``revision``: Compacted if not above the last, FutureRev if ahead."""
        if revision <= self.compact_rev:
            raise Compacted()
        if revision > self.rev:
            raise FutureRev()
        self.compact_rev = revision
        empty = [k for k, h in self.index.items() if h.compact(revision)]
        for k in empty:
            del self.index[k]


class WriteTxn:
    """One write transaction: every change lands at ``begin_rev + 1``; ``end`` publishes it."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.begin_rev = store.rev
        self.events: list[Event] = []

    @property
    def rev(self) -> int:
        """The revision reads inside this transaction see (its own writes included)."""
        return self.begin_rev + 1 if self.events else self.begin_rev

    def get(self, key: bytes) -> KeyValue | None:
        h: KeyHistory | None = self.store.index.get(key)
        return None if h is None else h.at(self.rev)

    def put(self, key: bytes, value: bytes, lease: int) -> tuple[KeyValue, KeyValue | None]:
        """Write ``key``; returns (new kv, previous kv or None)."""
        rev = self.begin_rev + 1
        h: KeyHistory | None = self.store.index.get(key)
        if h is None:
            h = self.store.index[key] = KeyHistory()
        prev = h.at(self.rev)
        if prev is None:
            kv = KeyValue(key, rev, rev, 1, value, lease)
        else:
            kv = KeyValue(key, prev.create_revision, rev, prev.version + 1, value, lease)
        h.append(rev, len(self.events), kv)
        self.events.append(Event(EventType.PUT, kv, prev))
        return kv, prev

    def delete_range(self, key: bytes, range_end: bytes) -> list[KeyValue]:
        """Tombstone every live key of the range; returns their previous kvs in key order."""
        deleted = self.store.range_at(key, range_end, self.rev)
        rev = self.begin_rev + 1
        for prev in deleted:
            tomb = KeyValue(prev.key, 0, rev, 0, b"", 0)
            self.store.index[prev.key].append(rev, len(self.events), tomb)
            self.events.append(Event(EventType.DELETE, tomb, prev))
        return deleted

    def end(self) -> int:
        """Publish the changes (one new revision if any) and return the store's revision."""
        if self.events:
            self.store.rev = self.begin_rev + 1
            for listener in list(self.store.listeners):
                listener(self.store.rev, self.events)
        return self.store.rev


class KVHasher:
    """etcd's HashKV over ``store``: a CRC-32 of its history up to ``revision``, a chunk of keys
    per ``step`` so that a large store does not stall an event loop between the chunks.

    Covers, key by key in key order, every record kept (see ``MVCCStore.compact``) at or below
    the revision: revision, sub-revision, create and mod revision, version, lease, and the key
    and value. Members that applied the same log agree on it, which is what it is for (etcd's
    ``endpoint hashkv --cluster``). ``revision`` 0 means the current one; at or below the
    compaction point it fails with Compacted (as etcd's does), above the current one with
    FutureRev; below 0 it hashes nothing.

    Writes between steps do not change the result (they add records above the revision, and
    keys that come later have none below it); a compaction between steps does: ``stale``
    then says to start again.
    """

    def __init__(self, store: MVCCStore, revision: int) -> None:
        if 0 < revision <= store.compact_rev:
            raise Compacted()
        # a negative revision hashes nothing, as etcd's does (its hash of an empty range)
        self.rev = store.check_rev(revision) if revision >= 0 else -1
        self.crc = 0
        self._store = store
        self._compact_rev = store.compact_rev
        self._keys: list[bytes] = list(store.index.keys())
        self._pos = 0

    @property
    def stale(self) -> bool:
        """Whether the store was compacted since this hash began."""
        return self._store.compact_rev != self._compact_rev

    def step(self, keys: int) -> bool:
        """Hash up to ``keys`` more keys; True once every key is hashed (``crc`` is the hash)."""
        index, rev, pack, crc32 = self._store.index, self.rev, _RECORD.pack, zlib.crc32
        crc = self.crc
        stop = min(self._pos + keys, len(self._keys))
        for key in self._keys[self._pos : stop]:
            h = index.get(key)
            if h is None:
                continue
            for j in range(bisect.bisect_right(h.revs, rev)):
                kv = h.kvs[j]
                head = pack(
                    h.revs[j], h.subs[j], kv.create_revision, kv.mod_revision, kv.version,
                    kv.lease, len(key), len(kv.value),
                )  # fmt: skip
                crc = crc32(kv.value, crc32(key, crc32(head, crc)))
        self.crc, self._pos = crc, stop
        return stop == len(self._keys)
