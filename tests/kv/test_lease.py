"""Leases: grant, attach, revoke, expiry through revoke, time-to-live, list, promote, checkpoint."""

from __future__ import annotations

import pytest
from kv_harness import KV

from raftkv.kv import (
    MIN_LEASE_TTL,
    EventType,
    LeaseCheckpoint,
    LeaseCheckpointRequest,
    LeaseExist,
    LeaseGrantRequest,
    LeaseNotFound,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseStatus,
    TTLTooLarge,
)


def test_grant_raises_small_ttls_to_the_minimum(kv: KV) -> None:
    r = kv.grant(1, 100)
    assert (r.id, r.ttl, r.error) == (100, MIN_LEASE_TTL, "")
    assert kv.grant(60, 101).ttl == 60
    assert kv.rev == 1  # a grant is not a KV write
    err = kv.apply(LeaseGrantRequest(10, 100))
    assert isinstance(err, LeaseExist) and str(err) == "etcdserver: lease already exists"
    assert isinstance(kv.apply(LeaseGrantRequest(9_000_000_001, 5)), TTLTooLarge)


def test_grant_without_id_picks_a_deterministic_one(kv: KV) -> None:
    a, b = KV(), KV()
    for x in (a, b):
        x.put(b"k")
    ra, rb = a.grant(10), b.grant(10)
    assert ra.id == rb.id != 0


def test_put_with_lease_and_revoke_deletes_keys_in_one_revision(kv: KV) -> None:
    kv.grant(60, 7)
    kv.put(b"a", b"1", lease=7)  # 2
    kv.put(b"b", b"1", lease=7)  # 3
    kv.put(b"c", b"1")  # 4
    kv.put(b"b", b"2", lease=7)  # 5
    wid, _ = kv.m.hub.create(b"\x00", b"\x00")
    r = kv.revoke(7)
    assert isinstance(r, LeaseRevokeResponse) and r.header.revision == 6
    assert kv.keys(b"\x00", b"\x00") == [b"c"]
    events = kv.m.hub.drain(wid)
    assert len(events) == 1
    assert [(e.type, e.kv.key) for e in events[0].events] == [
        (EventType.DELETE, b"a"),
        (EventType.DELETE, b"b"),
    ]
    err = kv.revoke(7)
    assert isinstance(err, LeaseNotFound) and err.code == "NOT_FOUND"
    assert str(err) == "etcdserver: requested lease not found"


def test_revoke_of_an_empty_lease_adds_no_revision(kv: KV) -> None:
    kv.grant(10, 1)
    kv.revoke(1)
    assert kv.rev == 1


def test_moving_and_deleting_keys_detaches_them(kv: KV) -> None:
    kv.grant(60, 1)
    kv.grant(60, 2)
    kv.put(b"k", lease=1)
    kv.put(b"k", lease=2)
    kv.put(b"gone", lease=2)
    kv.delete(b"gone")
    ttl = kv.m.lease_time_to_live(1, keys=True)
    assert ttl.keys == ()
    assert kv.m.lease_time_to_live(2, keys=True).keys == (b"k",)
    kv.revoke(1)
    assert kv.one(b"k") is not None


def test_time_to_live_and_list(kv: KV) -> None:
    kv.grant(30, 5)
    kv.grant(10, 3)
    kv.put(b"x", lease=5)
    kv.put(b"w", lease=5)
    r = kv.m.lease_time_to_live(5, keys=True)
    assert (r.id, r.ttl, r.granted_ttl, r.keys) == (5, 30, 30, (b"w", b"x"))
    assert kv.m.lease_time_to_live(5).keys == ()
    assert kv.m.lease_time_to_live(404).ttl == -1
    assert kv.m.lease_leases().leases == (LeaseStatus(3), LeaseStatus(5))


def test_expiry_is_decided_by_the_leader_and_applied_as_revoke(kv: KV) -> None:
    kv.m.promote(extend_ms=0, now_ms=0)
    kv.now_ms = 1_000
    kv.grant(5, 1)  # expires at 6_000 on the leader
    kv.grant(10, 2)  # 11_000
    kv.put(b"k", lease=1)
    assert kv.m.expired(5_999) == []
    assert kv.m.lease_time_to_live(1, now_ms=3_500).ttl == 3  # 2.5 s left, rounded up
    assert kv.m.expired(6_000) == [1]
    assert kv.m.renew(2, now_ms=6_000).ttl == 10  # keep-alive: now 16_000
    assert kv.m.expired(12_000) == [1]
    for lease_id in kv.m.expired(12_000):
        kv.ok(LeaseRevokeRequest(lease_id))
    assert kv.one(b"k") is None and kv.rev == 3
    assert kv.m.expired(16_000) == [2]
    with pytest.raises(LeaseNotFound):
        kv.m.renew(1, now_ms=0)


def test_followers_never_expire_until_promoted(kv: KV) -> None:
    kv.grant(5, 1)
    assert kv.m.expired(10**12) == []
    kv.m.promote(extend_ms=2_000, now_ms=100_000)  # etcd lessor.Promote: remaining TTL + extend
    assert kv.m.expired(106_999) == []
    assert kv.m.expired(107_000) == [1]
    kv.m.demote()
    assert kv.m.expired(10**12) == []


def test_checkpointed_remaining_ttl_survives_a_leader_change(kv: KV) -> None:
    kv.m.promote(0, 0)
    kv.grant(60, 1)  # expires at 60_000
    cp = kv.m.lease_checkpoint(now_ms=45_000)
    assert cp == LeaseCheckpointRequest((LeaseCheckpoint(1, 15),))
    kv.ok(cp)
    follower = KV()
    follower.m.restore(kv.m.snapshot())
    follower.m.promote(extend_ms=0, now_ms=200_000)
    assert follower.m.expired(214_999) == []
    assert follower.m.expired(215_000) == [1]
