"""PeerTransport over real sockets on 127.0.0.1: delivery, batching, reconnect, snapshots,
fault injection."""

from __future__ import annotations

import asyncio
import socket
import struct

from conftest import Member, cluster, every_kind, retry_until, run, stop_all, wait_until
from raftkv.raft.messages import Heartbeat, InstallSnapshot, Message
from raftkv.raft.types import Snapshot, SnapshotMeta


def hb(frm: int, to: int, commit: int) -> Message:
    return Heartbeat(to=to, frm=frm, term=1, commit=commit)


def test_three_members_exchange_every_kind() -> None:
    async def body() -> None:
        members = await cluster(3)
        try:
            for m in members:
                for o in members:
                    if o is not m:
                        m.t.send(every_kind(m.id, o.id))
            n = len(every_kind(1, 2))
            await wait_until(lambda: all(len(m.received) == 2 * n for m in members))
            for m in members:
                for o in members:
                    if o is not m:
                        assert m.from_peer(o.id) == every_kind(o.id, m.id)
                        assert o.snapshot_status.count((m.id, True)) == 1
            stats = members[0].t.stats()
            assert stats[2].messages_sent == n and stats[2].messages_received == n
            assert stats[2].connects == 1 and stats[2].reconnects == 0
        finally:
            await stop_all(members)

    run(body())


def test_burst_arrives_in_order_and_is_coalesced() -> None:
    async def body() -> None:
        members = await cluster(3)
        a, b, c = members
        try:
            burst = 4000  # within the default queue bound (4096)
            for i in range(burst):  # one synchronous burst: the writers run afterwards
                a.t.send([hb(1, 2, i), hb(1, 3, i)])
            await wait_until(lambda: len(b.received) == burst and len(c.received) == burst)
            assert [m.commit for m in b.received] == list(range(burst))  # type: ignore[union-attr]
            assert [m.commit for m in c.received] == list(range(burst))  # type: ignore[union-attr]
            s = a.t.stats()
            for pid in (2, 3):
                assert s[pid].messages_sent == burst
                assert s[pid].writes < burst / 100, s[pid]
                assert s[pid].dropped == 0
            assert b.t.stats()[1].messages_received == burst
            assert b.t.stats()[1].bytes_received == s[2].bytes_sent
        finally:
            await stop_all(members)

    run(body())


def test_queue_bound_drops_oldest_and_reports() -> None:
    async def body() -> None:
        a = Member(1, max_queue=10)
        await a.t.start("127.0.0.1", 0)
        a.t.add_peer(2, ("127.0.0.1", free_port()))  # nobody listens there
        try:
            a.t.send([hb(1, 2, i) for i in range(25)])
            assert a.t.stats()[2].dropped == 15
            assert a.unreachable.count(2) == 15
            a.t.send([hb(1, 9, 0)])  # unknown member: dropped, counted
            assert a.t.stats()[9].dropped == 1
        finally:
            await a.t.stop()

    run(body())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_peer_started_late_is_reached_after_reconnect() -> None:
    async def body() -> None:
        a, b = Member(1), Member(2)
        port = free_port()
        await a.t.start("127.0.0.1", 0)
        a.t.add_peer(2, ("127.0.0.1", port))
        try:
            a.t.send([hb(1, 2, 7)])
            await wait_until(lambda: a.t.stats()[2].connect_failures >= 2, what="retries")
            assert 2 in a.unreachable
            b.t.add_peer(1, a.addr)
            await b.t.start("127.0.0.1", port)
            await wait_until(lambda: len(b.received) == 1)  # the queued message was kept
            assert b.received[0] == hb(1, 2, 7)
            assert a.t.stats()[2].connects == 1
        finally:
            await stop_all([a, b])

    run(body())


def test_restarted_peer_is_reconnected() -> None:
    async def body() -> None:
        members = await cluster(2)
        a, b = members
        try:
            a.t.send([hb(1, 2, 1)])
            await wait_until(lambda: len(b.received) == 1)
            await b.restart()
            b.received.clear()
            await retry_until(lambda: a.t.send([hb(1, 2, 2)]), lambda: len(b.received) > 0)
            assert b.received[0] == hb(1, 2, 2)
            assert a.t.stats()[2].reconnects >= 1
            # and the restarted member reaches its old peer
            await retry_until(lambda: b.t.send([hb(2, 1, 3)]), lambda: len(a.received) > 0)
        finally:
            await stop_all(members)

    run(body())


