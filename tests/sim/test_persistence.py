"""Crash/restart and snapshots through the simulator."""

from __future__ import annotations

from sim_helpers import commands, elect, settle, wait_commit

from raftkv.raft.types import HardState
from raftkv.sim import Cluster, SimConfig
from raftkv.sim.trace import Event


def test_snapshot_install_to_a_far_behind_follower() -> None:
    cfg = SimConfig(snapshot_interval=50, snapshot_keep=10)
    c = Cluster(3, seed=21, config=cfg)
    lead = elect(c)
    lagger = next(i for i in c.ids if i != lead)
    c.crash(lagger)
    data = [f"s{n}".encode() for n in range(120)]
    for d in data:
        c.propose(d)
        c.tick()
    up = [i for i in c.ids if i != lagger]
    wait_commit(c, 121, up)
    snap_index = c.storage(lead).snapshot().meta.index
    assert snap_index >= 100 and c.storage(lead).first_index() > 2  # compacted
    snaps: list[Event] = []
    c.subscribe(lambda e: snaps.append(e) if e["ev"] == "deliver" and e["kind"] == "snap" else None)
    c.restart(lagger)
    wait_commit(c, 121, [lagger])
    settle(c)
    assert [e["to"] for e in snaps] == [lagger]
    assert c.storage(lagger).snapshot().meta.index >= snap_index
    # The state machine was restored from the snapshot, then caught up entry by entry.
    assert c.applied_commands(lagger) == data == c.applied_commands(lead)


def test_restart_reapplies_from_its_own_snapshot() -> None:
    c = Cluster(3, seed=22, config=SimConfig(snapshot_interval=20, snapshot_keep=5))
    lead = elect(c)
    for n in range(30):
        c.propose(f"r{n}".encode())
    wait_commit(c, 31, c.ids)
    c.tick(5)
    f = next(i for i in c.ids if i != lead)
    assert c.storage(f).snapshot().meta.index >= 20
    c.crash(f)
    c.restart(f)
    c.tick(5)
    assert c.applied_commands(f) == [f"r{n}".encode() for n in range(30)]


def test_crash_all_and_restart_keeps_committed_entries() -> None:
    c = Cluster(5, seed=23)
    elect(c)
    data = [f"p{n}".encode() for n in range(20)]
    for d in data:
        c.propose(d)
    wait_commit(c, 21, c.ids)
    before = {i: c.committed(i) for i in c.ids}
    hard = {i: c.storage(i).initial_state()[0] for i in c.ids}
    for i in c.ids:
        c.crash(i)
    assert c.leader() is None
    for i in c.ids:
        c.restart(i)
        # Thesis §3.8: term, vote and commit survive the crash.
        assert c.storage(i).initial_state()[0] == hard[i]
        assert c.committed(i) == before[i]
    new = elect(c)
    assert c.term(new) > max(h.term for h in hard.values())
    c.propose(b"after")
    settle(c)
    for i in c.ids:
        assert commands(c.committed(i)) == [*data, b"after"]
        assert c.applied_commands(i) == [*data, b"after"]


def test_custom_storage_factory_is_called_at_start_and_every_restart() -> None:
    from raftkv.raft.storage import MemoryStorage
    from raftkv.raft.types import ConfState

    calls: list[int] = []
    stores: dict[int, MemoryStorage] = {}

    class Closing(MemoryStorage):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    def factory(i: int) -> MemoryStorage:
        calls.append(i)
        if i not in stores:
            stores[i] = Closing(ConfState(voters=(1, 2, 3)))
        return stores[i]

    c = Cluster(3, seed=24, storage_factory=factory)
    elect(c)
    c.crash(2)
    c.restart(2)
    assert calls == [1, 2, 3, 2]
    assert isinstance(stores[2], Closing) and stores[2].closed == 1
    assert c.storage(2).initial_state()[0] != HardState()
