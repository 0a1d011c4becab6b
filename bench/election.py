"""Leader election latency after a leader crash (the Raft paper's Figure 16), simulated.

5 nodes, one-way latency uniform in 2-8 ms, election timeout 150-300 ms, heartbeat 50 ms,
PreVote and CheckQuorum on. Each trial elects a leader, lets the cluster run, crashes the leader
at a random point of its heartbeat interval and measures the virtual time until a surviving
node becomes leader in a higher term. Then a steady-state run measures how many messages and
ticks the core processes per second of wall time.

    .venv/bin/python bench/election.py [--trials 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from raftkv.sim import Cluster, SimConfig
from raftkv.sim.trace import Event

CONFIG = SimConfig(
    tick_ms=10,
    election_tick=15,
    heartbeat_tick=5,
    pre_vote=True,
    check_quorum=True,
    delay_ms=(2, 8),
)


def one_trial(seed: int) -> int:
    """Virtual ms from the leader's crash to the next leader's election."""
    rng = random.Random(seed)
    c = Cluster(5, seed, CONFIG)
    c.run_until(lambda: c.leader() is not None, 1000)
    c.tick(rng.randint(20, 60))  # steady state: heartbeats flowing
    lead = c.leader()
    assert lead is not None
    hb_ms = CONFIG.heartbeat_tick * CONFIG.tick_ms
    c.run_for(rng.randrange(hb_ms))  # a random point of the heartbeat interval
    lead = c.leader()
    assert lead is not None
    old_term = c.term(lead)
    elected: list[int] = []

    def on_event(e: Event) -> None:
        if e["ev"] == "role" and e["role"] == "leader" and e["term"] > old_term and not elected:
            elected.append(e["t_ms"])

    c.subscribe(on_event)
    t0 = c.now_ms
    c.crash(lead)
    c.run_until(lambda: bool(elected), 1000)
    return elected[0] - t0


def throughput(seed: int, ticks: int) -> tuple[float, float, float]:
    """(messages/s, core ticks/s, wall s) of a 5-node cluster proposing every tick."""
    c = Cluster(5, seed, CONFIG)
    c.run_until(lambda: c.leader() is not None, 1000)
    start = time.perf_counter()
    m0, t0 = c.delivered, c.node_ticks
    for n in range(ticks):
        c.propose(b"p%d" % n)
        c.tick()
    wall = time.perf_counter() - start
    return (c.delivered - m0) / wall, (c.node_ticks - t0) / wall, wall


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--throughput-ticks", type=int, default=5000)
    ns = p.parse_args(argv)
    start = time.perf_counter()
    lat = sorted(one_trial(ns.seed * 100_000 + t) for t in range(ns.trials))
    wall = time.perf_counter() - start
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    print(
        f"election after leader crash: trials={len(lat)} median={statistics.median(lat):.0f}ms "
        f"p99={p99}ms max={lat[-1]}ms min={lat[0]}ms (5 nodes, latency 2-8ms, "
        f"timeout 150-300ms, heartbeat 50ms, PreVote+CheckQuorum; {wall:.1f}s wall)"
    )
    msgs, ticks, twall = throughput(ns.seed, ns.throughput_ticks)
    print(
        f"core throughput: {msgs:,.0f} messages/s, {ticks:,.0f} ticks/s "
        f"(5 nodes, a proposal per tick, {twall:.1f}s wall)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
