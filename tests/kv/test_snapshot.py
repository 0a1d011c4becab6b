"""Snapshot and restore: an identical store, and determinism across replicas (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kv_harness import KV

from raftkv.kv import (
    Command,
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    ExpireSessionsRequest,
    KeyNotFound,
    KVStateMachine,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)


def all_views(kv: KV) -> list[object]:
    """Every range at every readable revision, plus leases: what must match after a restore."""
    out: list[object] = [kv.rev, kv.m.compact_revision, kv.m.lease_leases()]
    for rev in range(max(kv.m.compact_revision, 1), kv.rev + 1):
        out.append(kv.get(b"\x00", b"\x00", revision=rev))
    for status in kv.m.lease_leases().leases:
        out.append(kv.m.lease_time_to_live(status.id, keys=True))
    return out


def test_snapshot_restore_gives_an_identical_store(kv: KV) -> None:
    kv.grant(60, 1)
    kv.put(b"a", b"1", lease=1)
    kv.put(b"b", b"1")
    kv.put(b"a", b"2", lease=1)
    kv.delete(b"b")
    kv.put(b"c", b"3")
    kv.compact(3)
    kv.apply(PutRequest(b"x", ignore_value=True), client_id=9, seq=1)  # a cached error
    kv.apply(PutRequest(b"y", b"1"), client_id=9, seq=2)
    data = kv.m.snapshot()

    other = KV(KVStateMachine())
    other.restore(data)
    assert all_views(other) == all_views(kv)
    assert other.m.snapshot() == data
    assert other.m.applied_index == kv.index
    # the restored session still answers the retry from its cache
    assert other.apply(PutRequest(b"y", b"1"), client_id=9, seq=2) == kv.apply(
        PutRequest(b"y", b"1"), client_id=9, seq=2
    )
    assert other.rev == kv.rev
    # and both keep going identically
    other.put(b"z")
    kv.put(b"z")
    assert other.m.snapshot() == kv.m.snapshot()


def test_a_cached_error_survives_a_snapshot(kv: KV) -> None:
    kv.apply(PutRequest(b"x", ignore_value=True), client_id=9, seq=1)
    other = KV()
    other.restore(kv.m.snapshot())
    kv.put(b"x")
    other.put(b"x")
    assert isinstance(
        other.apply(PutRequest(b"x", ignore_value=True), client_id=9, seq=1), KeyNotFound
    )


def test_restore_resyncs_watches(kv: KV) -> None:
    src = KV()
    src.put(b"k", b"1")
    src.put(b"k", b"2")
    wid, _ = kv.m.hub.create(b"k")
    kv.m.restore(src.m.snapshot())
    got = kv.m.hub.drain(wid)
    assert [(r.header.revision, r.events[0].kv.value) for r in got] == [(2, b"1"), (3, b"2")]


KEYS = [b"a", b"b", b"c", b"d", b"e"]
key = st.sampled_from(KEYS)
end = st.sampled_from([b"", b"", b"c", b"\x00"])
put = st.builds(PutRequest, key, st.binary(max_size=3), st.sampled_from([0, 0, 1, 2]),
                st.booleans(), st.just(False), st.booleans())  # fmt: skip
delete = st.builds(DeleteRangeRequest, key, end, st.booleans())
rng = st.builds(RangeRequest, key, end, st.integers(0, 2), st.integers(0, 12))
compare = st.builds(Compare, st.sampled_from(CompareResult), st.sampled_from(CompareTarget), key,
                    end, st.integers(0, 3), st.integers(0, 12), st.integers(0, 12),
                    st.binary(max_size=2), st.integers(0, 2))  # fmt: skip
txn = st.builds(TxnRequest, st.lists(compare, max_size=2).map(tuple),
                st.lists(st.one_of(put, delete, rng), max_size=3).map(tuple),
                st.lists(st.one_of(put, delete, rng), max_size=3).map(tuple))  # fmt: skip
command: st.SearchStrategy[Command] = st.one_of(
    put, put, delete, txn, rng,
    st.builds(CompactionRequest, st.integers(1, 12)),
    st.builds(LeaseGrantRequest, st.integers(1, 100), st.sampled_from([0, 1, 2])),
    st.builds(LeaseRevokeRequest, st.sampled_from([1, 2])),
    st.builds(ExpireSessionsRequest, st.integers(0, 100), st.integers(0, 50)),
)  # fmt: skip
step = st.tuples(command, st.sampled_from([0, 0, 1, 2]), st.integers(1, 4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=40), st.integers(0, 40))
def test_replicas_stay_identical_across_a_snapshot(
    steps: list[tuple[Command, int, int]], cut: int
) -> None:
    a, b = KV(), KV()
    results_a, results_b = [], []
    for i, (cmd, client, seq) in enumerate(steps):
        if i == cut:
            b = KV(KVStateMachine())
            b.restore(a.m.snapshot())
        a.now_ms = b.now_ms = i * 10
        results_a.append(a.apply(cmd, client_id=client, seq=seq))
        if i >= cut:
            results_b.append(b.apply(cmd, client_id=client, seq=seq))
    if cut < len(steps):
        assert a.m.snapshot() == b.m.snapshot()
        assert results_a[cut:] == results_b
        assert all_views(a) == all_views(b)
    # a restore of the end state is identical too
    c = KV(KVStateMachine())
    c.restore(a.m.snapshot())
    assert c.m.snapshot() == a.m.snapshot()
    assert all_views(c) == all_views(a)
    # invariants: revision >= compact revision; every live key's kv is consistent
    assert a.m.compact_revision <= a.rev
    for kv in a.get(b"\x00", b"\x00").kvs:
        assert kv.create_revision <= kv.mod_revision <= a.rev and kv.version >= 1
