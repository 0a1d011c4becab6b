"""The leader's view of each follower, and every transition of it.

Theory of operation: a follower's ``Progress`` is in one of three states.

- PROBE: the leader does not know where the follower's log matches; it sends one AppendEntries
  per heartbeat interval and waits for the answer (``probe_sent`` pauses it).
- REPLICATE: the follower matched; the leader streams entries optimistically, advancing ``next``
  as it sends, with at most ``max_inflight_msgs`` unacknowledged messages (``Inflights``).
- SNAPSHOT: the entries the follower needs were compacted; a snapshot is on its way and nothing
  else is sent until it is reported.

Every change of ``state``, ``match`` and ``next`` happens in this file.
Invariant: 0 <= match < next.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable

from raftkv.raft import quorum


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """The last indexes of AppendEntries sent and not yet acknowledged, oldest first.

    A bounded ring (a deque): ``full()`` pauses replication to this follower.
    """

    __slots__ = ("_q", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._q: deque[int] = deque()

    def add(self, last_index: int) -> None:
        if self.full():
            raise OverflowError("inflights is full")
        self._q.append(last_index)

    def free_le(self, index: int) -> None:
        """Forget every message whose last index is <= ``index`` (acknowledged)."""
        q = self._q
        while q and q[0] <= index:
            q.popleft()

    def free_first_one(self) -> None:
        if self._q:
            self._q.popleft()

    def full(self) -> bool:
        return len(self._q) >= self.size

    def count(self) -> int:
        return len(self._q)

    def reset(self) -> None:
        self._q.clear()


class Progress:
    """One follower as the leader sees it. Invariant: 0 <= match < next."""

    __slots__ = (
        "inflights",
        "match",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int, match: int = 0) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        self.probe_sent = False
        self.recent_active = False
        self.inflights = Inflights(max_inflight)

    def __repr__(self) -> str:
        return f"Progress({self.state.value} match={self.match} next={self.next})"

    # -- state transitions ----------------------------------------------------------------------

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        """Back to probing: after a rejection, a lost connection or a finished snapshot."""
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    # -- events ---------------------------------------------------------------------------------

    def maybe_update(self, n: int) -> bool:
        """The follower acknowledged entries up to ``n``. Returns whether ``match`` grew."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        self.next = max(self.next, n + 1)
        return updated

    def sent_entries(self, count: int, last_index: int) -> None:
        """An AppendEntries ending at ``last_index`` with ``count`` entries went out."""
        if self.state is ProgressState.REPLICATE:
            if count > 0:
                self.next = last_index + 1
                self.inflights.add(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an AppendEntries at index ``rejected``; ``match_hint`` is the
        highest index that may match (fast backtracking). Returns False for a stale rejection."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False  # stale: it already matched beyond this
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # stale: not an answer to the probe outstanding
        self.next = max(min(rejected, match_hint + 1), self.match + 1, 1)
        self.probe_sent = False
        return True

    def heartbeat_answered(self) -> None:
        """A heartbeat came back: probing may resume, and a full window may free a slot."""
        self.probe_sent = False
        if self.state is ProgressState.REPLICATE and self.inflights.full():
            self.inflights.free_first_one()

    def acknowledge(self, index: int) -> bool:
        """A successful AppendResponse for ``index``: advance and move between states.

        Returns whether ``match`` grew.
        """
        updated = self.maybe_update(index)
        if self.state is ProgressState.PROBE:
            if updated or self.match == index:
                self.become_replicate()
        elif self.state is ProgressState.SNAPSHOT:
            if self.match >= self.pending_snapshot:
                self.become_probe()
                self.become_replicate()
        else:
            self.inflights.free_le(index)
        return updated

    def snapshot_failed(self) -> None:
        self.pending_snapshot = 0
        self.become_probe()

    def is_paused(self) -> bool:
        """Whether the leader should hold back AppendEntries to this follower."""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True


class ProgressTracker:
    """The configuration (voters) with a Progress per member and the votes of an election."""

    def __init__(self, voters: Iterable[int], max_inflight: int) -> None:
        self.voters: tuple[int, ...] = tuple(sorted(set(voters)))
        self.max_inflight = max_inflight
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}

    def reset(self, last_index: int, self_id: int, self_match: int) -> None:
        """New term: every follower is probed from ``last_index + 1``."""
        self.progress = {
            v: Progress(last_index + 1, self.max_inflight, self_match if v == self_id else 0)
            for v in self.voters
        }
        if self_id in self.progress:
            self.progress[self_id].recent_active = True

    def set_voters(self, voters: Iterable[int]) -> None:
        self.voters = tuple(sorted(set(voters)))

    def is_voter(self, node: int) -> bool:
        return node in self.voters

    def committed(self) -> int:
        return quorum.committed_index(self.voters, {k: p.match for k, p in self.progress.items()})

    def record_vote(self, node: int, granted: bool) -> None:
        self.votes.setdefault(node, granted)

    def reset_votes(self) -> None:
        self.votes = {}

    def tally_votes(self) -> quorum.VoteResult:
        return quorum.vote_result(self.voters, self.votes)

    def quorum_active(self, self_id: int) -> bool:
        """CheckQuorum: did a majority hear from us since the last check? Resets the marks."""
        active = {k for k, p in self.progress.items() if p.recent_active or k == self_id}
        for k, p in self.progress.items():
            p.recent_active = k == self_id
        return quorum.has_quorum(self.voters, active)
