"""Fault injection for simulated runs: which faults, at which rates, scheduled from a seed.

Kinds (``FAULT_KINDS``) and their default rates (``FaultRates``):

``loss``       each message is lost with probability 5%.
``dup``        each message is delivered twice with probability 2%.
``delay``      one-way delay uniform in 1-30 ms instead of the default 1-5 ms.
``reorder``    messages of one pair may overtake each other (independent delays).
``partition``  every 1-3 s (about 2 s), the network splits for 300-1500 ms: the leader or a
               random node isolated, a random two-way split, or a "bridge" (two sides that
               both reach one middle node).
``pause``      every 1-3 s a node (the leader in half the cases) stops for 100-800 ms: it
               neither ticks nor receives; messages to it wait.
``skew``       at the start and every 2-6 s after, each node's clock runs at a rate uniform in
               0.8-1.25.
``crash``      every 1-3 s a node (the leader in a third of the cases) crashes and restarts
               10-1000 ms later from its persisted storage; moreover a node that has just
               persisted a vote crashes at once with probability 5% and restarts 1-20 ms later
               (the window in which a forgotten vote would be reused).

Faults run from time 0 to ``end_ms``; ``stop()`` then heals everything (network clean, all
nodes restarted, skew 1.0) so the run can check liveness. Timed faults never outlast ``end_ms``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from raftkv.sim.cluster import Cluster
from raftkv.sim.trace import Event

FAULT_KINDS: tuple[str, ...] = (
    "loss",
    "dup",
    "delay",
    "reorder",
    "partition",
    "pause",
    "skew",
    "crash",
)


def parse_kinds(spec: str) -> tuple[str, ...]:
    """``"none"`` → (); ``"all"`` → every kind; else a comma list of kinds.

    Raises:
        ValueError: an unknown kind, naming it and the known ones.
    """
    spec = spec.strip()
    if spec in ("", "none"):
        return ()
    if spec == "all":
        return FAULT_KINDS
    kinds = [k.strip() for k in spec.split(",") if k.strip()]
    for k in kinds:
        if k not in FAULT_KINDS:
            raise ValueError(f"unknown fault {k!r}; choose from {', '.join(FAULT_KINDS)}, all")
    return tuple(k for k in FAULT_KINDS if k in kinds)


@dataclass(frozen=True, kw_only=True)
class FaultRates:
    """Rates of every fault kind (see the module docstring)."""

    loss: float = 0.05
    dup: float = 0.02
    delay_ms: tuple[int, int] = (1, 30)
    partition_every_ms: tuple[int, int] = (1000, 3000)
    partition_ms: tuple[int, int] = (300, 1500)
    pause_every_ms: tuple[int, int] = (1000, 3000)
    pause_ms: tuple[int, int] = (100, 800)
    skew: tuple[float, float] = (0.8, 1.25)
    skew_every_ms: tuple[int, int] = (2000, 6000)
    crash_every_ms: tuple[int, int] = (1000, 3000)
    down_ms: tuple[int, int] = (10, 1000)
    vote_crash: float = 0.05
    vote_down_ms: tuple[int, int] = (1, 20)
    leader_crash: float = 0.0
    commit_crash: float = 0.0
    drop_outgoing: float = 0.5

    def describe(self, kinds: Iterable[str]) -> str:
        """One line of the rates of ``kinds``, for the CLI's summary."""
        parts = []
        for k in kinds:
            match k:
                case "loss":
                    parts.append(f"loss {self.loss:.0%}")
                case "dup":
                    parts.append(f"dup {self.dup:.0%}")
                case "delay":
                    parts.append(f"delay {self.delay_ms[0]}-{self.delay_ms[1]}ms")
                case "reorder":
                    parts.append("reorder")
                case "partition":
                    parts.append(
                        f"partition {_r(self.partition_ms)}ms every {_r(self.partition_every_ms)}ms"
                    )
                case "pause":
                    parts.append(f"pause {_r(self.pause_ms)}ms every {_r(self.pause_every_ms)}ms")
                case "skew":
                    parts.append(f"skew {self.skew[0]}-{self.skew[1]}")
                case "crash":
                    parts.append(
                        f"crash+restart every {_r(self.crash_every_ms)}ms down "
                        f"{_r(self.down_ms)}ms, crash after a vote {self.vote_crash:.0%}"
                        + (
                            f", after winning an election {self.leader_crash:.0%}"
                            if self.leader_crash
                            else ""
                        )
                        + (
                            f", after a leader's commit {self.commit_crash:.0%}"
                            if self.commit_crash
                            else ""
                        )
                    )
        return ", ".join(parts) if parts else "none"


def _r(r: tuple[int, int]) -> str:
    return f"{r[0]}-{r[1]}"


