"""Watch hub: history, prefix, prev_kv, filters, cancel, compaction, progress, callbacks."""

from __future__ import annotations

from kv_harness import KV

from raftkv.kv import (
    DeleteRangeRequest,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    ResponseHeader,
    TxnRequest,
    WatchFilter,
    WatchResponse,
)

PUT, DELETE = EventType.PUT, EventType.DELETE


def kinds(resps: list[WatchResponse]) -> list[tuple[int, list[tuple[EventType, bytes, bytes]]]]:
    return [(r.header.revision, [(e.type, e.kv.key, e.kv.value) for e in r.events]) for r in resps]


def test_watch_future_events(kv: KV) -> None:
    wid, first = kv.m.hub.create(b"foo")
    assert first == [WatchResponse(ResponseHeader(revision=1), wid, created=True)]
    kv.put(b"foo", b"bar")
    kv.put(b"other", b"x")
    kv.delete(b"foo")
    got = kv.m.hub.drain(wid)
    assert got[0] == WatchResponse(
        ResponseHeader(revision=2), wid, events=(Event(PUT, KeyValue(b"foo", 2, 2, 1, b"bar")),)
    )
    # a DELETE event's kv has the key and mod_revision only
    assert got[1].events == (Event(DELETE, KeyValue(b"foo", 0, 4, 0)),)
    assert kv.m.hub.drain(wid) == []


def test_watch_from_an_old_revision_replays_history(kv: KV) -> None:
    kv.put(b"foo", b"1")  # 2
    kv.put(b"foo", b"2")  # 3
    kv.delete(b"foo")  # 4
    wid, resps = kv.m.hub.create(b"foo", start_revision=3, prev_kv=True)
    assert resps[0].created
    assert resps[1].events == (
        Event(PUT, KeyValue(b"foo", 2, 3, 2, b"2"), KeyValue(b"foo", 2, 2, 1, b"1")),
    )
    assert resps[2].events == (
        Event(DELETE, KeyValue(b"foo", 0, 4, 0), KeyValue(b"foo", 2, 3, 2, b"2")),
    )
    assert len(resps) == 3
    kv.put(b"foo", b"3")
    assert kinds(kv.m.hub.drain(wid)) == [(5, [(PUT, b"foo", b"3")])]


def test_prefix_watch_groups_one_revision(kv: KV) -> None:
    wid, _ = kv.m.hub.create(b"p/", b"p0")
    kv.ok(
        TxnRequest((), (PutRequest(b"p/b", b"1"), PutRequest(b"q", b"x"), PutRequest(b"p/a", b"2")))
    )
    kv.delete(b"p/", b"p0")
    expected = [
        (2, [(PUT, b"p/b", b"1"), (PUT, b"p/a", b"2")]),  # txn order
        (3, [(DELETE, b"p/a", b""), (DELETE, b"p/b", b"")]),  # key order
    ]
    assert kinds(kv.m.hub.drain(wid)) == expected
    # the same history replayed from revision 2 has the same order
    _, again = kv.m.hub.create(b"p/", b"p0", start_revision=2)
    assert kinds(again[1:]) == expected


def test_prev_kv_only_when_asked(kv: KV) -> None:
    plain, _ = kv.m.hub.create(b"k")
    with_prev, _ = kv.m.hub.create(b"k", prev_kv=True)
    kv.put(b"k", b"1")
    kv.put(b"k", b"2")
    assert all(e.prev_kv is None for r in kv.m.hub.drain(plain) for e in r.events)
    got = kv.m.hub.drain(with_prev)
    assert got[0].events[0].prev_kv is None
    assert got[1].events[0].prev_kv == KeyValue(b"k", 2, 2, 1, b"1")


def test_filters(kv: KV) -> None:
    noput, _ = kv.m.hub.create(b"k", filters=[WatchFilter.NOPUT])
    nodel, _ = kv.m.hub.create(b"k", filters=[WatchFilter.NODELETE])
    kv.put(b"k", b"1")
    kv.delete(b"k")
    assert kinds(kv.m.hub.drain(noput)) == [(3, [(DELETE, b"k", b"")])]
    assert kinds(kv.m.hub.drain(nodel)) == [(2, [(PUT, b"k", b"1")])]


def test_cancel(kv: KV) -> None:
    wid, _ = kv.m.hub.create(b"k")
    assert kv.m.hub.cancel(wid) == WatchResponse(ResponseHeader(revision=1), wid, canceled=True)
    assert kv.m.hub.cancel(wid) is None
    kv.put(b"k")
    assert kv.m.hub.drain(wid) == []


def test_watch_at_a_compacted_revision_is_canceled(kv: KV) -> None:
    kv.put(b"k", b"1")  # 2
    kv.put(b"k", b"2")  # 3
    kv.put(b"k", b"3")  # 4
    kv.compact(3)
    wid, resps = kv.m.hub.create(b"k", start_revision=2)
    assert resps == [
        WatchResponse(ResponseHeader(revision=4), wid, created=True),
        WatchResponse(ResponseHeader(revision=4), wid, canceled=True, compact_revision=3),
    ]
    assert wid not in kv.m.hub.watches
    # at the compacted revision itself the watch works
    _, ok = kv.m.hub.create(b"k", start_revision=3)
    assert kinds(ok[1:]) == [(3, [(PUT, b"k", b"2")]), (4, [(PUT, b"k", b"3")])]


def test_progress_and_callback(kv: KV) -> None:
    seen: list[WatchResponse] = []
    wid, _ = kv.m.hub.create(b"a", b"\x00", callback=seen.append)
    kv.put(b"b", b"1")
    kv.ok(DeleteRangeRequest(b"nothing"))  # no revision, no event
    assert kinds(seen) == [(2, [(PUT, b"b", b"1")])]
    assert kv.m.hub.drain(wid) == []
    assert kv.m.hub.progress(wid) == WatchResponse(ResponseHeader(revision=2), wid)
    assert kv.m.hub.progress(999) is None


def test_a_future_start_revision_waits(kv: KV) -> None:
    wid, first = kv.m.hub.create(b"k", start_revision=3)
    assert len(first) == 1
    kv.put(b"k", b"1")  # 2: before the start
    kv.put(b"k", b"2")  # 3
    assert kinds(kv.m.hub.drain(wid)) == [(3, [(PUT, b"k", b"2")])]
