"""A simulator sweep on ``DiskStorage``: every node's log is a real WAL in a temp dir, reopened
(replayed) at every restart, so crash/restart faults exercise recovery under the invariants.

The temp dir is on tmpfs when the machine has one (/dev/shm): the WAL's code paths are the same,
the fsyncs are just cheap, which keeps the sweep within its CI budget (≤ 2 minutes).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from raftkv.raft.types import ConfState
from raftkv.sim import FAULT_KINDS, run_seed
from raftkv.sim.cli import build_parser, spec_from_args
from raftkv.storage import DiskStorage

ARGV = ["--nodes", "3", "--seeds", "1-40", "--ticks", "3000", "--faults", "all"]


class DiskStorages:
    """``storage_factory``: node i's DiskStorage in ``base/n<i>``, reopened on each restart."""

    def __init__(self, base: Path, ids: list[int]) -> None:
        self.base = base
        self.conf = ConfState(voters=tuple(ids))
        self.opened = 0

    def __call__(self, node_id: int) -> DiskStorage:
        self.opened += 1
        return DiskStorage(self.base / f"n{node_id}", conf_state=self.conf, segment_size=1 << 16)


def test_sweep_with_disk_storage() -> None:
    ns = build_parser().parse_args(ARGV)
    spec = spec_from_args(ns)
    root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    faults: dict[str, int] = {}
    committed = reopened = 0
    for seed in ns.seeds:
        with tempfile.TemporaryDirectory(dir=root) as d:
            factory = DiskStorages(Path(d), list(range(1, spec.nodes + 1)))
            r = run_seed(seed, spec, storage_factory=factory)
            assert r.ok, f"seed {seed}: {r.outcome}: {r.message}\n" + "\n".join(r.recent[-10:])
            committed += r.committed
            reopened += factory.opened - spec.nodes
            for k, v in r.faults.items():
                faults[k] = faults.get(k, 0) + v
    assert faults.get("crash", 0) > 0 and reopened > 0  # recovery from the WAL was exercised
    assert all(faults.get(k, 0) > 0 for k in FAULT_KINDS)
    assert committed >= 100 * len(ns.seeds)
