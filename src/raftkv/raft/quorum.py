"""Quorum arithmetic, in one place: majorities, the committed index, vote results.

No other module computes a majority. A joint configuration (thesis §4.3) needs a majority of
both halves: its committed index is the min of the two, its vote result the worse of the two.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(n: int) -> int:
    """The size of a majority of ``n`` voters."""
    return n // 2 + 1


def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The largest index replicated on a majority of ``voters`` (Raft §5.3).

    A voter missing from ``match`` counts as having nothing. An empty configuration places no
    constraint, so it returns a huge number; callers combine it with ``min``.
    """
    if not voters:
        return 1 << 62
    indexes = sorted((match.get(v, 0) for v in voters), reverse=True)
    return indexes[majority(len(voters)) - 1]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """Whether ``votes`` (voter -> granted) already decide an election among ``voters``."""
    if not voters:
        return VoteResult.WON
    granted = rejected = 0
    for v in voters:
        got = votes.get(v)
        if got is True:
            granted += 1
        elif got is False:
            rejected += 1
    q = majority(len(voters))
    if granted >= q:
        return VoteResult.WON
    if len(voters) - rejected < q:
        return VoteResult.LOST
    return VoteResult.PENDING


def has_quorum(voters: Collection[int], active: Collection[int]) -> bool:
    """Whether the ``active`` nodes include a majority of ``voters`` (CheckQuorum)."""
    if not voters:
        return True
    return sum(1 for v in voters if v in active) >= majority(len(voters))


def joint_committed_index(
    incoming: Collection[int], outgoing: Collection[int], match: Mapping[int, int]
) -> int:
    """Thesis §4.3: during joint consensus an entry is committed only by both majorities."""
    return min(committed_index(incoming, match), committed_index(outgoing, match))


def joint_vote_result(
    incoming: Collection[int], outgoing: Collection[int], votes: Mapping[int, bool]
) -> VoteResult:
    a, b = vote_result(incoming, votes), vote_result(outgoing, votes)
    if a is b:
        return a
    if VoteResult.LOST in (a, b):
        return VoteResult.LOST
    return VoteResult.PENDING
