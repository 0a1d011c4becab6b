"""The simulated network and clock: FIFO, partitions, pauses, skew, in-flight drops."""

from __future__ import annotations

import random

from sim_helpers import elect

from raftkv.raft.types import Role
from raftkv.sim import Cluster, Network
from raftkv.sim.trace import Event


def test_fifo_without_reorder_and_duplicates_after_the_original() -> None:
    net = Network(random.Random(1), (1, 30))
    net.configure(duplicate=0.5, delay_ms=(1, 30))
    dues = [t for now in range(200) for t in net.delivery_times(1, 2, now)]
    assert dues == sorted(dues)
    assert net.stats["dup"] > 50


def test_reorder_lets_messages_overtake() -> None:
    net = Network(random.Random(1))
    net.configure(delay_ms=(1, 30), reorder=True)
    dues = [net.delivery_times(1, 2, now)[0] for now in range(200)]
    assert dues != sorted(dues) and net.stats["reorder"] > 0


def test_overlapping_groups_make_a_bridge() -> None:
    net = Network(random.Random(1))
    net.partition([[1, 2], [2, 3]])
    assert net.connected(1, 2) and net.connected(2, 3) and not net.connected(1, 3)
    assert not net.connected(4, 1)  # in no group: cut off
    net.heal()
    assert net.connected(1, 3)


def test_partition_drops_messages_in_flight_across_the_cut() -> None:
    c = Cluster(3, seed=41)
    lead = elect(c)
    c.tick(10)  # followers in replicate state: a proposal goes out at once
    drops: list[Event] = []
    c.subscribe(lambda e: drops.append(e) if e["ev"] == "drop" else None)
    c.propose(b"x")  # appends to both followers are now in flight
    c.partition([lead], [i for i in c.ids if i != lead])
    dropped_apps = {e["to"] for e in drops if e["reason"] == "partition" and e["kind"] == "app"}
    assert dropped_apps == set(c.ids) - {lead}
    c.tick(2)
    assert all(c.log(i)[-1].data == b"" for i in c.ids if i != lead)


def test_pause_holds_messages_and_ticks() -> None:
    c = Cluster(3, seed=42)
    lead = elect(c)
    c.tick(10)
    f = next(i for i in c.ids if i != lead)
    c.pause(f, 500)
    c.propose(b"late")
    c.tick(20)
    assert c.is_paused(f) and [e.data for e in c.log(f)] == [b""]
    # A paused follower does not time out; it is not a candidate when it wakes.
    c.tick(31)
    assert not c.is_paused(f)
    assert [e.data for e in c.log(f)][-1] == b"late"
    assert c.role(f) == Role.FOLLOWER


def test_skew_changes_the_tick_rate() -> None:
    c = Cluster(1, seed=43)
    ticks: list[int] = []
    c.tick()  # the first tick lands within the first 10 ms
    real = c.node(1).raw.tick

    def counting() -> None:
        ticks.append(c.now_ms)
        real()

    c.node(1).raw.tick = counting  # type: ignore[method-assign]
    c.set_skew(1, 2.0)
    c.tick(100)
    assert 49 <= len(ticks) <= 51  # every 20 ms instead of every 10
    c.set_skew(1, 0.5)
    ticks.clear()
    c.tick(100)
    assert 199 <= len(ticks) <= 201


def test_crash_drops_messages_to_the_node_and_optionally_from_it() -> None:
    c = Cluster(3, seed=44)
    lead = elect(c)
    drops: list[Event] = []
    c.subscribe(lambda e: drops.append(e) if e["ev"] == "drop" else None)
    c.tick(10)
    c.propose(b"y")
    c.crash(lead, drop_outgoing=True)
    assert {e["to"] for e in drops if e["kind"] == "app"} == set(c.ids) - {lead}
    assert c.leader() is None
