from raftkv.raft import quorum
from raftkv.raft.quorum import VoteResult


def test_majority() -> None:
    assert [quorum.majority(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


def test_committed_index_is_the_majority_match() -> None:
    voters = [1, 2, 3, 4, 5]
    assert quorum.committed_index(voters, {1: 9, 2: 7, 3: 5, 4: 3, 5: 1}) == 5
    assert quorum.committed_index(voters, {1: 9, 2: 9}) == 0  # missing voters have nothing
    assert quorum.committed_index([1, 2, 3], {1: 4, 2: 4, 3: 2}) == 4
    assert quorum.committed_index([1], {1: 3}) == 3
    assert quorum.committed_index([1, 2, 3, 4], {1: 8, 2: 6, 3: 4, 4: 2}) == 4


def test_vote_result() -> None:
    v = [1, 2, 3]
    assert quorum.vote_result(v, {1: True}) is VoteResult.PENDING
    assert quorum.vote_result(v, {1: True, 2: True}) is VoteResult.WON
    assert quorum.vote_result(v, {1: True, 2: False}) is VoteResult.PENDING
    assert quorum.vote_result(v, {1: True, 2: False, 3: False}) is VoteResult.LOST
    assert quorum.vote_result([1, 2, 3, 4], {1: True, 2: True}) is VoteResult.PENDING
    assert quorum.vote_result([1, 2, 3, 4], {3: False, 4: False}) is VoteResult.LOST
    assert quorum.vote_result(v, {9: True, 8: True}) is VoteResult.PENDING  # non-voters ignored


def test_has_quorum() -> None:
    assert quorum.has_quorum([1, 2, 3], {1, 2})
    assert not quorum.has_quorum([1, 2, 3], {1, 9})


def test_joint_needs_both_majorities() -> None:
    match = {1: 5, 2: 5, 3: 1, 4: 1, 5: 1}
    assert quorum.joint_committed_index([1, 2, 3], [3, 4, 5], match) == 1
    assert quorum.joint_vote_result([1, 2, 3], [3, 4, 5], {1: True, 2: True}) is VoteResult.PENDING
    assert (
        quorum.joint_vote_result([1, 2, 3], [3, 4, 5], {1: True, 2: True, 3: True, 4: True})
        is VoteResult.WON
    )
    assert quorum.joint_vote_result([1, 2, 3], [4, 5, 6], {4: False, 5: False}) is VoteResult.LOST
