"""Configuration of one Raft node. Time is counted in ticks; the host decides how long a tick is."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from raftkv.raft.errors import ConfigError

DEFAULT_TICK_MS = 10
DEFAULT_ELECTION_TICK = 15  # 150 ms: randomized in [election_tick, 2 * election_tick)
DEFAULT_HEARTBEAT_TICK = 5  # 50 ms


@dataclass(frozen=True, kw_only=True)
class Config:
    """Args:
    id: this node's id, non-zero.
    rng: the only source of randomness (election timeouts). Seed it for reproducible runs.
    election_tick: ticks without a leader before campaigning; the actual timeout is drawn
        uniformly from [election_tick, 2 * election_tick) each time the timer resets (Raft §5.2).
    heartbeat_tick: ticks between a leader's heartbeats; must be < election_tick.
    pre_vote: run a PreVote round before raising the term (thesis §9.6).
    check_quorum: a leader that has not heard from a quorum within an election timeout steps
        down, and followers ignore votes while they hear a leader (thesis §6.2, §4.2.3).
    max_size_per_msg: bytes of entries per AppendEntries (at least one entry is always sent).
    max_inflight_msgs: AppendEntries in flight per follower in replicate state.
    max_committed_size_per_ready: bytes of committed entries handed out per Ready.
    applied: the index the state machine has already applied (on restart).
    """

    id: int
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    election_tick: int = DEFAULT_ELECTION_TICK
    heartbeat_tick: int = DEFAULT_HEARTBEAT_TICK
    pre_vote: bool = True
    check_quorum: bool = True
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    max_committed_size_per_ready: int = 16 << 20
    applied: int = 0

    def validate(self) -> None:
        """Raises:
        ConfigError: naming the first invalid field.
        """
        if self.id <= 0:
            raise ConfigError("id must be a positive integer")
        if self.heartbeat_tick <= 0:
            raise ConfigError("heartbeat_tick must be > 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigError("election_tick must be greater than heartbeat_tick")
        if self.max_inflight_msgs <= 0:
            raise ConfigError("max_inflight_msgs must be > 0")
        if self.max_size_per_msg <= 0:
            raise ConfigError("max_size_per_msg must be > 0")
        if self.applied < 0:
            raise ConfigError("applied must be >= 0")
