"""The watch hub: watches on keys or ranges, fed by the store as each write transaction applies.

Events are grouped by revision: one :class:`WatchResponse` per revision and watch, holding every
event of that revision in the range (after filters), in the order the transaction made them.

No threads, no I/O: a consumer either polls :meth:`WatchHub.drain` or registers a callback at
:meth:`WatchHub.create`, which is called synchronously from ``apply``; an asyncio server passes
``queue.put_nowait`` and awaits the queue. Watches are local to a replica and are not part of a
snapshot; after ``restore`` the hub re-syncs each watch from the restored history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from raftkv.kv.mvcc import MVCCStore
from raftkv.kv.types import Event, EventType, ResponseHeader, WatchFilter, WatchResponse

WatchCallback = Callable[[WatchResponse], None]


class Watch:
    """One watch. Invariant: every event below ``next_rev`` has been delivered or filtered."""

    __slots__ = ("callback", "filters", "id", "key", "next_rev", "prev_kv", "queue", "range_end")

    def __init__(
        self,
        watch_id: int,
        key: bytes,
        range_end: bytes,
        next_rev: int,
        prev_kv: bool,
        filters: frozenset[WatchFilter],
        callback: WatchCallback | None,
    ) -> None:
        self.id = watch_id
        self.key = key
        self.range_end = range_end
        self.next_rev = next_rev
        self.prev_kv = prev_kv
        self.filters = filters
        self.callback = callback
        self.queue: deque[WatchResponse] = deque()

    def matches(self, key: bytes) -> bool:
        if not self.range_end:
            return key == self.key
        if self.range_end == b"\x00":
            return key >= self.key
        return self.key <= key < self.range_end

    def select(self, events: Iterable[Event]) -> tuple[Event, ...]:
        out: list[Event] = []
        for ev in events:
            if not self.matches(ev.kv.key):
                continue
            if ev.type == EventType.PUT and WatchFilter.NOPUT in self.filters:
                continue
            if ev.type == EventType.DELETE and WatchFilter.NODELETE in self.filters:
                continue
            out.append(ev if self.prev_kv else Event(ev.type, ev.kv, None))
        return tuple(out)


class WatchHub:
    """All watches of one replica."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.watches: dict[int, Watch] = {}
        self._next_id = 0
        store.listeners.append(self._on_commit)

    def _header(self) -> ResponseHeader:
        return ResponseHeader(revision=self.store.rev)

    def create(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        callback: WatchCallback | None = None,
    ) -> tuple[int, list[WatchResponse]]:
        """Start watching; returns the watch id and its first responses.

        The first response has ``created=True``. Events from ``start_revision`` (0 = only future
        ones) up to the current revision follow, one response per revision. A start below the
        compacted revision yields instead a response with ``compact_revision`` set and
        ``canceled=True``, and the watch is gone (as etcd). Later responses go to ``callback`` if
        given, else into the queue that :meth:`drain` empties.
        """
        wid = self._next_id
        self._next_id += 1
        start = start_revision if start_revision > 0 else self.store.rev + 1
        w = Watch(wid, key, range_end, start, prev_kv, frozenset(filters), callback)
        out = [WatchResponse(self._header(), wid, created=True)]
        if start < self.store.compact_rev:
            out.append(self._compacted(w))
            return wid, out
        self.watches[wid] = w
        out.extend(self._catch_up(w))
        return wid, out

    def cancel(self, watch_id: int) -> WatchResponse | None:
        """Stop a watch; returns its ``canceled`` response, or None if there is no such watch."""
        if self.watches.pop(watch_id, None) is None:
            return None
        return WatchResponse(self._header(), watch_id, canceled=True)

    def drain(self, watch_id: int) -> list[WatchResponse]:
        """Every queued response of the watch, oldest first (empty for an unknown id)."""
        w = self.watches.get(watch_id)
        if w is None:
            return []
        out = list(w.queue)
        w.queue.clear()
        return out

    def progress(self, watch_id: int) -> WatchResponse | None:
        """A progress notification: no events, the header carries the current revision."""
        if watch_id not in self.watches:
            return None
        return WatchResponse(self._header(), watch_id)

    def resync(self) -> None:
        """After a restore: deliver what each watch missed, or cancel it if that was compacted."""
        for w in list(self.watches.values()):
            if w.next_rev < self.store.compact_rev:
                del self.watches[w.id]
                self._deliver(w, self._compacted(w))
            else:
                for resp in self._catch_up(w):
                    self._deliver(w, resp)

    # --- internals -----------------------------------------------------------------------------

    def _compacted(self, w: Watch) -> WatchResponse:
        return WatchResponse(
            self._header(), w.id, canceled=True, compact_revision=self.store.compact_rev
        )

    def _catch_up(self, w: Watch) -> list[WatchResponse]:
        out: list[WatchResponse] = []
        if w.next_rev > self.store.rev:
            return out  # nothing to replay: skip scanning the range
        for rev, events in self.store.events_since(w.key, w.range_end, w.next_rev):
            selected = w.select(events)
            if selected:
                out.append(WatchResponse(ResponseHeader(revision=rev), w.id, events=selected))
        w.next_rev = max(w.next_rev, self.store.rev + 1)
        return out

    def _deliver(self, w: Watch, resp: WatchResponse) -> None:
        if w.callback is not None:
            w.callback(resp)
        else:
            w.queue.append(resp)

    def _on_commit(self, rev: int, events: list[Event]) -> None:
        if not self.watches:  # every write comes here: no list for no watcher
            return
        for w in list(self.watches.values()):
            if rev < w.next_rev:
                continue
            w.next_rev = rev + 1
            selected = w.select(events)
            if selected:
                self._deliver(w, WatchResponse(ResponseHeader(revision=rev), w.id, events=selected))
