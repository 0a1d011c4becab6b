"""``SimConfig``: the knobs of one simulated cluster (timing, core options, snapshots, trace)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Configuration of a ``Cluster``.

    Attributes:
        tick_ms: virtual milliseconds per nominal tick; a node with skew ``s`` ticks every
            ``tick_ms * s`` ms.
        election_tick: passed to every node's ``Config`` (timeout drawn in [e, 2e) ticks).
        heartbeat_tick: passed to every node's ``Config``.
        pre_vote: run PreVote before raising the term (thesis §9.6).
        check_quorum: leaders step down without a quorum; followers ignore votes while they
            hear a leader.
        max_size_per_msg: bytes of entries per AppendEntries (small values split long catch-ups
            into many messages, which exposes commit rules; see docs/sim.md).
        max_inflight_msgs: AppendEntries in flight per follower.
        snapshot_interval: a node snapshots its state machine every this many applied entries.
        snapshot_keep: entries kept in the log below a new snapshot (``compact(applied - keep)``).
        delay_ms: default one-way message delay, uniform in [min, max] ms.
        trace: a text stream that receives trace schema v1 (``docs/trace.md``), or None.
        trace_state_every: write a full per-node ``state`` record every this many ticks
            (0: never).
        recent_events: how many recent events are kept in memory for failure reports.
    """

    tick_ms: int = 10
    election_tick: int = 15
    heartbeat_tick: int = 5
    pre_vote: bool = True
    check_quorum: bool = True
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    snapshot_interval: int = 200
    snapshot_keep: int = 50
    delay_ms: tuple[int, int] = (1, 5)
    trace: TextIO | None = None
    trace_state_every: int = 10
    recent_events: int = 30

    @property
    def max_election_timeout_ms(self) -> int:
        """The longest randomized election timeout a node can draw, in ms."""
        return 2 * self.election_tick * self.tick_ms

    @property
    def liveness_deadline_ms(self) -> int:
        """How long after the last fault a leader and a new commit must appear (10 x max
        election timeout)."""
        return 10 * self.max_election_timeout_ms


__all__ = ["SimConfig"]
