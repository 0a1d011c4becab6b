"""One seeded simulation run: a cluster, a workload, a fault schedule, and the verdict.

``run_seed(seed, spec)`` is what ``raftkv sim`` does per seed. The workload proposes a unique
command every ``propose_every`` ticks — through the leader, or (one time in five) through a
random live node, which forwards it. Faults run during the first 75% of the ticks (at least
enough ticks remain for the liveness deadline); then every fault ends and the run checks
liveness: within 10 x the maximum election timeout a leader exists and a new proposal commits on
a majority. The workload then goes on, fault-free, until ``ticks``.
"""

from __future__ import annotations

import contextlib
import random
import traceback
from dataclasses import dataclass, field
from typing import TextIO

from raftkv.raft.errors import ProposalDropped
from raftkv.sim.cluster import Cluster, StorageFactory
from raftkv.sim.config import SimConfig
from raftkv.sim.errors import LivenessFailure, SafetyViolation, SimError
from raftkv.sim.faults import FAULT_KINDS, FaultInjector, FaultRates


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """What one run does (everything but the seed).

    Attributes:
        nodes: cluster size.
        ticks: nominal ticks to run (10 ms each by default).
        faults: fault kinds to inject (see ``raftkv.sim.faults``).
        rates: fault rates.
        propose_every: ticks between proposals.
        via_random: probability a proposal goes through a random live node instead of the
            leader.
        sim: cluster configuration (timing, snapshots, message size...).
        fault_fraction: share of ``ticks`` during which faults run.
    """

    nodes: int = 5
    ticks: int = 10_000
    faults: tuple[str, ...] = ()
    rates: FaultRates = field(default_factory=FaultRates)
    propose_every: int = 5
    via_random: float = 0.2
    sim: SimConfig = field(default_factory=SimConfig)
    fault_fraction: float = 0.75


@dataclass(kw_only=True)
class RunResult:
    """The verdict and the activity of one run.

    Attributes:
        outcome: ``"ok"``, ``"safety"`` (a SafetyViolation), ``"liveness"`` (a
            LivenessFailure) or ``"error"`` (an unexpected exception, e.g. from the core).
        message: the failure, one line ('' when ok).
        recent: the last trace events before the failure, one JSON line each.
    """

    seed: int
    outcome: str = "ok"
    message: str = ""
    recent: list[str] = field(default_factory=list)
    leaders: int = 0
    committed: int = 0
    commands: int = 0
    proposals: int = 0
    msgs: int = 0
    bytes: int = 0
    checks: int = 0
    ticks: int = 0
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def summary(self) -> str:
        """The CLI's summary line."""
        verdict = "ok" if self.ok else f"FAIL {self.outcome}: {self.message}"
        return (
            f"seed={self.seed} leaders={self.leaders} committed={self.committed} "
            f"msgs={self.msgs} faults={sum(self.faults.values())} checks={self.checks} {verdict}"
        )


def run_seed(
    seed: int,
    spec: RunSpec,
    trace: TextIO | None = None,
    storage_factory: StorageFactory | None = None,
) -> RunResult:
    """Run one seed; never raises for a failed run (see ``RunResult.outcome``)."""
    sim = spec.sim
    if trace is not None:
        sim = SimConfig(**{**sim.__dict__, "trace": trace})
    cluster = Cluster(spec.nodes, seed, sim, storage_factory)
    rng = random.Random(seed * 7919 + 104729)
    tick_ms = sim.tick_ms
    live_ticks = sim.liveness_deadline_ms // tick_ms + 1
    fault_ticks = min(int(spec.ticks * spec.fault_fraction), spec.ticks - live_ticks)
    if not spec.faults:
        fault_ticks = 0
    injector = FaultInjector(cluster, spec.faults, spec.rates, rng, fault_ticks * tick_ms)
    result = RunResult(seed=seed)
    try:
        injector.start()
        checked = False
        while cluster.ticks < spec.ticks:
            if not checked and cluster.ticks >= fault_ticks:
                injector.stop()
                cluster.check_liveness()
                checked = True
                continue
            if cluster.ticks % spec.propose_every == 0:
                result.proposals += 1
                _propose(cluster, rng, spec.via_random, f"c{result.proposals}".encode())
            cluster.tick()
    except SafetyViolation as e:
        result.outcome, result.message = "safety", str(e)
    except LivenessFailure as e:
        result.outcome, result.message = "liveness", str(e)
    except Exception as e:
        result.outcome = "error"
        where = traceback.extract_tb(e.__traceback__)[-1]
        result.message = f"{type(e).__name__}: {e} at {where.filename}:{where.lineno} (seed={seed})"
    if not result.ok:
        result.recent = cluster.trace.format_recent()
    inv = cluster.invariants
    result.leaders = len(inv.leaders)
    result.committed = inv.max_committed
    result.commands = inv.commands_applied()
    result.msgs = cluster.message_count()
    result.bytes = cluster.bytes_sent()
    result.checks = inv.checks
    result.ticks = cluster.ticks
    result.faults = {k: v for k, v in injector.counts_with_network().items() if k in spec.faults}
    return result


def _propose(cluster: Cluster, rng: random.Random, via_random: float, data: bytes) -> None:
    via = cluster.leader()
    if via is None or rng.random() < via_random:
        up = [i for i in cluster.live() if not cluster.is_paused(i)]
        if not up:
            return
        via = rng.choice(up)
    with contextlib.suppress(ProposalDropped, SimError):
        cluster.propose(data, via=via)


__all__ = ["FAULT_KINDS", "RunResult", "RunSpec", "run_seed"]
