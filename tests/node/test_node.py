"""The asyncio host: three Nodes over the in-memory transport, with MemoryStorage."""

from __future__ import annotations

import asyncio

import pytest
from node_helpers import Cluster, Counter, run, until

from raftkv.node import Node, NodeConfig, NotLeaderError
from raftkv.raft import ConfState, MemoryStorage
from raftkv.transport.memory import MemoryNetwork, MemoryTransport


def test_elects_a_leader_and_applies_proposals_everywhere() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        results = await asyncio.gather(*(c.nodes[lead].propose(b"x") for _ in range(50)))
        assert sorted(results) == list(range(1, 51))  # type: ignore[type-var]
        await until(lambda: all(c.sms[i].values.get("x") == 50 for i in c.ids))

    run(body)


def test_a_follower_forwards_proposals_and_gets_its_result() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        follower = next(i for i in c.ids if i != c.leader())
        await until(lambda: c.nodes[follower].leader() != 0)
        assert await c.nodes[follower].propose(b"f") == 1
        assert await c.nodes[follower].propose(b"f") == 2

    run(body)


def test_linearizable_read_waits_for_apply() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        await c.nodes[lead].propose(b"r")
        for i in c.ids:
            await until(lambda i=i: c.nodes[i].leader() != 0)  # type: ignore[misc]
            index = await c.nodes[i].read_index()
            assert c.nodes[i].applied >= index
            assert c.sms[i].values["r"] == 1

    run(body)


def test_proposals_without_a_leader_fail_fast() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        for i in c.ids:
            if i != lead:
                await c.stop(i)
        # The lone leader steps down (CheckQuorum); with no leader, proposals are refused.
        await until(lambda: not c.nodes[lead].is_leader())
        await until(lambda: c.nodes[lead].leader() == 0)
        with pytest.raises(NotLeaderError):
            await c.nodes[lead].propose(b"y")

    run(body)


def test_stop_transfers_leadership() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        await c.nodes[lead].propose(b"t")
        await c.stop(lead, transfer=True)
        new = c.leader()
        assert new is not None and new != lead
        assert await c.nodes[new].propose(b"t") == 2

    run(body)


def test_a_restarted_follower_catches_up_through_a_snapshot() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        lag = next(i for i in c.ids if i != lead)
        await c.stop(lag)
        for _ in range(6):
            await asyncio.gather(*(c.nodes[lead].propose(b"s") for _ in range(20)))
        assert c.storage[lead].first_index() > 1  # the leader compacted its log
        await c.start(lag)
        await until(lambda: c.sms[lag].values.get("s") == 120)
        assert c.nodes[lag].snapshot_index > 0

    run(body, snapshot_count=50, snapshot_keep=10)


def test_a_cluster_on_disk_restarts_with_its_state(tmp_path: object) -> None:
    from pathlib import Path

    from raftkv.storage import AsyncDiskStorage

    base = Path(str(tmp_path))

    async def open_disk(c: Cluster) -> None:
        for i in c.ids:
            c.storage[i] = await AsyncDiskStorage.open(  # type: ignore[assignment]
                base / f"n{i}", conf_state=ConfState(voters=tuple(c.ids)), segment_size=1 << 20
            )

    async def main() -> None:
        c = Cluster()
        await open_disk(c)
        await c.start_all()
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        await asyncio.gather(*(c.nodes[lead].propose(b"d") for _ in range(30)))
        await until(lambda: all(c.sms[i].values.get("d") == 30 for i in c.ids))
        term = c.nodes[lead].raw.status().term
        await c.stop_all()

        c2 = Cluster()
        await open_disk(c2)
        await c2.start_all()
        try:
            # Committed entries are re-applied from the WAL on every member.
            await until(lambda: all(c2.sms[i].values.get("d") == 30 for i in c2.ids))
            assert all(c2.nodes[i].raw.status().term >= term for i in c2.ids)
            await until(lambda: c2.leader() is not None)
            new = c2.leader()
            assert new is not None
            assert await c2.nodes[new].propose(b"d") == 31
        finally:
            await c2.stop_all()

    asyncio.run(main())


def test_move_leader_through_the_service() -> None:
    from raftkv.kv import KVStateMachine
    from raftkv.kv.errors import BadLeaderTransferee, NotLeader
    from raftkv.server.service import KVService, ServiceConfig

    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        other = next(i for i in c.ids if i != lead)
        svc = {i: KVService(c.nodes[i], KVStateMachine(), ServiceConfig(cluster_id=1)) for i in c.ids}
        with pytest.raises(NotLeader):
            await svc[other].move_leader(lead)
        with pytest.raises(BadLeaderTransferee):
            await svc[lead].move_leader(99)
        await svc[lead].move_leader(other)
        assert c.leader() == other

    run(body)


def test_a_proposal_forwarded_to_a_dead_leader_fails_when_the_leader_changes() -> None:
    async def body(c: Cluster) -> None:
        await until(lambda: c.leader() is not None)
        lead = c.leader()
        assert lead is not None
        follower = next(i for i in c.ids if i != lead)
        await until(lambda: c.nodes[follower].leader() == lead)
        await c.stop(lead)  # gone: what the follower forwards to it is lost
        pending = asyncio.ensure_future(c.nodes[follower].propose(b"lost?"))
        # Without the leader change failing it, this would wait for a caller's timeout.
        with pytest.raises(NotLeaderError, match="leader changed"):
            await asyncio.wait_for(pending, 10)
        await until(lambda: c.leader() is not None)
        assert await c.nodes[follower].propose(b"retry") >= 1

    run(body)


def test_a_proposal_never_applied_fails_with_etcds_request_timeout() -> None:
    from raftkv.kv import KVStateMachine, PutRequest
    from raftkv.kv.errors import RequestTimeout
    from raftkv.server.service import KVService, ServiceConfig

    async def main() -> None:
        # The node's loops are never started: the proposal waits forever unless timed out.
        t = MemoryTransport(1, MemoryNetwork(), [], on_message=lambda m: None)
        node = Node(NodeConfig(id=1), MemoryStorage(ConfState(voters=(1,))), t, Counter())
        svc = KVService(node, KVStateMachine(), ServiceConfig(cluster_id=1, request_timeout=0.2))
        await svc.start()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(RequestTimeout):
                await svc.put(PutRequest(b"k", b"v"))
            assert loop.time() - started >= 0.2
            assert not node._waiters  # the timed-out proposal is forgotten by the node
        finally:
            await svc.stop()

    asyncio.run(main())


def test_ticks_missed_during_a_stall_are_dropped_not_fired_in_a_burst() -> None:
    from raftkv.node.node import next_tick

    assert next_tick(1.0, 1.004, 0.01) == pytest.approx(1.01)  # on time: the next slot
    assert next_tick(1.0, 1.0099, 0.01) == pytest.approx(1.01)  # late within a tick: kept
    # half a second late: one tick now, the next an interval later, not 50 at once
    assert next_tick(1.0, 1.5, 0.01) == pytest.approx(1.51)
