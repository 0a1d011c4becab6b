"""Errors raised by the simulator. Every one carries the ``seed`` that reproduces it.

::

    SimError                 base class; ``seed`` names the run
    ├── SafetyViolation      an invariant of Raft was broken (message names it, the nodes, indexes)
    ├── LivenessFailure      no leader / no commit within the deadline after the last fault ended
    ├── SimTimeout           ``Cluster.run_until`` ran out of ticks
    └── NoLeader             ``Cluster.propose`` without ``via`` while no live node leads
"""

from __future__ import annotations


class SimError(Exception):
    """Base class of the simulator's errors.

    Args:
        message: what happened, in one line.
        seed: the seed of the run, so the failure can be replayed.
    """

    def __init__(self, message: str, seed: int) -> None:
        super().__init__(f"{message} (seed={seed})")
        self.seed = seed
        self.detail = message


class SafetyViolation(SimError):
    """A Raft safety invariant failed. ``invariant`` is its short name (e.g. ``"log-matching"``)."""

    def __init__(self, invariant: str, message: str, seed: int) -> None:
        super().__init__(f"{invariant}: {message}", seed)
        self.invariant = invariant


class LivenessFailure(SimError):
    """After the last fault ended, no leader was elected or no new proposal committed in time."""


class SimTimeout(SimError):
    """``Cluster.run_until`` reached ``max_ticks`` before its predicate held."""


class NoLeader(SimError):
    """A proposal had nowhere to go: no live node is leader."""


__all__ = ["LivenessFailure", "NoLeader", "SafetyViolation", "SimError", "SimTimeout"]
