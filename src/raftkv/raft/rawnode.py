"""``RawNode``: the driver API of the core, and the ``Ready`` it hands to the host.

Bring your own I/O in three steps:

1. Feed the node: ``tick()`` every tick of your clock, ``step(message)`` for each message from a
   peer, ``propose(data)`` / ``read_index(ctx)`` for client requests.
2. While ``has_ready()``, take ``ready()`` and carry it out in the order ``raftkv.raft.host.plan``
   gives (persist before acknowledging, apply in order).
3. Call ``advance(ready)``. Exactly one Ready is outstanding at a time; what is stepped while the
   host persists it forms the next one (group commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raftkv.raft.config import Config
from raftkv.raft.errors import RaftError
from raftkv.raft.messages import Message
from raftkv.raft.progress import ProgressState
from raftkv.raft.raft import Raft
from raftkv.raft.storage import Storage
from raftkv.raft.types import (
    Entry,
    HardState,
    ReadState,
    Role,
    Snapshot,
    SoftState,
)


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the host must do, in the order ``raftkv.raft.host.plan`` returns it.

    Attributes:
        soft_state: the new leader and role, when they changed (not persisted).
        hard_state: term, vote and commit, when changed: saved BEFORE messages_after_persist
            are sent.
        entries: entries to append to stable storage BEFORE messages_after_persist are sent.
        snapshot: a snapshot from the leader, saved with the entries and restored into the
            state machine BEFORE any committed entry of this Ready is applied.
        messages: messages that may be sent at once, in parallel with the disk write (the
            leader's appends and heartbeats, thesis §10.2.1).
        messages_after_persist: votes and append responses, sent only AFTER the persist.
        committed_entries: entries to apply to the state machine, in index order; all of them
            are in stable storage or in ``entries`` of this Ready.
        read_states: linearizable reads ready to be served once ``index`` is applied (§6.4).
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    messages_after_persist: list[Message] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """The leader's view of one follower."""

    match: int
    next: int
    state: ProgressState
    recent_active: bool
    inflight: int


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of a node's state; ``progress`` is filled on a leader only."""

    id: int
    role: Role
    term: int
    vote: int
    lead: int
    commit: int
    applied: int
    last_index: int
    snapshot_index: int
    election_elapsed: int
    randomized_election_timeout: int
    lead_transferee: int
    dropped_messages: int
    voters: tuple[int, ...]
    progress: dict[int, PeerStatus]

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able form (roles and progress states as strings)."""
        return {
            "id": self.id,
            "role": self.role.value,
            "term": self.term,
            "vote": self.vote,
            "lead": self.lead,
            "commit": self.commit,
            "applied": self.applied,
            "last_index": self.last_index,
            "snapshot_index": self.snapshot_index,
            "election_elapsed": self.election_elapsed,
            "randomized_election_timeout": self.randomized_election_timeout,
            "lead_transferee": self.lead_transferee,
            "dropped_messages": self.dropped_messages,
            "voters": list(self.voters),
            "progress": {
                str(k): {"match": p.match, "next": p.next, "state": p.state.value}
                for k, p in sorted(self.progress.items())
            },
        }


class RawNode:
    """A Raft node without I/O. See the module docstring for the host loop.

    Args:
        config: the node's configuration, including its seeded ``rng``.
        storage: what the node has persisted; read at start and whenever entries are needed.

    Raises:
        ConfigError: the config is invalid.
    """

    def __init__(self, config: Config, storage: Storage) -> None:
        config.validate()
        self._raft = Raft(config, storage)
        self._prev_soft = self._raft.soft_state()
        self._prev_hard = self._raft.hard_state()
        self._outstanding: Ready | None = None

    @property
    def id(self) -> int:
        return self._raft.id

    @property
    def term(self) -> int:
        """The current term (cheap: ``status()`` builds a whole snapshot)."""
        return self._raft.term

    @property
    def lead(self) -> int:
        """The leader this node knows of, 0 if none."""
        return self._raft.lead

    @property
    def role(self) -> Role:
        return self._raft.role

    @property
    def raft(self) -> Raft:
        """The state machine underneath (read-only use: tests, status renderers)."""
        return self._raft

    # -- input ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick (election timer or heartbeat timer)."""
        self._raft.tick()

    def campaign(self) -> None:
        """Start an election now (a PreVote round first when enabled)."""
        self._raft.hup(transfer=False)

    def step(self, m: Message) -> None:
        """Step one message received from a peer. Messages that are inconsistent, from unknown
        nodes or for another node are dropped and counted in ``status().dropped_messages``."""
        if m.to != self._raft.id:
            self._raft.dropped += 1
            return
        self._raft.step(m)

    def propose(self, data: bytes) -> int:
        """Propose ``data`` for the log.

        Returns:
            The index the entry got on a leader; 0 when it was forwarded to the leader.

        Raises:
            ProposalDropped: there is no known leader, or leadership is being transferred.
        """
        return self._raft.propose((Entry(term=0, index=0, data=data),))

    def propose_many(self, data: list[bytes]) -> int:
        """Propose a batch; returns the index of the last entry (0 when forwarded)."""
        if not data:
            raise RaftError("propose_many needs at least one entry")
        return self._raft.propose(tuple(Entry(term=0, index=0, data=d) for d in data))

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point (§6.4); a ``ReadState`` with this ``ctx`` arrives
        in a later Ready. ``ctx`` must be unique among reads in flight.

        Raises:
            ProposalDropped: there is no known leader.
        """
        self._raft.read_index(ctx)

    def transfer_leader(self, to: int) -> None:
        """Hand leadership to voter ``to`` (thesis §3.10). Only a leader can do this.

        Raises:
            RaftError: this node is not the leader.
        """
        self._raft.transfer_leader(to)

    def report_snapshot(self, to: int, ok: bool) -> None:
        """Tell the leader whether the snapshot it sent to ``to`` was delivered."""
        self._raft.report_snapshot(to, ok)

    def report_unreachable(self, to: int) -> None:
        """Tell the leader that sending to ``to`` failed; it goes back to probing."""
        self._raft.report_unreachable(to)

    # -- output ---------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Whether ``ready()`` has anything to do (always False while a Ready is outstanding)."""
        if self._outstanding is not None:
            return False
        r = self._raft
        return (
            r.soft_state() != self._prev_soft
            or r.hard_state() != self._prev_hard
            or r.log.has_unstable()
            or bool(r.msgs)
            or bool(r.msgs_after_persist)
            or r.log.has_next_committed_entries()
            or bool(r.read_states)
        )

    def ready(self) -> Ready:
        """Take the next Ready.

        Raises:
            RaftError: a Ready is already outstanding (call ``advance`` first).
        """
        if self._outstanding is not None:
            raise RaftError("ready() called while a Ready is outstanding; call advance() first")
        r = self._raft
        soft = r.soft_state()
        hard = r.hard_state()
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard else None,
            entries=r.log.unstable_entries(),
            snapshot=r.log.unstable_snapshot(),
            messages=r.msgs,
            messages_after_persist=r.msgs_after_persist,
            committed_entries=r.log.next_committed_entries(r.config.max_committed_size_per_ready),
            read_states=r.read_states,
        )
        r.msgs = []
        r.msgs_after_persist = []
        r.read_states = []
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that ``rd`` was carried out (persisted, sent, applied).

        Raises:
            RaftError: ``rd`` is not the outstanding Ready (advance without or twice for it).
        """
        if rd is not self._outstanding:
            raise RaftError("advance() called without an outstanding Ready, or with another one")
        self._outstanding = None
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        self._raft.advance(rd.snapshot, rd.entries, rd.committed_entries)

    def status(self) -> Status:
        """The node's current state (see ``Status``)."""
        r = self._raft
        progress: dict[int, PeerStatus] = {}
        if r.role is Role.LEADER:
            progress = {
                k: PeerStatus(
                    match=p.match,
                    next=p.next,
                    state=p.state,
                    recent_active=p.recent_active,
                    inflight=p.inflights.count(),
                )
                for k, p in r.trk.progress.items()
            }
        return Status(
            id=r.id,
            role=r.role,
            term=r.term,
            vote=r.vote,
            lead=r.lead,
            commit=r.log.committed,
            applied=r.log.applied,
            last_index=r.log.last_index(),
            snapshot_index=r.log.first_index() - 1,
            election_elapsed=r.election_elapsed,
            randomized_election_timeout=r.randomized_election_timeout,
            lead_transferee=r.lead_transferee,
            dropped_messages=r.dropped,
            voters=r.trk.voters,
            progress=progress,
        )


__all__ = ["PeerStatus", "RawNode", "Ready", "Status"]
