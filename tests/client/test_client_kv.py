"""The native protocol end to end: AsyncClient ⇄ real sockets ⇄ NativeProtocol ⇄ a 3-member
cluster (Nodes over MemoryTransport)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence

import pytest

from cluster import ThreadCluster, until, until_async
from raftkv.client import AsyncClient, Client
from raftkv.kv import (
    Compacted,
    Compare,
    CompareResult,
    CompareTarget,
    EmptyKey,
    EventType,
    FutureRev,
    LeaseNotFound,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
)
from raftkv.raft.messages import AppendEntries, Message


def run(cluster: ThreadCluster, body: Callable[[AsyncClient], Awaitable[None]],
        endpoints: list[str] | None = None) -> None:  # fmt: skip
    async def main() -> None:
        async with AsyncClient(endpoints or cluster.endpoints, command_timeout=10.0) as c:
            await body(c)

    asyncio.run(asyncio.wait_for(main(), 60))  # a watch that never answers fails, not hangs


def keys(resp: object) -> list[bytes]:
    return [kv.key for kv in resp.kvs]  # type: ignore[attr-defined]


def test_put_get_and_range_options(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        r1 = await c.put("t1/a", "1")
        await c.put("t1/b", "22")
        await c.put("t1/c", "333")
        await c.put("t1/a", "4444")
        await c.put("t1x", "outside")
        assert r1.header.revision > 0
        assert r1.header.cluster_id != 0

        one = await c.get("t1/a")
        assert [(kv.key, kv.value, kv.version) for kv in one.kvs] == [(b"t1/a", b"4444", 2)]
        assert one.count == 1
        assert keys(await c.get("t1/", prefix=True)) == [b"t1/a", b"t1/b", b"t1/c"]
        assert keys(await c.get("t1/a", "t1/c")) == [b"t1/a", b"t1/b"]
        lim = await c.get("t1/", prefix=True, limit=2)
        assert keys(lim) == [b"t1/a", b"t1/b"] and lim.more and lim.count == 3
        old = await c.get("t1/a", revision=r1.header.revision)
        assert old.kvs[0].value == b"1"
        ko = await c.get("t1/", prefix=True, keys_only=True)
        assert [kv.value for kv in ko.kvs] == [b"", b"", b""]
        co = await c.get("t1/", prefix=True, count_only=True)
        assert co.count == 3 and co.kvs == ()
        desc = await c.get("t1/", prefix=True, sort_order=SortOrder.DESCEND)
        assert keys(desc) == [b"t1/c", b"t1/b", b"t1/a"]
        by_value = await c.get(
            "t1/", prefix=True, sort_target=SortTarget.VALUE, sort_order=SortOrder.DESCEND
        )
        assert [kv.value for kv in by_value.kvs] == [b"4444", b"333", b"22"]
        ser = await c.get("t1/b", serializable=True)
        assert ser.kvs[0].value == b"22"
        assert keys(await c.get("t1/c", from_key=True))[:2] == [b"t1/c", b"t1x"]
        assert (await c.get("t1/missing")).kvs == ()
        with pytest.raises(FutureRev) as e:
            await c.get("t1/a", revision=10**9)
        assert str(e.value) == "etcdserver: mvcc: required revision is a future revision"
        with pytest.raises(EmptyKey) as e2:
            await c.put("", "v")
        assert str(e2.value) == "etcdserver: key is not provided"

    run(cluster, body)


def test_delete_prefix_and_prev_kv(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        for k in ("a", "b", "c"):
            await c.put(f"t2/{k}", k.upper())
        d1 = await c.delete("t2/a", prev_kv=True)
        assert d1.deleted == 1 and [(kv.key, kv.value) for kv in d1.prev_kvs] == [(b"t2/a", b"A")]
        d2 = await c.delete("t2/", prefix=True)
        assert d2.deleted == 2 and d2.prev_kvs == ()
        assert (await c.get("t2/", prefix=True)).count == 0
        assert (await c.delete("t2/none")).deleted == 0
        p = await c.put("t2/p", "new", prev_kv=True)
        assert p.prev_kv is None
        p2 = await c.put("t2/p", "newer", prev_kv=True)
        assert p2.prev_kv is not None and p2.prev_kv.value == b"new"

    run(cluster, body)


def test_txn_compare_then_else(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        await c.put("t3/k", "v1")
        cmp = Compare(CompareResult.EQUAL, CompareTarget.VALUE, b"t3/k", value=b"v1")
        ok = await c.txn(
            [cmp], [PutRequest(b"t3/k", b"v2"), RangeRequest(b"t3/k")], [RangeRequest(b"t3/k")]
        )
        assert ok.succeeded
        assert ok.responses[1].kvs[0].value == b"v2"  # type: ignore[union-attr]
        ko = await c.txn([cmp], [PutRequest(b"t3/k", b"v3")], [RangeRequest(b"t3/k")])
        assert not ko.succeeded
        assert ko.responses[0].kvs[0].value == b"v2"  # type: ignore[union-attr]

    run(cluster, body)


def test_compact_and_compacted_error(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        r1 = await c.put("t4/k", "1")
        r2 = await c.put("t4/k", "2")
        await c.compact(r2.header.revision)
        with pytest.raises(Compacted) as e:
            await c.get("t4/k", revision=r1.header.revision)
        assert str(e.value) == "etcdserver: mvcc: required revision has been compacted"
        assert (await c.get("t4/k")).kvs[0].value == b"2"
        w = c.watch("t4/k", start_revision=r1.header.revision)
        await w.start()
        with pytest.raises(Compacted):
            await w.__anext__()

    run(cluster, body)


def test_a_progress_notify_watch_gets_progress_when_it_has_no_events(
    cluster: ThreadCluster,
) -> None:
    async def body(c: AsyncClient) -> None:
        async with c.watch("pn/a", progress_notify=True) as w, c.watch("pn/b") as quiet:
            before = [await w.__anext__(), await w.__anext__()]  # one every 0.2 s
            assert all(r.events == () and r.header.revision > 0 for r in before)
            put = await c.put("pn/a", "1")
            got = [await w.__anext__()]
            while not got[-1].events:  # a notification may have been on its way already
                got.append(await w.__anext__())
            assert [e.kv.value for e in got[-1].events] == [b"1"]
            after = await w.__anext__()
            assert after.events == () and after.header.revision >= put.header.revision
            await c.put("pn/b", "2")  # the watch without progress_notify got nothing else
            first = await quiet.__anext__()
            assert [e.kv.value for e in first.events] == [b"2"]

    run(cluster, body)


def test_watch_from_old_revision_prefix_prev_kv_and_cancel(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        r1 = await c.put("t5/a", "1")
        await c.put("t5/b", "2")
        async with c.watch("t5/", prefix=True, start_revision=r1.header.revision,
                           prev_kv=True) as w:  # fmt: skip
            got = [await w.__anext__(), await w.__anext__()]
            assert [(e.type, e.kv.key) for r in got for e in r.events] == [
                (EventType.PUT, b"t5/a"),
                (EventType.PUT, b"t5/b"),
            ]
            await c.put("t5/a", "1b")
            await c.delete("t5/b")
            await c.put("t5x", "not in the prefix")
            r3 = await w.__anext__()
            ev = r3.events[0]
            assert (ev.type, ev.kv.value) == (EventType.PUT, b"1b")
            assert ev.prev_kv is not None and ev.prev_kv.value == b"1"
            r4 = await w.__anext__()
            assert r4.events[0].type == EventType.DELETE
            assert r4.events[0].kv.key == b"t5/b"
            await w.progress()
            prog = await w.__anext__()
            assert prog.events == () and prog.header.revision >= r4.header.revision
            await w.cancel()
            with pytest.raises(StopAsyncIteration):
                await w.__anext__()

        # A watch from now: only future events.
        w2 = c.watch("t5/a")
        await w2.start()
        await c.put("t5/a", "later")
        r = await w2.__anext__()
        assert r.events[0].kv.value == b"later"
        await w2.cancel()

    run(cluster, body)


def test_leases(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        g = await c.lease_grant(30)
        assert g.id != 0 and g.ttl == 30
        await c.put("t6/a", "1", lease=g.id)
        await c.put("t6/b", "2", lease=g.id)
        ka = await c.lease_keep_alive_once(g.id)
        assert ka.id == g.id and ka.ttl == 30
        it = c.lease_keep_alive(g.id)
        first = await it.__anext__()
        assert first.ttl == 30
        await it.aclose()  # type: ignore[attr-defined]
        ttl = await c.lease_time_to_live(g.id, keys=True)
        assert ttl.granted_ttl == 30 and 0 < ttl.ttl <= 30
        assert ttl.keys == (b"t6/a", b"t6/b")
        assert g.id in [s.id for s in (await c.lease_leases()).leases]
        await c.lease_revoke(g.id)
        assert (await c.get("t6/", prefix=True)).count == 0
        assert (await c.lease_time_to_live(g.id)).ttl == -1
        with pytest.raises(LeaseNotFound) as e:
            await c.lease_revoke(g.id)
        assert str(e.value) == "etcdserver: requested lease not found"
        with pytest.raises(LeaseNotFound):
            await c.put("t6/c", "x", lease=g.id)

    run(cluster, body)


def test_lease_expiry_deletes_keys(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        g = await c.lease_grant(1)
        await c.put("t7/k", "v", lease=g.id)
        deadline = asyncio.get_running_loop().time() + 10
        while (await c.get("t7/k")).count:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)

    run(cluster, body)


def test_exactly_once_same_session_applied_once(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        before = (await c.get("t8")).header.revision
        req = PutRequest(b"t8/k", b"v")
        a = await c._typed(req, type(await c.put("t8/other", "x")), client_id=4242, seq=1)
        b = await c._typed(req, type(a), client_id=4242, seq=1)
        assert a.header.revision == b.header.revision
        after = (await c.get("t8/k")).kvs[0]
        assert after.version == 1 and after.mod_revision == a.header.revision
        assert a.header.revision == before + 2  # t8/other, then t8/k once

    run(cluster, body)


def test_pipelining_1000_puts_over_one_connection(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        rs = await asyncio.gather(*(c.put(f"t9/{i:04d}", str(i)) for i in range(1000)))
        revs = [r.header.revision for r in rs]
        assert len(set(revs)) == 1000
        assert (await c.get("t9/", prefix=True, count_only=True)).count == 1000
        assert c._conn is not None and c._conn._next_id > 1000  # one connection carried all

    run(cluster, body)


def test_member_list_and_status(cluster: ThreadCluster) -> None:
    async def body(c: AsyncClient) -> None:
        ml = await c.member_list()
        assert [m.name for m in ml.members] == ["m1", "m2", "m3"]
        lead = cluster.leader()
        for i in cluster.ids:
            st = await c.status(cluster.endpoint(i))
            assert st.header.member_id == i
            assert st.leader == lead and st.raft_term >= 1 and st.raft_index >= 1

    run(cluster, body)


def test_sync_client(cluster: ThreadCluster) -> None:
    with Client(cluster.endpoints) as c:
        c.put("t10/a", "1")
        assert c.get("t10/a").kvs[0].value == b"1"
        with c.watch("t10/", prefix=True) as w:
            c.put("t10/b", "2")
            r = next(iter(w))
            assert r.events[0].kv.key == b"t10/b"
        assert c.delete("t10/", prefix=True).deleted == 2


def test_failover_to_another_endpoint(fresh_cluster: ThreadCluster) -> None:
    cl = fresh_cluster

    async def body(c: AsyncClient) -> None:
        await c.put("f/a", "1")
        first = c.endpoint
        assert first is not None
        victim = cl.endpoints.index(first) + 1
        w = c.watch("f/", prefix=True)
        await w.start()
        await asyncio.to_thread(cl.stop_member, victim)
        await asyncio.to_thread(cl.wait_leader)
        r = await c.put("f/b", "2")
        assert c.endpoint is not None and c.endpoint != first
        assert (await c.get("f/", prefix=True)).count == 2
        # The watch was created again elsewhere from where it was: f/b arrives exactly once.
        ev = await asyncio.wait_for(w.__anext__(), 10)
        assert [e.kv.key for e in ev.events] == [b"f/b"]
        assert ev.header.revision == r.header.revision
        await w.cancel()

    # Start on member 1's endpoint so the stopped one is the connected one.
    run(cl, body, endpoints=cl.endpoints)


def test_the_client_talks_to_the_leader_unless_told_not_to(cluster: ThreadCluster) -> None:
    lead = cluster.wait_leader()
    follower = next(i for i in cluster.ids if i != lead)
    eps = [cluster.endpoint(follower)] + [cluster.endpoint(i) for i in cluster.ids if i != follower]

    async def main() -> None:
        async with AsyncClient(eps, command_timeout=10.0) as c:
            await c.put("t11/a", "1")
            assert c.endpoint == cluster.endpoint(lead)
        async with AsyncClient(eps, command_timeout=10.0, prefer_leader=False) as c:
            await c.put("t11/b", "1")
            assert c.endpoint == cluster.endpoint(follower)
        # The leader's client URL is not among the endpoints: stay where the dial landed.
        async with AsyncClient([eps[0], eps[0]], command_timeout=10.0) as c:
            await c.put("t11/c", "1")
            assert c.endpoint == cluster.endpoint(follower)

    asyncio.run(main())


def test_the_client_follows_a_new_leader_and_keeps_its_watches(
    fresh_cluster: ThreadCluster,
) -> None:
    cl = fresh_cluster
    lead = cl.wait_leader()
    to = next(i for i in cl.ids if i != lead)

    async def main() -> None:
        async with AsyncClient(cl.endpoints, command_timeout=10.0) as c:
            await c.put("m/a", "1")
            assert c.endpoint == cl.endpoint(lead)
            w = c.watch("m/", prefix=True)
            await w.start()
            cl.loop.call_soon_threadsafe(cl._node(lead).transfer_leader, to)
            await asyncio.to_thread(until, lambda: cl.leader() not in (None, lead))
            new = await asyncio.to_thread(cl.wait_leader)
            n = 0
            while c.endpoint != cl.endpoint(new):  # an answer in the new term sends it over
                await c.put(f"m/{n}", "x")
                n += 1
                assert n < 1000, "the client never moved to the new leader"
            # The watch lives on the old connection, which stays open for it.
            seen: list[bytes] = []
            while len(seen) < n:
                ev = await asyncio.wait_for(w.__anext__(), 10)
                seen += [e.kv.key for e in ev.events]
            assert seen == [f"m/{k}".encode() for k in range(n)]
            await w.cancel()

    asyncio.run(main())


def test_a_write_is_answered_before_the_leader_tells_followers_its_commit(
    fresh_cluster: ThreadCluster,
) -> None:
    """The answer leaves inside the apply (Proposal's callbacks), and an applied batch with
    nothing new to replicate is applied before the commit index goes out to the followers."""
    cl = fresh_cluster
    lead = cl.wait_leader()
    node = cl._node(lead)
    events: list[tuple[str, int]] = []

    def watch_sends() -> None:
        real = node.notices.send

        def send(messages: Sequence[Message], waiting: Collection[int] = ()) -> None:
            for m in messages:
                if isinstance(m, AppendEntries):
                    events.append(("commit sent", m.commit))
            real(messages, waiting)

        node.notices.send = send  # type: ignore[method-assign]

    cl.loop.call_soon_threadsafe(watch_sends)

    async def main() -> None:
        async with AsyncClient([cl.endpoint(lead)], command_timeout=10.0) as c:
            await c.put("w/0", "x")  # the connection exists now
            proto = cl.members[lead].protocols[-1]
            transport = proto._transport
            assert transport is not None
            real_write = transport.write

            def write(data: bytes) -> None:
                events.append(("answer written", node.applied))
                real_write(data)

            transport.write = write  # type: ignore[method-assign]
            await c.put("w/1", "y")
            index = node.applied

            def told() -> list[int]:
                return [k for k, (what, n) in enumerate(events) if what == "commit sent"
                        and n >= index]  # fmt: skip

            await until_async(lambda: bool(told()))  # heartbeats carry it, if nothing else
            assert events.index(("answer written", index)) < told()[0], events

    asyncio.run(main())
