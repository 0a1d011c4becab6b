"""The view model shared by the live and the replay sources.

A *frame* is what the page renders at one instant::

    {"seq", "mode", "t_ms", "tick", "window_lo", "window_hi",
     "nodes": [node view, ...], "msgs": [{"from", "to", "n", "kind"}, ...],
     "partition": [[ids], ...] | None, "ev_ms": newest event time folded in (live)}

A node view has the fields of ``/raftkv/v1/status`` the page uses (``id``, ``name``, ``up``,
``role``, ``term``, ``vote``, ``lead``, ``commit``, ``applied``, ``last_index``,
``snapshot_index``, ``election_elapsed``, ``randomized_election_timeout``, ``progress``) plus
``terms``: the terms of log entries ``window_lo..window_hi`` (``null`` past the node's last
index, ``0`` where the term is unknown).

Log terms are kept as runs ``[[term, count], ...]`` starting at index ``first`` (``TermRuns``).
"""

from __future__ import annotations

from typing import Any

WINDOW = 48  # log entries shown per strip


class TermRuns:
    """The terms of a node's log entries ``first..last`` as run-length encoded runs."""

    __slots__ = ("first", "runs")

    def __init__(self, first: int = 1, runs: list[list[int]] | None = None) -> None:
        self.first = first
        self.runs: list[list[int]] = [list(r) for r in runs or [] if r[1] > 0]

    @property
    def last(self) -> int:
        return self.first - 1 + sum(c for _, c in self.runs)

    def truncate(self, last: int) -> None:
        """Keep entries up to ``last`` only."""
        if last < self.first:
            self.runs = []
            self.first = last + 1
            return
        keep = last - self.first + 1
        out: list[list[int]] = []
        for t, c in self.runs:
            if keep <= 0:
                break
            out.append([t, min(c, keep)])
            keep -= c
        self.runs = out

    def extend(self, term: int, count: int) -> None:
        if count <= 0:
            return
        if self.runs and self.runs[-1][0] == term:
            self.runs[-1][1] += count
        else:
            self.runs.append([term, count])

    def put(self, lo: int, runs: list[list[int]]) -> None:
        """Entries from ``lo`` on are ``runs`` (replacing what was there)."""
        if lo > self.last + 1:  # a gap (e.g. after a snapshot): unknown terms
            self.extend(0, lo - self.last - 1)
        self.truncate(lo - 1)
        for t, c in runs:
            self.extend(t, c)

    def observe_last(self, last: int, term: int) -> None:
        """Live approximation: the log now ends at ``last``; new entries get ``term``."""
        if last < self.last:
            self.truncate(last)
        elif last > self.last:
            self.extend(term, last - self.last)

    def terms(self, lo: int, hi: int) -> list[int | None]:
        """Terms of entries lo..hi: 0 before ``first`` (compacted/unknown), None after ``last``."""
        out: list[int | None] = [None] * (hi - lo + 1)
        for i in range(lo, min(hi, self.first - 1) + 1):
            out[i - lo] = 0
        idx = self.first
        for t, c in self.runs:
            for i in range(max(idx, lo), min(idx + c - 1, hi) + 1):
                out[i - lo] = t
            idx += c
            if idx > hi:
                break
        return out


def fill_committed(views: list[dict[str, Any]]) -> None:
    """Log Matching (Raft §5.3): committed entries are the same everywhere, so an unknown (0)
    term at a committed index is taken from a node that knows it."""
    n = len(views[0]["terms"]) if views else 0
    for i in range(n):
        known = 0
        for v in views:
            t = v["terms"][i]
            if t:
                known = t
                break
        if not known:
            continue
        for v in views:
            if v["terms"][i] == 0:
                v["terms"][i] = known


def window(last_indexes: list[int], size: int = WINDOW) -> tuple[int, int]:
    hi = max([*last_indexes, 0])
    hi = max(hi, size)
    return hi - size + 1, hi


NODE_FIELDS = (
    "role", "term", "vote", "lead", "commit", "applied", "last_index", "snapshot_index",
    "election_elapsed", "randomized_election_timeout", "progress",
)  # fmt: skip
