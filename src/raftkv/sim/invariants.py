"""Raft's safety invariants, checked incrementally from history the harness keeps.

Nothing here trusts a node's own view: every fact comes from what a node *persisted* (hard
states, entries saved by the host) or *applied*, as observed by the simulator while it carries
out each Ready. A broken invariant raises ``SafetyViolation`` naming it, the seed, the nodes and
the indexes involved.

The invariants (Raft §5.2-§5.4, Figure 3):

``election-safety``      at most one leader per term, ever.
``one-vote-per-term``    a node grants at most one vote per term, across restarts (persisted).
``term-monotonic``       a node's persisted term never decreases, across restarts.
``commit-monotonic``     a node's persisted commit index never decreases; it never exceeds the
                         node's last index.
``leader-append-only``   a leader never overwrites or deletes entries of its own log in its term.
``log-matching``         two entries with the same index and term carry the same data and follow
                         entries with the same term — checked per persisted entry against a
                         global map, which by induction makes the logs identical up to there.
``committed-stable``     an entry covered by a node's commit index is the one every other node
                         saw committed at that index, and a node never truncates below its commit.
``leader-completeness``  a new leader of term T holds every entry committed in a term < T.
``state-machine-safety`` every node applies the same entry at each index, in index order,
                         exactly once, never beyond its commit; a restored snapshot holds exactly
                         the commands applied up to its index.
"""

from __future__ import annotations

from collections.abc import Callable

from raftkv.raft.types import Entry, EntryType, HardState
from raftkv.sim.errors import SafetyViolation

_NO_TERM = 1 << 62


def _fmt(data: bytes) -> str:
    return repr(data[:40])


