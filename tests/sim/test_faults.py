"""Random faults through the simulator: unreliable network and churn."""

from __future__ import annotations

import contextlib
import random

from sim_helpers import elect, settle

from raftkv.raft.errors import ProposalDropped
from raftkv.sim import Cluster, NoLeader, SimError


def _propose_quietly(c: Cluster, data: bytes) -> None:
    with contextlib.suppress(NoLeader, ProposalDropped, SimError):
        c.propose(data)


def _consistent(c: Cluster) -> None:
    """Committed logs are prefixes of one another."""
    logs = sorted((c.committed(i) for i in c.ids), key=len)
    for shorter in logs:
        assert shorter == logs[-1][: len(shorter)]


def test_unreliable_network_loss_dup_reorder() -> None:
    c = Cluster(5, seed=31)
    c.set_network(loss=0.1, duplicate=0.05, delay_ms=(1, 30), reorder=True)
    sent = []
    for n in range(1500):
        if n % 5 == 0:
            d = f"u{n}".encode()
            sent.append(d)
            _propose_quietly(c, d)
        c.tick()
    _consistent(c)
    assert c.network.stats["loss"] > 100 and c.network.stats["dup"] > 50
    assert c.network.stats["reorder"] > 100
    c.set_network()
    c.check_liveness()
    settle(c)
    got = c.applied_commands(c.ids[0])
    assert len(got) >= 200  # progress despite 10% loss
    assert all(c.applied_commands(i) == got for i in c.ids)
    assert set(got) <= {*sent, *(d for d in got if d.startswith(b"liveness"))}
    _consistent(c)


def test_churn_of_crashes_and_restarts() -> None:
    c = Cluster(5, seed=32)
    rng = random.Random(32)
    elect(c)
    for n in range(3000):
        if n % 5 == 0:
            _propose_quietly(c, f"h{n}".encode())
        if n % 40 == 0:
            down = [i for i in c.ids if not c.is_up(i)]
            if down and rng.random() < 0.7:
                c.restart(rng.choice(down))
            elif len(down) < 2:
                up = c.live()
                c.crash(rng.choice(up))
        c.tick()
    for i in c.ids:
        if not c.is_up(i):
            c.restart(i)
    c.check_liveness()
    settle(c)
    _consistent(c)
    assert len(c.invariants.leaders) >= 5  # leaders crashed and were replaced
    assert c.invariants.commands_applied() >= 300
