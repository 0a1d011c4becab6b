"""The Raft state machine: roles, elections, stepping messages, leadership transfer and the
local API; log replication, commit and reads are mixed in from ``replication``.

``Raft`` is driven by ``RawNode``; it never does I/O. Its outputs accumulate in ``msgs`` (may be
sent at once), ``msgs_after_persist`` (acknowledge state that must be durable first) and
``read_states``; its log's unstable part and commit index are read by ``RawNode.ready``.

Progress transitions live in ``progress``, quorum arithmetic in ``quorum``, log mechanics in
``log``. This module and ``replication`` decide *when* they happen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import assert_never

from raftkv.raft import quorum
from raftkv.raft.config import Config
from raftkv.raft.errors import (
    ProposalDropped,
    RaftError,
)
from raftkv.raft.log import RaftLog
from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Propose,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    TimeoutNow,
    VoteResponse,
)
from raftkv.raft.progress import ProgressState, ProgressTracker
from raftkv.raft.read_only import ReadOnly
from raftkv.raft.replication import Replication
from raftkv.raft.storage import Storage
from raftkv.raft.types import Entry, HardState, ReadState, Role, Snapshot, SoftState
from raftkv.raft.validate import valid_message

log = logging.getLogger("raftkv.raft")


class Raft(Replication):
    """One node's protocol state. Use it through ``RawNode``."""

    def __init__(self, config: Config, storage: Storage) -> None:
        self.config = config
        self.id = config.id
        self.rng = config.rng
        self.log = RaftLog(storage)
        hs, cs = storage.initial_state()
        self.trk = ProgressTracker(cs.voters, config.max_inflight_msgs)
        self.term = hs.term
        self.vote = hs.vote
        self.lead = 0
        self.role = Role.FOLLOWER
        if hs.commit:
            if hs.commit > self.log.last_index():
                raise RaftError(
                    f"persisted commit {hs.commit} is beyond the last index "
                    f"{self.log.last_index()}: the log is corrupted or truncated"
                )
            self.log.commit_to(hs.commit)
        if config.applied > self.log.applied:
            self.log.applied_to(config.applied)
        self.msgs: list[Message] = []
        self.msgs_after_persist: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.pending_reads: list[ReadIndex] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_tick
        self.lead_transferee = 0
        self.dropped = 0
        self.become_follower(self.term, 0)

    # -- state views ----------------------------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, role=self.role)

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def promotable(self) -> bool:
        return self.trk.is_voter(self.id)

    def committed_in_current_term(self) -> bool:
        return self.log.term_or_zero(self.log.committed) == self.term

    # -- role transitions -----------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = 0
        self.lead = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        # Raft §5.2: randomized election timeouts make split votes rare.
        tick = self.config.election_tick
        self.randomized_election_timeout = tick + self.rng.randrange(tick)
        self.lead_transferee = 0
        self.trk.reset_votes()
        self.trk.reset(self.log.last_index(), self.id, self.log.stable_last_index())
        self.read_only.reset()
        self.pending_reads.clear()

    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def become_pre_candidate(self) -> None:
        # Thesis §9.6: a pre-candidate changes neither its term nor its vote.
        self.trk.reset_votes()
        self.lead = 0
        self.role = Role.PRE_CANDIDATE

    def become_candidate(self) -> None:
        if self.role is Role.LEADER:
            raise RaftError("a leader cannot become a candidate")
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def become_leader(self) -> None:
        if self.role is Role.FOLLOWER:
            raise RaftError("a follower cannot become leader without an election")
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        self.trk.progress[self.id].become_replicate()
        # Raft §5.4.2 / §8: a new leader commits a no-op of its own term, which also commits
        # every earlier entry and lets ReadIndex serve reads.
        self._append_entries((Entry(term=0, index=0),))
        self._bcast_append()
        log.info("node %d became leader at term %d", self.id, self.term)

    # -- ticks ----------------------------------------------------------------------------------

    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.hup(transfer=False)

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_tick:
            self.election_elapsed = 0
            if self.config.check_quorum and not self.trk.quorum_active(self.id):
                # Thesis §6.2: a leader that cannot reach a quorum steps down.
                log.info("node %d lost quorum at term %d, stepping down", self.id, self.term)
                self.become_follower(self.term, 0)
                return
            if self.lead_transferee:
                self.lead_transferee = 0  # thesis §3.10: abort a transfer that took too long
        if self.heartbeat_elapsed >= self.config.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat(self.read_only.last_pending_ctx() or b"")

    # -- elections ------------------------------------------------------------------------------

    def hup(self, transfer: bool) -> None:
        """Start an election (after PreVote unless ``transfer``)."""
        if self.role is Role.LEADER or not self.promotable():
            return
        self._campaign(pre=self.config.pre_vote and not transfer, transfer=transfer)

    def _campaign(self, pre: bool, transfer: bool = False) -> None:
        if pre:
            self.become_pre_candidate()
            term = self.term + 1
        else:
            self.become_candidate()
            term = self.term
        self.trk.record_vote(self.id, True)
        if self.trk.tally_votes() is quorum.VoteResult.WON:
            if pre:
                self._campaign(pre=False, transfer=transfer)
            else:
                self.become_leader()
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for v in self.trk.voters:
            if v != self.id:
                self._send(
                    RequestVote(
                        to=v,
                        frm=self.id,
                        term=term,
                        pre=pre,
                        last_index=last_index,
                        last_term=last_term,
                        transfer=transfer,
                    )
                )

    def _handle_vote_request(self, m: RequestVote) -> None:
        # Raft §5.2: at most one vote per term; thesis §9.6: a pre-vote for a later term
        # changes nothing and may be granted whatever we voted.
        can_vote = (
            self.vote == m.frm
            or (self.vote == 0 and self.lead == 0)
            or (m.pre and m.term > self.term)
        )
        # Raft §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
        if can_vote and self.log.is_up_to_date(m.last_index, m.last_term):
            self._send(VoteResponse(to=m.frm, frm=self.id, term=m.term, pre=m.pre, reject=False))
            if not m.pre:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._send(
                VoteResponse(to=m.frm, frm=self.id, term=self.term, pre=m.pre, reject=True)
            )

    def _handle_vote_response(self, m: VoteResponse) -> None:
        if m.pre != (self.role is Role.PRE_CANDIDATE):
            return
        self.trk.record_vote(m.frm, not m.reject)
        result = self.trk.tally_votes()
        if result is quorum.VoteResult.WON:
            if m.pre:
                self._campaign(pre=False)
            else:
                self.become_leader()
        elif result is quorum.VoteResult.LOST:
            self.become_follower(self.term, 0)

    # -- stepping messages ----------------------------------------------------------------------

    def step(self, m: Message) -> None:
        """Step one message; invalid ones are dropped and counted in ``dropped``."""
        if not valid_message(m, self.trk.voters, self.id):
            self.dropped += 1
            return
        if isinstance(m, Propose | ReadIndex):
            pass  # local requests carry no term
        elif m.term > self.term:
            if isinstance(m, RequestVote):
                in_lease = (
                    self.config.check_quorum
                    and self.lead != 0
                    and self.election_elapsed < self.config.election_tick
                )
                if in_lease and not m.transfer:
                    # Thesis §4.2.3: a node that hears a leader ignores disruptive candidates.
                    return
                if not m.pre:
                    self.become_follower(m.term, 0)
            elif isinstance(m, VoteResponse) and m.pre and not m.reject:
                pass  # a granted pre-vote speaks of the term we may campaign in
            elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, 0)
        elif m.term < self.term:
            if isinstance(m, AppendEntries | Heartbeat) and (
                self.config.check_quorum or self.config.pre_vote
            ):
                # A stale leader learns our term and steps down; without this it could keep
                # a partitioned follower from ever electing (thesis §9.6).
                self._send(AppendResponse(to=m.frm, frm=self.id, term=self.term, index=0))
            elif isinstance(m, RequestVote) and m.pre:
                self._send(
                    VoteResponse(to=m.frm, frm=self.id, term=self.term, pre=True, reject=True)
                )
            return
        if isinstance(m, RequestVote):
            self._handle_vote_request(m)
            return
        try:
            if self.role is Role.LEADER:
                self._step_leader(m)
            elif self.role is Role.FOLLOWER:
                self._step_follower(m)
            else:
                self._step_candidate(m)
        except RaftError as e:
            # A message that contradicts what this node has committed is dropped; the checks
            # raise before anything is changed.
            log.warning("node %d dropped %s: %s", self.id, type(m).__name__, e)
            self.dropped += 1

    def _step_leader(self, m: Message) -> None:
        match m:
            case Propose():
                if self.lead_transferee:
                    self.dropped += 1
                    return
                self._append_entries(m.entries)
                self._bcast_append()
            case ReadIndex():
                self._leader_read(m)
            case AppendResponse():
                self._handle_append_response(m)
            case HeartbeatResponse():
                self._handle_heartbeat_response(m)
            case (
                AppendEntries()
                | Heartbeat()
                | InstallSnapshot()
                | TimeoutNow()
                | VoteResponse()
                | ReadIndexResponse()
                | RequestVote()
            ):
                pass  # nothing for a leader of this term to do
            case _:
                assert_never(m)

    def _step_follower(self, m: Message) -> None:
        match m:
            case Propose():
                if self.lead == 0 or m.frm != self.id:
                    self.dropped += 1
                    return
                self._send(Propose(to=self.lead, frm=self.id, term=0, entries=m.entries))
            case ReadIndex():
                if self.lead == 0 or m.frm != self.id:
                    self.dropped += 1
                    return
                self._send(ReadIndex(to=self.lead, frm=self.id, term=0, ctx=m.ctx))
            case AppendEntries():
                self.election_elapsed = 0
                self.lead = m.frm
                self._handle_append(m)
            case Heartbeat():
                self.election_elapsed = 0
                self.lead = m.frm
                self._handle_heartbeat(m)
            case InstallSnapshot():
                self.election_elapsed = 0
                self.lead = m.frm
                self._handle_snapshot(m)
            case TimeoutNow():
                # Thesis §3.10: the leader chose us; campaign at once, skipping PreVote.
                self.hup(transfer=True)
            case ReadIndexResponse():
                if m.index > 0:
                    self.read_states.append(ReadState(index=m.index, ctx=m.ctx))
            case AppendResponse() | HeartbeatResponse() | VoteResponse() | RequestVote():
                pass
            case _:
                assert_never(m)

    def _step_candidate(self, m: Message) -> None:
        match m:
            case Propose() | ReadIndex():
                self.dropped += 1
            case AppendEntries():
                self.become_follower(m.term, m.frm)
                self._handle_append(m)
            case Heartbeat():
                self.become_follower(m.term, m.frm)
                self._handle_heartbeat(m)
            case InstallSnapshot():
                self.become_follower(m.term, m.frm)
                self._handle_snapshot(m)
            case VoteResponse():
                self._handle_vote_response(m)
            case (
                TimeoutNow()
                | AppendResponse()
                | HeartbeatResponse()
                | ReadIndexResponse()
                | RequestVote()
            ):
                pass
            case _:
                assert_never(m)

    # -- local API ------------------------------------------------------------------------------

    def propose(self, entries: tuple[Entry, ...]) -> int:
        if self.role is Role.LEADER:
            if self.lead_transferee:
                raise ProposalDropped(
                    f"leadership is being transferred to {self.lead_transferee}"
                )
            last = self._append_entries(entries)
            self._bcast_append()
            return last
        if self.lead == 0:
            raise ProposalDropped("no leader is known")
        self._send(Propose(to=self.lead, frm=self.id, term=0, entries=entries))
        return 0

    def read_index(self, ctx: bytes) -> None:
        if self.role is Role.LEADER:
            self._leader_read(ReadIndex(to=self.id, frm=self.id, term=0, ctx=ctx))
        elif self.lead:
            self._send(ReadIndex(to=self.lead, frm=self.id, term=0, ctx=ctx))
        else:
            raise ProposalDropped("no leader is known")

    def transfer_leader(self, to: int) -> None:
        if self.role is not Role.LEADER:
            raise RaftError("only the leader can transfer leadership")
        if to == self.id:
            return
        if not self.trk.is_voter(to):
            raise RaftError(f"node {to} is not a voter")
        if self.lead_transferee == to:
            return
        # Thesis §3.10: the transfer must finish within an election timeout, and the leader
        # stops accepting proposals meanwhile.
        self.election_elapsed = 0
        self.lead_transferee = to
        pr = self.trk.progress[to]
        if pr.match == self.log.last_index():
            self._send(TimeoutNow(to=to, frm=self.id, term=self.term))
        else:
            self._send_append(to)

    def report_snapshot(self, to: int, ok: bool) -> None:
        pr = self.trk.progress.get(to)
        if self.role is not Role.LEADER or pr is None:
            return
        if pr.state is not ProgressState.SNAPSHOT:
            return
        if ok:
            pr.become_probe()
        else:
            pr.snapshot_failed()
        pr.probe_sent = True  # wait for a heartbeat answer before probing again

    def report_unreachable(self, to: int) -> None:
        pr = self.trk.progress.get(to)
        if self.role is Role.LEADER and pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def advance(
        self, snapshot: Snapshot | None, entries: Sequence[Entry], committed: Sequence[Entry]
    ) -> None:
        if snapshot is not None:
            self.log.stable_snap_to(snapshot.meta.index)
            if snapshot.meta.index > self.log.applied:
                self.log.applied_to(snapshot.meta.index)
        if entries:
            self.log.stable_to(entries[-1].index, entries[-1].term)
        if committed:
            self.log.applied_to(committed[-1].index)
        if self.role is Role.LEADER:
            # Thesis §10.2.1: the leader's own entries count toward commit once persisted.
            pr = self.trk.progress.get(self.id)
            persisted = self.log.stable_last_index()
            if pr is not None and pr.maybe_update(persisted) and self._maybe_commit():
                self._bcast_append()

    # -- output ---------------------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        # Thesis §3.8: votes and append responses acknowledge persisted state; so does a
        # candidate's vote request, which carries its new term and its vote for itself.
        if isinstance(m, AppendResponse | VoteResponse) or (
            isinstance(m, RequestVote) and not m.pre
        ):
            self.msgs_after_persist.append(m)
        else:
            self.msgs.append(m)