class Invariants:
    """The history of one run and the checks over it.

    Args:
        seed: the run's seed, carried by every ``SafetyViolation``.
        on_violation: called with (invariant, message) just before raising.
    """

    def __init__(self, seed: int, on_violation: Callable[[str, str], None] | None = None) -> None:
        self.seed = seed
        self.checks = 0
        self._on_violation = on_violation
        self.leaders: dict[int, int] = {}  # term -> leader id
        self._votes: dict[tuple[int, int], int] = {}  # (node, term) -> vote
        self._term: dict[int, int] = {}  # node -> highest persisted term
        self._commit: dict[int, int] = {}  # node -> highest persisted commit
        self._entries: dict[tuple[int, int], tuple[int, bytes, EntryType]] = {}
        self.committed: dict[int, Entry] = {}  # index -> committed entry
        self._commit_term: dict[int, int] = {}  # index -> lowest term it was seen committed in
        self.max_committed = 0
        self._applied: list[Entry] = [Entry(term=0, index=0)]  # index -> applied entry
        self._cmd_count: list[int] = [0]  # index -> commands applied at indexes <= index
        self._cmds: list[bytes] = []

    def fail(self, invariant: str, message: str) -> SafetyViolation:
        """Build (and announce) a violation; the caller raises it."""
        if self._on_violation is not None:
            self._on_violation(invariant, message)
        return SafetyViolation(invariant, message, self.seed)

    # -- persisted state ------------------------------------------------------------------------

    def on_hard_state(self, node: int, hs: HardState, last_index: int) -> None:
        """A node persisted ``hs``; its log now ends at ``last_index``."""
        self.checks += 4
        prev_term = self._term.get(node, 0)
        if hs.term < prev_term:
            raise self.fail(
                "term-monotonic", f"node {node} persisted term {hs.term} after term {prev_term}"
            )
        self._term[node] = hs.term
        if hs.vote:
            key = (node, hs.term)
            prev_vote = self._votes.get(key)
            if prev_vote is None:
                self._votes[key] = hs.vote
            elif prev_vote != hs.vote:
                raise self.fail(
                    "one-vote-per-term",
                    f"node {node} voted for {prev_vote} and then for {hs.vote} in term {hs.term}",
                )
        prev_commit = self._commit.get(node, 0)
        if hs.commit < prev_commit:
            raise self.fail(
                "commit-monotonic",
                f"node {node} persisted commit {hs.commit} after commit {prev_commit}",
            )
        if hs.commit > last_index:
            raise self.fail(
                "commit-monotonic",
                f"node {node} persisted commit {hs.commit} beyond its last index {last_index}",
            )
        self._commit[node] = hs.commit

    def on_truncate(
        self, node: int, lo: int, hi: int, commit: int, leading_term: int, term: int
    ) -> None:
        """Node ``node`` (at ``term``; leader of ``leading_term`` or 0) is about to replace its
        entries [lo, hi] with different ones; ``commit`` is its persisted commit."""
        self.checks += 2
        if leading_term and leading_term == term:
            # Raft §5.3: a leader never overwrites or deletes entries in its log.
            raise self.fail(
                "leader-append-only",
                f"leader {node} of term {term} truncated its entries {lo}..{hi}",
            )
        if lo <= commit:
            raise self.fail(
                "committed-stable",
                f"node {node} truncated entries {lo}..{hi} at or below its commit {commit}",
            )

    def on_append(self, node: int, e: Entry, prev_term: int) -> None:
        """Node ``node`` persisted ``e``, which follows an entry of term ``prev_term``."""
        self.checks += 1
        key = (e.index, e.term)
        seen = self._entries.get(key)
        if seen is None:
            self._entries[key] = (prev_term, e.data, e.type)
        elif seen != (prev_term, e.data, e.type):
            # Raft §5.3 Log Matching: same index and term => same entry and same prefix.
            raise self.fail(
                "log-matching",
                f"node {node} has entry {e.index}@{e.term} data={_fmt(e.data)} after term "
                f"{prev_term}; another node had data={_fmt(seen[1])} after term {seen[0]}",
            )

    def on_commit(self, node: int, term: int, entries: list[Entry], hi: int) -> None:
        """Node ``node`` at ``term`` persisted a commit index ``hi``; ``entries`` are its newly
        committed entries still in its log (those compacted into a snapshot are left out)."""
        committed = self.committed
        commit_term = self._commit_term
        for e in entries:
            i = e.index
            self.checks += 1
            c = committed.get(i)
            if c is None:
                committed[i] = e
            elif c.term != e.term or c.data != e.data or c.type != e.type:
                # Raft §5.4: once committed, an entry is in every later commit at its index.
                raise self.fail(
                    "committed-stable",
                    f"node {node} committed {i}@{e.term} data={_fmt(e.data)}, but {i}@{c.term} "
                    f"data={_fmt(c.data)} was committed before",
                )
            if term < commit_term.get(i, _NO_TERM):
                commit_term[i] = term
        self.max_committed = max(self.max_committed, hi)

    def on_leader(
        self, node: int, term: int, first_index: int, term_at: Callable[[int], int | None]
    ) -> None:
        """Node ``node`` became leader of ``term``; its persisted log starts at ``first_index``
        and ``term_at(i)`` gives the term of its entry ``i`` (None past its end)."""
        self.checks += 1
        other = self.leaders.get(term)
        if other is not None and other != node:
            # Raft §5.2 Election Safety.
            raise self.fail(
                "election-safety", f"nodes {other} and {node} were both leader of term {term}"
            )
        self.leaders[term] = node
        commit_term = self._commit_term
        for i in range(max(first_index, 1), self.max_committed + 1):
            ct = commit_term.get(i)
            if ct is None or ct >= term:
                continue
            self.checks += 1
            c = self.committed[i]
            have = term_at(i)
            if have != c.term:
                # Raft §5.4 Leader Completeness.
                raise self.fail(
                    "leader-completeness",
                    f"leader {node} of term {term} has term {have} at index {i}, "
                    f"but {i}@{c.term} was committed in term {ct}",
                )

    # -- the state machine ----------------------------------------------------------------------

    def on_apply(self, node: int, applied: int, commit: int, e: Entry) -> None:
        """Node ``node``, whose state machine is at ``applied`` and whose persisted commit is
        ``commit`` (the commit index of the Ready that hands ``e`` out), applies ``e``."""
        self.checks += 3
        if e.index != applied + 1:
            raise self.fail(
                "state-machine-safety",
                f"node {node} applied index {e.index} right after index {applied}",
            )
        if e.index > commit:
            raise self.fail(
                "state-machine-safety",
                f"node {node} applied index {e.index} beyond its commit {commit}",
            )
        hist = self._applied
        if e.index < len(hist):
            h = hist[e.index]
            if h.term != e.term or h.data != e.data or h.type != e.type:
                raise self.fail(
                    "state-machine-safety",
                    f"node {node} applied {e.index}@{e.term} data={_fmt(e.data)}; another node "
                    f"applied {h.index}@{h.term} data={_fmt(h.data)}",
                )
        elif e.index == len(hist):
            hist.append(e)
            is_cmd = e.type == EntryType.NORMAL and bool(e.data)
            if is_cmd:
                self._cmds.append(e.data)
            self._cmd_count.append(self._cmd_count[-1] + is_cmd)
        else:
            raise self.fail(
                "state-machine-safety",
                f"node {node} applied index {e.index} but no node ever applied {len(hist)}",
            )

    def on_restore(self, node: int, applied: int, index: int, commands: list[bytes]) -> None:
        """Node ``node``, whose state machine is at ``applied``, restores it from a snapshot at
        ``index``."""
        self.checks += 2
        if index < applied:
            raise self.fail(
                "state-machine-safety",
                f"node {node} restored a snapshot at {index} after applying up to {applied}",
            )
        if index >= len(self._applied):
            raise self.fail(
                "state-machine-safety",
                f"node {node} restored a snapshot at {index}, but no node applied past "
                f"{len(self._applied) - 1}",
            )
        want = self._cmds[: self._cmd_count[index]]
        if commands != want:
            raise self.fail(
                "state-machine-safety",
                f"node {node} restored a snapshot at {index} with {len(commands)} commands; "
                f"{len(want)} were applied up to there",
            )

    def commands_applied(self) -> int:
        """How many commands (non-empty NORMAL entries) were applied by some node."""
        return len(self._cmds)


__all__ = ["Invariants"]
