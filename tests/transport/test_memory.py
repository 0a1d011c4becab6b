"""MemoryTransport: the in-process twin of PeerTransport for raftkv.node unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import every_kind, run, wait_until
from raftkv.raft.messages import Heartbeat, InstallSnapshot, Message
from raftkv.transport import MemoryNetwork, MemoryTransport, PeerTransport, Transport


class MemMember:
    def __init__(self, net: MemoryNetwork, node_id: int, peers: list[int]) -> None:
        self.id = node_id
        self.received: list[Message] = []
        self.unreachable: list[int] = []
        self.snapshot_status: list[tuple[int, bool]] = []
        self.t = MemoryTransport(
            node_id,
            net,
            peers,
            self.received.append,
            report_unreachable=self.unreachable.append,
            on_snapshot_status=lambda to, ok: self.snapshot_status.append((to, ok)),
        )


async def mem_cluster(n: int) -> list[MemMember]:
    net = MemoryNetwork()
    ids = list(range(1, n + 1))
    members = [MemMember(net, i, [j for j in ids if j != i]) for i in ids]
    for m in members:
        await m.t.start()
    return members


def hb(frm: int, to: int, commit: int) -> Message:
    return Heartbeat(to=to, frm=frm, term=1, commit=commit)


def test_both_transports_satisfy_the_protocol() -> None:
    def host(t: Transport) -> Any:
        return t

    host(MemoryTransport(1, MemoryNetwork(), [], lambda m: None))
    host(PeerTransport(1, 1, {}, lambda m: None))


def test_every_kind_delivered_in_order_never_reentrant() -> None:
    async def body() -> None:
        a, b, c = await mem_cluster(3)
        a.t.send(every_kind(1, 2))
        c.t.send(every_kind(3, 2))
        assert b.received == []  # delivery is scheduled, never inside send()
        await wait_until(lambda: len(b.received) == 22)
        assert [m for m in b.received if m.frm == 1] == every_kind(1, 2)
        assert [m for m in b.received if m.frm == 3] == every_kind(3, 2)
        assert a.snapshot_status == [(2, True)]
        s = a.t.stats()[2]
        assert s.messages_sent == 11 and s.snapshots_sent == 1
        assert b.t.stats()[1].messages_received == 11

    run(body())


def test_stopped_or_unknown_member_drops_and_reports() -> None:
    async def body() -> None:
        a, b, _ = await mem_cluster(3)
        await b.t.stop()
        snap = next(m for m in every_kind(1, 2) if isinstance(m, InstallSnapshot))
        a.t.send([hb(1, 2, 1), snap, hb(1, 9, 1)])
        assert a.unreachable == [2, 2, 9]
        assert a.snapshot_status == [(2, False)]
        assert a.t.stats()[2].dropped == 2 and a.t.stats()[9].dropped == 1
        await b.t.start()
        a.t.send([hb(1, 2, 2)])
        await wait_until(lambda: b.received == [hb(1, 2, 2)])

    run(body())


def test_in_flight_message_to_member_that_stops_is_dropped() -> None:
    async def body() -> None:
        a, b, _ = await mem_cluster(3)
        a.t.send([hb(1, 2, 1)])
        await b.t.stop()
        await asyncio.sleep(0.01)
        assert b.received == []
        assert b.t.stats()[1].dropped_received == 1

    run(body())


def test_drop_peers_and_heal() -> None:
    async def body() -> None:
        a, b, c = await mem_cluster(3)
        a.t.drop_peers({2})
        a.t.send([hb(1, 2, 1), hb(1, 3, 1)])
        b.t.send([hb(2, 1, 1)])
        await wait_until(lambda: len(c.received) == 1)
        await asyncio.sleep(0.01)
        assert b.received == [] and a.received == []
        assert a.t.stats()[2].dropped == 1 and a.t.stats()[2].dropped_received == 1
        a.t.heal()
        a.t.send([hb(1, 2, 2)])
        b.t.send([hb(2, 1, 2)])
        await wait_until(lambda: b.received == [hb(1, 2, 2)] and a.received == [hb(2, 1, 2)])

    run(body())


def test_duplicate_member_id_refused() -> None:
    async def body() -> None:
        net = MemoryNetwork()
        await MemoryTransport(1, net, [], lambda m: None).start()
        with pytest.raises(RuntimeError, match="already on this network"):
            await MemoryTransport(1, net, [], lambda m: None).start()

    run(body())
