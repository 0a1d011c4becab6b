"""raftkv.sim: a deterministic simulator that runs Raft clusters in virtual time.

A ``Cluster`` drives real ``raftkv.raft`` cores through a seeded network (loss, duplication,
delay, reordering, partitions), pauses, clock skew and crash/restart with persisted storage,
checking Raft's safety invariants after every step. ``run_seed`` runs one seeded workload with a
fault schedule (what ``raftkv sim`` does per seed). See docs/sim.md and docs/trace.md.
"""

from raftkv.sim.cluster import Cluster, StorageFactory
from raftkv.sim.config import SimConfig
from raftkv.sim.errors import LivenessFailure, NoLeader, SafetyViolation, SimError, SimTimeout
from raftkv.sim.faults import FAULT_KINDS, FaultRates
from raftkv.sim.invariants import Invariants
from raftkv.sim.network import Network
from raftkv.sim.runner import RunResult, RunSpec, run_seed
from raftkv.sim.trace import TRACE_VERSION, Trace

__all__ = [
    "FAULT_KINDS",
    "TRACE_VERSION",
    "Cluster",
    "FaultRates",
    "Invariants",
    "LivenessFailure",
    "Network",
    "NoLeader",
    "RunResult",
    "RunSpec",
    "SafetyViolation",
    "SimConfig",
    "SimError",
    "SimTimeout",
    "StorageFactory",
    "Trace",
    "run_seed",
]
