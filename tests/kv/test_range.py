"""Range options: range_end, prefix, from-key, limit/more/count, sort, keys_only, filters."""

from __future__ import annotations

import pytest
from kv_harness import KV

from raftkv.kv import (
    InvalidSortOption,
    KeyNotFound,
    LeaseNotFound,
    LeaseProvided,
    PutRequest,
    SortOrder,
    SortTarget,
    ValueProvided,
)


@pytest.fixture
def filled(kv: KV) -> KV:
    # rev 2..6: a=1, b=22, c=3, d=4 (d twice), ab=5
    kv.put(b"a", b"1")
    kv.put(b"b", b"22")
    kv.put(b"c", b"3")
    kv.put(b"d", b"x")
    kv.put(b"d", b"4")
    kv.put(b"ab", b"5")
    return kv


def test_single_key_range_prefix_and_from_key(filled: KV) -> None:
    kv = filled
    assert kv.keys(b"a") == [b"a"]
    assert kv.keys(b"a", b"c") == [b"a", b"ab", b"b"]
    assert kv.keys(b"a", b"b") == [b"a", b"ab"]  # etcdctl get --prefix a
    assert kv.keys(b"b", b"\x00") == [b"b", b"c", b"d"]  # --from-key
    assert kv.keys(b"\x00", b"\x00") == [b"a", b"ab", b"b", b"c", b"d"]
    assert kv.keys(b"c", b"a") == []  # end before start


def test_limit_more_and_count(filled: KV) -> None:
    r = filled.get(b"\x00", b"\x00", limit=2)
    assert [kv.key for kv in r.kvs] == [b"a", b"ab"]
    assert r.more is True and r.count == 5
    r = filled.get(b"\x00", b"\x00", limit=5)
    assert r.more is False and r.count == 5 and len(r.kvs) == 5


def test_count_only_and_keys_only(filled: KV) -> None:
    r = filled.get(b"a", b"c", count_only=True)
    assert r.kvs == () and r.count == 3
    r = filled.get(b"d", keys_only=True)
    assert r.kvs[0].value == b"" and r.kvs[0].key == b"d" and r.kvs[0].version == 2


def test_sort_orders(filled: KV) -> None:
    kv = filled
    everything = (b"\x00", b"\x00")
    desc = kv.get(*everything, sort_order=SortOrder.DESCEND)
    assert [x.key for x in desc.kvs] == [b"d", b"c", b"b", b"ab", b"a"]
    # a non-key target with order NONE sorts ascending (etcd)
    by_mod = kv.get(*everything, sort_target=SortTarget.MOD)
    assert [x.key for x in by_mod.kvs] == [b"a", b"b", b"c", b"d", b"ab"]
    by_value = kv.get(*everything, sort_target=SortTarget.VALUE, sort_order=SortOrder.DESCEND)
    assert [x.value for x in by_value.kvs] == [b"5", b"4", b"3", b"22", b"1"]
    by_version = kv.get(*everything, sort_target=SortTarget.VERSION, sort_order=SortOrder.DESCEND)
    assert by_version.kvs[0].key == b"d"
    by_create = kv.get(
        *everything, sort_target=SortTarget.CREATE, sort_order=SortOrder.DESCEND, limit=2
    )
    assert [x.key for x in by_create.kvs] == [b"ab", b"d"]
    assert by_create.more and by_create.count == 5


def test_invalid_sort_option(filled: KV) -> None:
    with pytest.raises(InvalidSortOption):
        filled.get(b"a", sort_order=7)


def test_revision_filters(filled: KV) -> None:
    kv = filled
    everything = (b"\x00", b"\x00")
    assert [x.key for x in kv.get(*everything, min_mod_revision=5).kvs] == [b"ab", b"d"]
    assert [x.key for x in kv.get(*everything, max_mod_revision=3).kvs] == [b"a", b"b"]
    assert [x.key for x in kv.get(*everything, min_create_revision=5).kvs] == [b"ab", b"d"]
    r = kv.get(*everything, max_create_revision=4, min_create_revision=3)
    assert [x.key for x in r.kvs] == [b"b", b"c"]
    assert r.count == 5  # count is the range's size before filters, as etcd


def test_range_at_old_revision(filled: KV) -> None:
    r = filled.get(b"\x00", b"\x00", revision=4)
    assert [(x.key, x.value) for x in r.kvs] == [(b"a", b"1"), (b"b", b"22"), (b"c", b"3")]
    assert r.header.revision == 7


def test_put_ignore_value_and_ignore_lease(kv: KV) -> None:
    assert isinstance(kv.apply(PutRequest(b"k", ignore_value=True)), KeyNotFound)
    assert isinstance(kv.apply(PutRequest(b"k", ignore_lease=True)), KeyNotFound)
    assert isinstance(kv.apply(PutRequest(b"k", b"v", ignore_value=True)), ValueProvided)
    assert isinstance(kv.apply(PutRequest(b"k", ignore_lease=True, lease=5)), LeaseProvided)
    assert isinstance(kv.apply(PutRequest(b"k", b"v", lease=99)), LeaseNotFound)
    assert kv.rev == 1  # nothing was written
    kv.grant(60, 7)
    kv.put(b"k", b"v", lease=7)
    kv.ok(PutRequest(b"k", ignore_value=True, lease=7))
    got = kv.one(b"k")
    assert got is not None and got.value == b"v" and got.version == 2 and got.lease == 7
    kv.ok(PutRequest(b"k", b"w", ignore_lease=True))
    got = kv.one(b"k")
    assert got is not None and got.value == b"w" and got.lease == 7 and got.mod_revision == 4
