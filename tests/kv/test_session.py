"""Exactly-once: a retried (client_id, seq) gets the cached result and is not applied again."""

from __future__ import annotations

from kv_harness import KV

from raftkv.kv import (
    ExpireSessionsRequest,
    ExpireSessionsResponse,
    KeyNotFound,
    PutRequest,
    PutResponse,
    StaleSequence,
)


def test_a_duplicate_returns_the_cached_response_without_a_new_revision(kv: KV) -> None:
    first = kv.apply(PutRequest(b"k", b"v"), client_id=7, seq=1)
    assert isinstance(first, PutResponse) and first.header.revision == 2
    again = kv.apply(PutRequest(b"k", b"v"), client_id=7, seq=1)
    assert again == first and kv.rev == 2
    assert kv.one(b"k").version == 1  # type: ignore[union-attr]
    nxt = kv.apply(PutRequest(b"k", b"w"), client_id=7, seq=2)
    assert isinstance(nxt, PutResponse) and nxt.header.revision == 3
    # another client with the same seq is independent
    other = kv.apply(PutRequest(b"k", b"x"), client_id=8, seq=1)
    assert isinstance(other, PutResponse) and other.header.revision == 4


def test_an_older_seq_is_stale(kv: KV) -> None:
    kv.apply(PutRequest(b"k"), client_id=1, seq=5)
    assert isinstance(kv.apply(PutRequest(b"k"), client_id=1, seq=4), StaleSequence)
    assert kv.rev == 2


def test_errors_are_cached_too(kv: KV) -> None:
    err = kv.apply(PutRequest(b"k", ignore_value=True), client_id=1, seq=1)
    assert isinstance(err, KeyNotFound)
    kv.put(b"k", b"now exists")
    assert isinstance(
        kv.apply(PutRequest(b"k", ignore_value=True), client_id=1, seq=1), KeyNotFound
    )


def test_sessions_expire_through_the_log(kv: KV) -> None:
    kv.now_ms = 1_000
    kv.apply(PutRequest(b"a"), client_id=1, seq=1)
    kv.now_ms = 5_000
    kv.apply(PutRequest(b"b"), client_id=2, seq=1)
    r = kv.ok(ExpireSessionsRequest(now_ms=10_000, timeout_ms=6_000))
    assert r == ExpireSessionsResponse(r.header, expired=1)
    assert sorted(kv.m.sessions.by_client) == [2]
    # client 1 is forgotten: the same seq is applied again (a new session)
    again = kv.apply(PutRequest(b"a"), client_id=1, seq=1)
    assert isinstance(again, PutResponse) and again.header.revision == 4
