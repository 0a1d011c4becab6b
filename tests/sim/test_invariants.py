"""The invariant checker catches each violation it names (fed histories directly)."""

from __future__ import annotations

import pytest

from raftkv.raft.types import Entry, HardState
from raftkv.sim import Invariants, SafetyViolation


def _violation(fn: object, *args: object) -> SafetyViolation:
    assert callable(fn)
    with pytest.raises(SafetyViolation) as exc:
        fn(*args)
    assert exc.value.seed == 9 and "seed=9" in str(exc.value)
    return exc.value


def test_election_safety() -> None:
    inv = Invariants(9)
    inv.on_leader(1, 3, 1, lambda i: None)
    inv.on_leader(1, 3, 1, lambda i: None)  # the same leader again is fine
    v = _violation(inv.on_leader, 2, 3, 1, lambda i: None)
    assert v.invariant == "election-safety" and "term 3" in str(v)


def test_one_vote_per_term_and_monotonic_terms_and_commit() -> None:
    inv = Invariants(9)
    inv.on_hard_state(1, HardState(term=2, vote=3, commit=0), 0)
    inv.on_hard_state(1, HardState(term=2, vote=3, commit=0), 0)
    assert _violation(inv.on_hard_state, 1, HardState(term=2, vote=4), 0).invariant == (
        "one-vote-per-term"
    )
    assert _violation(inv.on_hard_state, 1, HardState(term=1), 0).invariant == "term-monotonic"
    inv.on_hard_state(1, HardState(term=3, commit=2), 5)
    assert _violation(inv.on_hard_state, 1, HardState(term=3, commit=1), 5).invariant == (
        "commit-monotonic"
    )
    assert _violation(inv.on_hard_state, 1, HardState(term=3, commit=9), 5).invariant == (
        "commit-monotonic"
    )


def test_log_matching() -> None:
    inv = Invariants(9)
    inv.on_append(1, Entry(term=2, index=5, data=b"a"), 1)
    inv.on_append(2, Entry(term=2, index=5, data=b"a"), 1)
    assert _violation(inv.on_append, 3, Entry(term=2, index=5, data=b"b"), 1).invariant == (
        "log-matching"
    )
    assert _violation(inv.on_append, 3, Entry(term=2, index=5, data=b"a"), 2).invariant == (
        "log-matching"
    )


def test_leader_append_only_and_truncating_committed_entries() -> None:
    inv = Invariants(9)
    inv.on_truncate(1, 5, 7, commit=4, leading_term=0, term=3)
    assert _violation(inv.on_truncate, 1, 5, 7, 4, 3, 3).invariant == "leader-append-only"
    assert _violation(inv.on_truncate, 1, 5, 7, 5, 0, 3).invariant == "committed-stable"


def test_committed_stable_and_leader_completeness() -> None:
    inv = Invariants(9)
    a = Entry(term=1, index=1, data=b"a")
    inv.on_commit(1, 2, [a], 1)
    inv.on_commit(2, 2, [a], 1)
    v = _violation(inv.on_commit, 3, 2, [Entry(term=1, index=1, data=b"z")], 1)
    assert v.invariant == "committed-stable"
    # Committed in term 2: a leader of term 3 must have it, a leader of term 2 need not.
    inv.on_leader(4, 2, 1, lambda i: None)
    inv.on_leader(5, 3, 1, lambda i: 1)
    v = _violation(inv.on_leader, 4, 4, 1, lambda i: 3)
    assert v.invariant == "leader-completeness" and "index 1" in str(v)


def test_state_machine_safety() -> None:
    inv = Invariants(9)
    e1, e2 = Entry(term=1, index=1), Entry(term=1, index=2, data=b"x")
    inv.on_apply(1, 0, 2, e1)
    inv.on_apply(1, 1, 2, e2)
    inv.on_apply(2, 0, 2, e1)
    assert _violation(inv.on_apply, 2, 0, 2, e2).invariant == "state-machine-safety"  # gap
    assert _violation(inv.on_apply, 2, 1, 1, e2).invariant == "state-machine-safety"  # > commit
    other = Entry(term=2, index=2, data=b"y")
    assert _violation(inv.on_apply, 2, 1, 2, other).invariant == "state-machine-safety"
    inv.on_restore(3, 0, 2, [b"x"])
    assert _violation(inv.on_restore, 3, 0, 2, [b"y"]).invariant == "state-machine-safety"
    assert _violation(inv.on_restore, 3, 2, 1, []).invariant == "state-machine-safety"
    assert inv.commands_applied() == 1