class FaultInjector:
    """Schedules faults of ``kinds`` on ``cluster`` from ``rng`` until ``end_ms``.

    Args:
        cluster: the cluster to attack.
        kinds: fault kinds to inject (subset of ``FAULT_KINDS``).
        rates: how often and how hard.
        rng: the schedule's random source (derived from the run's seed).
        end_ms: virtual time after which no fault is active.
    """

    def __init__(
        self,
        cluster: Cluster,
        kinds: Iterable[str],
        rates: FaultRates,
        rng: random.Random,
        end_ms: int,
    ) -> None:
        self.cluster = cluster
        self.kinds = frozenset(kinds)
        self.rates = rates
        self.rng = rng
        self.end_ms = end_ms
        self.counts: dict[str, int] = dict.fromkeys(("partition", "pause", "skew", "crash"), 0)
        self._partition_token = 0
        self._stopped = False

    def start(self) -> None:
        """Set the network's faults and schedule the timed ones."""
        c, r, k = self.cluster, self.rates, self.kinds
        if k & {"loss", "dup", "delay", "reorder"}:
            c.set_network(
                loss=r.loss if "loss" in k else 0.0,
                duplicate=r.dup if "dup" in k else 0.0,
                delay_ms=r.delay_ms if "delay" in k else None,
                reorder="reorder" in k,
            )
        if "skew" in k:
            self._skew()
            self._every(r.skew_every_ms, self._skew)
        if "partition" in k:
            self._every(r.partition_every_ms, self._partition)
        if "pause" in k:
            self._every(r.pause_every_ms, self._pause)
        if "crash" in k:
            self._every(r.crash_every_ms, self._crash)
            if r.vote_crash or r.leader_crash or r.commit_crash:
                c.subscribe(self._on_event)

    def counts_with_network(self) -> dict[str, int]:
        """Faults injected so far per kind, message faults included."""
        out = {k: 0 for k in FAULT_KINDS}
        out.update(self.counts)
        out.update(self.cluster.network.stats)
        return out

    def stop(self) -> None:
        """End every fault now: heal, clean network, restart crashed nodes, skew 1.0."""
        self._stopped = True
        c = self.cluster
        if c.network.groups is not None:
            c.heal()
        if not c.network.clean:
            c.set_network()
        for i in c.ids:
            if not c.is_up(i):
                c.restart(i)
            if "skew" in self.kinds:
                c.set_skew(i, 1.0)

    # -- schedule -------------------------------------------------------------------------------

    def _every(self, gap: tuple[int, int], fn: Callable[[], None]) -> None:
        t = self.rng.randint(*gap)
        while t < self.end_ms:
            self.cluster.at(t, fn)
            t += self.rng.randint(*gap)

    def _clip(self, d: int) -> int:
        """A duration that ends no later than ``end_ms``."""
        return max(1, min(d, self.end_ms - self.cluster.now_ms))

    def _pick(self, leader_bias: float) -> int | None:
        c = self.cluster
        live = c.live()
        lead = c.leader()
        if lead is not None and self.rng.random() < leader_bias:
            return lead
        return self.rng.choice(live) if live else None

    def _skew(self) -> None:
        if self._stopped:
            return
        lo, hi = self.rates.skew
        for i in self.cluster.ids:
            self.cluster.set_skew(i, round(self.rng.uniform(lo, hi), 3))
        self.counts["skew"] += 1

    def _partition(self) -> None:
        c, rng = self.cluster, self.rng
        if self._stopped or c.network.groups is not None:
            return
        ids = list(c.ids)
        lead = c.leader()
        shape = rng.randrange(4)
        if shape == 0 and lead is not None:  # isolate the leader with a minority or alone
            others = [i for i in ids if i != lead]
            rng.shuffle(others)
            k = rng.randrange(len(ids) // 2)
            groups = [[lead, *others[:k]], others[k:]]
        elif shape == 1:  # isolate one node
            victim = rng.choice(ids)
            groups = [[i for i in ids if i != victim]]
        elif shape == 2 and len(ids) >= 3:  # bridge: two sides that both reach one node
            rng.shuffle(ids)
            mid = ids[0]
            rest = ids[1:]
            cut = rng.randint(1, len(rest) - 1)
            groups = [[mid, *rest[:cut]], [mid, *rest[cut:]]]
        else:  # random split in two
            rng.shuffle(ids)
            cut = rng.randint(1, len(ids) - 1)
            groups = [ids[:cut], ids[cut:]]
        c.partition(*groups)
        self.counts["partition"] += 1
        self._partition_token += 1
        token = self._partition_token
        d = self._clip(rng.randint(*self.rates.partition_ms))
        c.at(c.now_ms + d, lambda: self._heal(token))

    def _heal(self, token: int) -> None:
        if token == self._partition_token and self.cluster.network.groups is not None:
            self.cluster.heal()

    def _pause(self) -> None:
        if self._stopped:
            return
        i = self._pick(0.5)
        if i is None or self.cluster.is_paused(i):
            return
        self.cluster.pause(i, self._clip(self.rng.randint(*self.rates.pause_ms)))
        self.counts["pause"] += 1

    def _crash(self) -> None:
        if self._stopped:
            return
        i = self._pick(1 / 3)
        if i is not None:
            drop = self.rng.random() < self.rates.drop_outgoing
            self._crash_node(i, self._clip(self.rng.randint(*self.rates.down_ms)), drop)

    def _crash_node(self, i: int, down_ms: int, drop_outgoing: bool) -> None:
        c = self.cluster
        if self._stopped or not c.is_up(i):
            return
        c.crash(i, drop_outgoing=drop_outgoing)
        self.counts["crash"] += 1
        c.at(c.now_ms + down_ms, lambda: self._restart(i))

    def _restart(self, i: int) -> None:
        if not self._stopped and not self.cluster.is_up(i):
            self.cluster.restart(i)

    def _on_event(self, e: Event) -> None:
        ev = e["ev"]
        r = self.rates
        if ev == "vote":
            p, down = (r.vote_crash if e["vote"] else 0.0), r.vote_down_ms
        elif ev == "role":
            p, down = (r.leader_crash if e["role"] == "leader" else 0.0), r.down_ms
        elif ev == "commit":
            p, down = (r.commit_crash if e["node"] == self.cluster.leader() else 0.0), r.down_ms
        else:
            return
        c = self.cluster
        if not p or self._stopped or c.now_ms >= self.end_ms or self.rng.random() >= p:
            return
        i = e["node"]
        d = self._clip(self.rng.randint(*down))
        c.at(c.now_ms, lambda: self._crash_node(i, d, True))


__all__ = ["FAULT_KINDS", "FaultInjector", "FaultRates", "parse_kinds"]
