"""Log replication and reads, the half of ``Raft`` that moves entries (Raft §5.3, §7, §8).

Follower side: AppendEntries with the log-matching check and conflict truncation, heartbeats,
InstallSnapshot. Leader side: what to send each follower (entries or a snapshot, within its
Progress window), what its answers mean (fast backtracking, pipelining), the commit rule, and
ReadIndex. ``Raft`` mixes this in; the fields declared here are owned and set up by ``Raft``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from raftkv.raft import quorum
from raftkv.raft.config import Config
from raftkv.raft.errors import Compacted, RaftError, SnapshotTemporarilyUnavailable, Unavailable
from raftkv.raft.log import RaftLog
from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadIndex,
    ReadIndexResponse,
    TimeoutNow,
)
from raftkv.raft.progress import Progress, ProgressState, ProgressTracker
from raftkv.raft.read_only import ReadOnly, ReadRequest
from raftkv.raft.types import Entry, ReadState, Role, Snapshot

log = logging.getLogger("raftkv.raft")


class Replication:
    """Replication and reads; see the module docstring. Not used on its own."""

    id: int
    term: int
    role: Role
    config: Config
    log: RaftLog
    trk: ProgressTracker
    lead_transferee: int
    read_only: ReadOnly
    pending_reads: list[ReadIndex]
    read_states: list[ReadState]
    dropped: int

    def _send(self, m: Message) -> None:
        raise NotImplementedError

    def committed_in_current_term(self) -> bool:
        raise NotImplementedError

    # -- follower side of replication -----------------------------------------------------------

    def _handle_append(self, m: AppendEntries) -> None:
        if m.index < self.log.committed:
            self._send(
                AppendResponse(to=m.frm, frm=self.id, term=self.term, index=self.log.committed)
            )
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(AppendResponse(to=m.frm, frm=self.id, term=self.term, index=last_new))
            return
        # Raft §5.3 with fast backtracking: tell the leader the highest index whose term is not
        # above the one it probed, so it skips a whole conflicting term per round trip.
        hint = min(m.index, self.log.last_index())
        hint, hint_term = self.log.find_conflict_by_term(hint, m.log_term)
        self._send(
            AppendResponse(
                to=m.frm,
                frm=self.id,
                term=self.term,
                index=m.index,
                reject=True,
                reject_hint=hint,
                log_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        if m.commit > self.log.last_index():
            self.dropped += 1  # a leader never sends a commit beyond what we acknowledged
            return
        self.log.commit_to(m.commit)
        self._send(HeartbeatResponse(to=m.frm, frm=self.id, term=self.term, ctx=m.ctx))

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        if self._restore(m.snapshot):
            index = self.log.last_index()
        else:
            index = self.log.committed
        self._send(AppendResponse(to=m.frm, frm=self.id, term=self.term, index=index))

    def _restore(self, snap: Snapshot) -> bool:
        """Raft §7: install a leader's snapshot unless our log already covers it."""
        meta = snap.meta
        if meta.index <= self.log.committed:
            return False
        if self.id not in meta.conf_state.voters:
            log.warning("node %d ignored a snapshot whose voters exclude it", self.id)
            return False
        if self.log.match_term(meta.index, meta.term):
            self.log.commit_to(meta.index)  # our log has it: just move the commit point
            return False
        self.log.restore(snap)
        self.trk.set_voters(meta.conf_state.voters)
        self.trk.reset(self.log.last_index(), self.id, 0)
        log.info("node %d installed snapshot at %d (term %d)", self.id, meta.index, meta.term)
        return True

    # -- leader side of replication -------------------------------------------------------------

    def _append_entries(self, entries: Sequence[Entry]) -> int:
        last = self.log.last_index()
        ents = [
            Entry(term=self.term, index=last + 1 + i, data=e.data, type=e.type)
            for i, e in enumerate(entries)
        ]
        # The leader's own match moves only once these are persisted (see ``advance``).
        return self.log.append(ents)

    def _send_append(self, to: int, send_if_empty: bool = True) -> bool:
        """Send ``to`` the entries it needs next (or a snapshot). Returns whether it sent."""
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        prev = pr.next - 1
        try:
            prev_term = self.log.term(prev)
            ents = self.log.entries(pr.next, self.config.max_size_per_msg)
        except (Compacted, Unavailable):
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        last = prev + len(ents)
        self._send(
            AppendEntries(
                to=to,
                frm=self.id,
                term=self.term,
                log_term=prev_term,
                index=prev,
                entries=tuple(ents),
                commit=min(self.log.committed, last),
            )
        )
        pr.sent_entries(len(ents), last)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # wait until it answers a heartbeat before shipping a snapshot
        try:
            snap = self.log.snapshot()
        except SnapshotTemporarilyUnavailable:
            return False
        if snap.empty:
            raise RaftError("entries are compacted but storage has no snapshot")
        pr.become_snapshot(snap.meta.index)
        self._send(InstallSnapshot(to=to, frm=self.id, term=self.term, snapshot=snap))
        return True

    def _bcast_append(self) -> None:
        for v in self.trk.voters:
            if v != self.id:
                self._send_append(v)

    def _bcast_heartbeat(self, ctx: bytes) -> None:
        for v in self.trk.voters:
            if v != self.id:
                pr = self.trk.progress[v]
                commit = min(pr.match, self.log.committed)
                self._send(Heartbeat(to=v, frm=self.id, term=self.term, commit=commit, ctx=ctx))

    def _handle_append_response(self, m: AppendResponse) -> None:
        pr = self.trk.progress.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        if m.reject:
            probe = m.reject_hint
            if m.log_term > 0:
                probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm)
            return
        was_paused = pr.is_paused()
        if pr.acknowledge(m.index):
            if self._maybe_commit():
                self._bcast_append()
            elif was_paused:
                self._send_append(m.frm)  # it may have missed a commit while paused
            # Pipelining: keep the follower's window full.
            while self._send_append(m.frm, send_if_empty=False):
                pass
        if m.frm == self.lead_transferee and pr.match == self.log.last_index():
            self._send(TimeoutNow(to=m.frm, frm=self.id, term=self.term))

    def _handle_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self.trk.progress.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        pr.heartbeat_answered()
        if pr.match < self.log.last_index():
            self._send_append(m.frm)
        if m.ctx:
            acks = self.read_only.recv_ack(m.frm, m.ctx)
            if acks is not None and quorum.has_quorum(self.trk.voters, acks):
                for rs in self.read_only.advance(m.ctx):
                    self._release_read(rs)

    def _maybe_commit(self) -> bool:
        # Raft §5.4.2: only an entry of the current term is committed by counting replicas.
        if not self.log.maybe_commit(self.trk.committed(), self.term):
            return False
        if self.pending_reads and self.committed_in_current_term():
            reads, self.pending_reads = self.pending_reads, []
            for r in reads:
                self._leader_read(r)
        return True

    # -- reads (Raft §8, thesis §6.4) -----------------------------------------------------------

    def _leader_read(self, m: ReadIndex) -> None:
        if not self.committed_in_current_term():
            # Our commit index may be stale until our no-op commits; answer after it does.
            self.pending_reads.append(m)
            return
        if len(self.trk.voters) == 1:
            self._release_read(ReadRequest(self.log.committed, m.ctx, m.frm))
            return
        if self.read_only.add_request(self.log.committed, m.ctx, m.frm):
            self.read_only.recv_ack(self.id, m.ctx)
            self._bcast_heartbeat(m.ctx)

    def _release_read(self, rs: ReadRequest) -> None:
        if rs.frm in (0, self.id):
            self.read_states.append(ReadState(index=rs.index, ctx=rs.ctx))
        else:
            self._send(
                ReadIndexResponse(
                    to=rs.frm, frm=self.id, term=self.term, index=rs.index, ctx=rs.ctx
                )
            )
