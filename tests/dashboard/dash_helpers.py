"""Helpers for the dashboard tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raftkv.localcluster import ClusterError, LocalCluster, free_ports

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "dashboard"
ELECTION_MS = 500
DEADLINE_MS = 20_000


def start_cluster(base: Path, n: int = 3) -> LocalCluster:
    last: Exception | None = None
    for attempt in range(3):
        ports = free_ports(2 * n)
        pairs = [(ports[2 * i], ports[2 * i + 1]) for i in range(n)]
        c = LocalCluster(base / f"try{attempt}", n=n, ports=pairs, election_timeout_ms=ELECTION_MS)
        try:
            c.start()
            c.wait_ready(20.0)
            return c
        except ClusterError as e:
            last = e
            c.kill_all()
    raise AssertionError(f"cluster did not start: {last}")


def ensure_whole(c: LocalCluster) -> None:
    """Every member running, no partition, one leader known by all (tests start from here)."""
    c.start()
    c.heal()
    c.wait_ready(20.0)


def wait(page: Any, js: str, arg: Any = None, what: str = "") -> Any:
    """Wait (≤ 20 s) until ``js`` (a function body's expression) is truthy on the page."""
    try:
        return page.wait_for_function(js, arg=arg, timeout=DEADLINE_MS, polling=50).json_value()
    except Exception as e:
        raise AssertionError(f"page never showed {what or js}: {str(e).splitlines()[0]}") from None


# JS: the cards' state, as the page shows it.
CARDS = """() => [...document.querySelectorAll('#cards .card')].map(c => ({
  id: +c.dataset.nodeId, index: +c.dataset.index, role: c.dataset.role, up: c.dataset.up === 'true',
  term: +c.dataset.term, commit: +c.dataset.commit, last: +c.dataset.last,
  minority: c.dataset.minority === 'true',
  cantCommit: c.querySelector('.flag.on') !== null && [...c.querySelectorAll('.flag.on')].some(f => f.textContent === "can't commit"),
}))"""

ONE_LEADER_HIGHEST_TERM = """(n) => {
  const cards = [...document.querySelectorAll('#cards .card')];
  if (cards.length !== n) return false;
  const up = cards.filter(c => c.dataset.up === 'true');
  const leaders = up.filter(c => c.dataset.role === 'leader');
  if (leaders.length !== 1) return false;
  const top = Math.max(...up.map(c => +c.dataset.term));
  return +leaders[0].dataset.term === top && document.body.dataset.leader === leaders[0].dataset.nodeId
    ? {id: +leaders[0].dataset.nodeId, index: +leaders[0].dataset.index, term: top} : false;
}"""
