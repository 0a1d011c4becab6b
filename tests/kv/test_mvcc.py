"""Revisions, versions, history and compaction, as etcdctl shows them on a fresh etcd 3.4."""

from __future__ import annotations

import pytest
from kv_harness import KV

from raftkv.kv import (
    Compacted,
    CompactionResponse,
    DeleteRangeRequest,
    EmptyKey,
    FutureRev,
    KeyValue,
    RangeRequest,
)


def test_a_fresh_store_is_at_revision_1(kv: KV) -> None:
    assert kv.rev == 1
    r = kv.get(b"foo")
    assert r.header.revision == 1 and r.kvs == () and r.count == 0


def test_put_put_delete_revisions_and_versions(kv: KV) -> None:
    r = kv.put(b"foo", b"bar")
    assert r.header.revision == 2 and r.prev_kv is None
    assert kv.one(b"foo") == KeyValue(b"foo", 2, 2, 1, b"bar", 0)

    r = kv.put(b"foo", b"baz", prev_kv=True)
    assert r.header.revision == 3
    assert r.prev_kv == KeyValue(b"foo", 2, 2, 1, b"bar", 0)
    assert kv.one(b"foo") == KeyValue(b"foo", 2, 3, 2, b"baz", 0)

    d = kv.delete(b"foo", prev_kv=True)
    assert d.header.revision == 4 and d.deleted == 1
    assert d.prev_kvs == (KeyValue(b"foo", 2, 3, 2, b"baz", 0),)
    assert kv.one(b"foo") is None

    # history: get --rev
    assert kv.one(b"foo", revision=2) == KeyValue(b"foo", 2, 2, 1, b"bar", 0)
    assert kv.one(b"foo", revision=3) == KeyValue(b"foo", 2, 3, 2, b"baz", 0)
    assert kv.one(b"foo", revision=1) is None

    # re-created: version restarts at 1 with a new create_revision
    kv.put(b"foo", b"again")
    assert kv.one(b"foo") == KeyValue(b"foo", 5, 5, 1, b"again", 0)


def test_a_delete_of_nothing_adds_no_revision(kv: KV) -> None:
    kv.put(b"a")
    d = kv.delete(b"zzz")
    assert d.deleted == 0 and d.header.revision == 2 and kv.rev == 2


def test_a_range_read_through_the_log_adds_no_revision(kv: KV) -> None:
    kv.put(b"a", b"1")
    r = kv.ok(RangeRequest(b"a"))
    assert r.header.revision == 2 and kv.rev == 2


def test_delete_range_deletes_all_in_one_revision(kv: KV) -> None:
    for k in (b"a", b"b", b"c", b"d"):
        kv.put(k, k)
    d = kv.delete(b"b", b"d")
    assert d.deleted == 2 and d.header.revision == 6
    assert kv.keys(b"a", b"\x00") == [b"a", b"d"]
    d = kv.delete(b"\x00", b"\x00")
    assert d.deleted == 2 and d.header.revision == 7
    assert kv.get(b"\x00", b"\x00").count == 0


def test_revision_errors(kv: KV) -> None:
    kv.put(b"foo", b"1")
    with pytest.raises(FutureRev) as e:
        kv.get(b"foo", revision=3)
    assert str(e.value) == "etcdserver: mvcc: required revision is a future revision"
    assert kv.get(b"foo", revision=2).kvs[0].value == b"1"


def test_compaction(kv: KV) -> None:
    kv.put(b"foo", b"bar")  # 2
    kv.put(b"foo", b"baz")  # 3
    kv.put(b"other", b"x")  # 4
    kv.delete(b"other")  # 5
    r = kv.compact(3)
    assert isinstance(r, CompactionResponse) and r.header.revision == 5
    assert kv.rev == 5 and kv.m.compact_revision == 3
    with pytest.raises(Compacted) as e:
        kv.get(b"foo", revision=2)
    assert str(e.value) == "etcdserver: mvcc: required revision has been compacted"
    # at the compacted revision and above, reads still work
    assert kv.one(b"foo", revision=3) == KeyValue(b"foo", 2, 3, 2, b"baz", 0)
    assert kv.one(b"other", revision=4) == KeyValue(b"other", 4, 4, 1, b"x", 0)
    # compacting again at or below: Compacted; beyond the current revision: FutureRev
    assert isinstance(kv.compact(3), Compacted)
    assert isinstance(kv.compact(2), Compacted)
    assert isinstance(kv.compact(6), FutureRev)
    # compacting past the tombstone drops the key entirely
    assert kv.compact(5) == CompactionResponse(r.header.__class__(revision=5))
    assert b"other" not in kv.m.store.index
    assert kv.one(b"foo") == KeyValue(b"foo", 2, 3, 2, b"baz", 0)


def test_compaction_keeps_latest_version_at_or_below(kv: KV) -> None:
    kv.put(b"k", b"v1")  # 2
    kv.put(b"unrelated")  # 3
    kv.put(b"k", b"v2")  # 4
    kv.compact(3)
    assert kv.one(b"k", revision=3) == KeyValue(b"k", 2, 2, 1, b"v1", 0)
    assert kv.one(b"k") == KeyValue(b"k", 2, 4, 2, b"v2", 0)


def test_empty_key_is_refused(kv: KV) -> None:
    assert isinstance(kv.apply(DeleteRangeRequest(b"")), EmptyKey)
    with pytest.raises(EmptyKey):
        kv.get(b"")