def test_large_snapshot_streamed_in_chunks() -> None:
    async def body() -> None:
        mib = 1 << 20
        members = await cluster(2, max_frame_size=mib)
        a, b = members
        try:
            data = bytes(range(256)) * (20 * mib // 256) + b"tail"
            snap = InstallSnapshot(
                to=2, frm=1, term=4, snapshot=Snapshot(SnapshotMeta(100, 4), data)
            )
            a.t.send([hb(1, 2, 1), snap, hb(1, 2, 2)])
            await wait_until(lambda: len(b.received) == 3, timeout=20)
            assert b.received[1] == snap  # intact, and in order with the other messages
            assert [m.commit for m in (b.received[0], b.received[2])] == [1, 2]  # type: ignore[union-attr]
            assert a.snapshot_status == [(2, True)]
            s = a.t.stats()[2]
            assert s.snapshots_sent == 1 and s.frames_sent >= 21
            assert b.t.stats()[1].snapshots_received == 1
        finally:
            await stop_all(members)

    run(body(), timeout=25)


def test_snapshot_to_unreachable_peer_fails() -> None:
    async def body() -> None:
        a = Member(1)
        await a.t.start("127.0.0.1", 0)
        a.t.add_peer(2, ("127.0.0.1", free_port()))
        try:
            snap = InstallSnapshot(to=2, frm=1, term=1, snapshot=Snapshot(SnapshotMeta(5, 1), b"s"))
            a.t.send([snap])
            await wait_until(lambda: a.snapshot_status == [(2, False)])
            assert a.t.stats()[2].snapshots_failed == 1
        finally:
            await a.t.stop()

    run(body())


def test_message_larger_than_a_frame_is_dropped() -> None:
    async def body() -> None:
        members = await cluster(2, max_frame_size=1024)
        a, b = members
        try:
            from raftkv.raft.messages import ReadIndex

            a.t.send([ReadIndex(to=2, frm=1, term=0, ctx=b"x" * 2000), hb(1, 2, 1)])
            await wait_until(lambda: len(b.received) == 1)
            assert b.received == [hb(1, 2, 1)]
            assert a.t.stats()[2].dropped == 1
        finally:
            await stop_all(members)

    run(body())


def test_drop_peers_and_heal() -> None:
    async def body() -> None:
        members = await cluster(3)
        a, b, c = members
        try:
            a.t.drop_peers({2})
            a.t.send([hb(1, 2, 1), hb(1, 3, 1)])  # to 2: discarded
            b.t.send([hb(2, 1, 1)])  # from 2: discarded on arrival at 1
            c.t.send([hb(3, 1, 1)])
            await wait_until(lambda: len(c.received) == 1 and len(a.received) == 1)
            await wait_until(lambda: a.t.stats()[2].dropped_received == 1)
            assert a.received == [hb(3, 1, 1)]
            assert b.received == []
            assert a.t.stats()[2].dropped == 1
            a.t.heal()
            a.t.send([hb(1, 2, 2)])
            b.t.send([hb(2, 1, 2)])
            await wait_until(lambda: len(b.received) == 1 and len(a.received) == 2)
            assert b.received == [hb(1, 2, 2)]
            assert a.received[-1] == hb(2, 1, 2)
        finally:
            await stop_all(members)

    run(body())


def test_stop_is_idempotent_and_send_after_stop_drops() -> None:
    async def body() -> None:
        members = await cluster(2)
        a = members[0]
        await stop_all(members)
        await a.t.stop()
        a.t.send([hb(1, 2, 1)])
        assert a.t.stats()[2].dropped == 1
        await asyncio.sleep(0)

    run(body())


async def connected_idle_pair() -> list[Member]:
    """Two members; 1 has delivered a message to 2 and its writer is idle again."""
    a, b = members = await cluster(2)
    a.t.send([hb(1, 2, 0)])
    await wait_until(lambda: len(b.received) == 1)
    await wait_until(lambda: a.t._peers[2].idle)
    return members


def test_a_burst_to_a_connected_peer_is_written_at_once_and_in_order() -> None:
    async def body() -> None:
        a, b = members = await connected_idle_pair()
        try:
            burst = 2000
            for i in range(1, burst + 1):  # the writer is idle: send() itself writes
                a.t.send([hb(1, 2, i)])
            assert not a.t._peers[2].queue  # nothing left for the writer task
            await wait_until(lambda: len(b.received) == burst + 1)
            assert [m.commit for m in b.received] == list(range(burst + 1))  # type: ignore[union-attr]
            assert a.t.stats()[2].messages_sent == burst + 1 and a.t.stats()[2].dropped == 0
        finally:
            await stop_all(members)

    run(body())


def test_a_direct_write_into_a_reset_connection_is_dropped_and_reported() -> None:
    async def body() -> None:
        a, b = members = await connected_idle_pair()
        try:
            (w,) = list(b.t._inbound_writers)
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            w.transport.abort()  # B resets the connection (its socket closes in a callback)...
            await asyncio.sleep(0)  # ...that runs before this task resumes, before A polls again
            a.t.send([hb(1, 2, 1)])  # written at once, into the reset connection
            assert a.unreachable == [2]
            s = a.t.stats()[2]
            assert s.messages_sent == 1 and s.dropped == 1
            await retry_until(lambda: a.t.send([hb(1, 2, 2)]), lambda: len(b.received) >= 2)
            assert b.received[1].commit == 2  # type: ignore[union-attr]
        finally:
            await stop_all(members)

    run(body())
