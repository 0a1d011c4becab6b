"""Helpers for simulator tests: small scripts over ``Cluster``."""

from __future__ import annotations

from collections.abc import Iterable

from raftkv.raft.types import Entry
from raftkv.sim import Cluster


def elect(c: Cluster, max_ticks: int = 300) -> int:
    """Tick until some live node leads; return its id."""
    c.run_until(lambda: c.leader() is not None, max_ticks)
    lead = c.leader()
    assert lead is not None
    return lead


def commands(entries: Iterable[Entry]) -> list[bytes]:
    """The non-empty NORMAL entries' data, in order (leader no-ops left out)."""
    return [e.data for e in entries if e.data]


def wait_commit(c: Cluster, index: int, nodes: Iterable[int], max_ticks: int = 300) -> None:
    """Tick until every node in ``nodes`` has persisted a commit index >= ``index``."""
    ids = list(nodes)
    c.run_until(lambda: all(c.commit_index(i) >= index for i in ids), max_ticks)


def settle(c: Cluster, max_ticks: int = 500) -> None:
    """Tick until every live node has the leader's commit index and log (compared where all
    logs still hold entries)."""

    def done() -> bool:
        lead = c.leader()
        if lead is None:
            return False
        want = c.commit_index(lead)
        last = c.log(lead)[-1].index if c.log(lead) else 0
        lo = max(c.storage(i).first_index() for i in c.live())
        ref = [e for e in c.log(lead) if e.index >= lo]
        return want == last and all(
            c.commit_index(i) == want and [e for e in c.log(i) if e.index >= lo] == ref
            for i in c.live()
        )

    c.run_until(done, max_ticks)


def propose_all(c: Cluster, data: Iterable[bytes], via: int | None = None) -> list[int]:
    """Propose each item and return the indexes."""
    return [c.propose(d, via=via) for d in data]
