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
from raftkv.kv.mvcc import KVHasher


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


def test_hash_kv_is_the_same_for_the_same_history_and_changes_with_it() -> None:
    a, b, c = KV(), KV(), KV()
    for kv in (a, b, c):
        kv.put(b"k", b"1")  # 2
        kv.put(b"j", b"2")  # 3
    c.put(b"k", b"other")  # 4 in c only
    a.put(b"k", b"3")  # 4
    b.put(b"k", b"3")
    ha, rev = a.m.store.hash_kv(0)
    assert rev == 4 and b.m.store.hash_kv(0) == (ha, 4)
    assert c.m.store.hash_kv(0)[0] != ha  # one value differs
    assert c.m.store.hash_kv(3) == a.m.store.hash_kv(3)  # the same history up to 3
    assert a.m.store.hash_kv(3)[0] != ha
    a.delete(b"j")  # 5: a tombstone is history too
    assert a.m.store.hash_kv(0)[0] not in (ha, a.m.store.hash_kv(4)[0])
    assert a.m.store.hash_kv(4) == (ha, 4)


def test_hash_kv_revision_errors_and_compaction() -> None:
    kv = KV()
    kv.put(b"k", b"1")  # 2
    kv.put(b"k", b"2")  # 3
    kv.put(b"j", b"3")  # 4
    before = kv.m.store.hash_kv(4)
    with pytest.raises(FutureRev):
        kv.m.store.hash_kv(5)
    assert kv.m.store.hash_kv(-1)[0] == KV().m.store.hash_kv(0)[0]  # nothing, as etcd
    kv.compact(3)
    with pytest.raises(Compacted):  # at the compaction point too, as etcd's HashKV
        kv.m.store.hash_kv(3)
    # what compaction at 3 dropped (k's record at 2) is below what any read at 4 sees: the
    # history up to 4 that is kept hashes the same on every member that compacted at 3
    twin = KV()
    twin.put(b"k", b"1")
    twin.put(b"k", b"2")
    twin.put(b"j", b"3")
    twin.compact(3)
    assert twin.m.store.hash_kv(4) == kv.m.store.hash_kv(4)
    assert kv.m.store.hash_kv(4) != before


def test_hash_kv_a_chunk_at_a_time_ignores_later_writes_and_notices_compaction() -> None:
    kv = KV()
    for i in range(50):
        kv.put(b"k%02d" % (i % 17), b"v%d" % i)
    rev = kv.rev
    whole, _ = kv.m.store.hash_kv(0)
    hasher = KVHasher(kv.m.store, 0)
    steps = 0
    while not hasher.step(3):
        steps += 1
        kv.put(b"k%02d" % steps, b"later")  # writes between the steps: above the revision
        kv.put(b"a-new-key", b"x")
    assert hasher.rev == rev and hasher.crc == whole and steps == 5
    assert not hasher.stale
    again = KVHasher(kv.m.store, rev)
    again.step(3)
    kv.compact(rev - 10)
    assert again.stale  # the caller starts again
