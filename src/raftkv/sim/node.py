"""One simulated node: a ``RawNode``, its persisted storage and its state machine, and the host
loop that carries out its Readies — through ``raftkv.raft.host.plan``, the one place of the
"persist before send" rule — while reporting every fact to the trace and the invariants.

The state machine is the list of applied commands (bytes). Empty NORMAL entries are leader no-ops:
they count as applied indexes but not as commands. Every ``snapshot_interval`` applied entries
the node snapshots the list (msgpack) and compacts its log to ``applied - snapshot_keep``, so
far-behind followers need InstallSnapshot.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from raftkv.raft.host import Apply, Persist, Send, plan
from raftkv.raft.messages import Message, RequestVote
from raftkv.raft.rawnode import RawNode
from raftkv.raft.storage import HostStorage, MemoryStorage
from raftkv.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Role,
    Snapshot,
    SoftState,
)
from raftkv.sim.config import SimConfig
from raftkv.sim.invariants import Invariants
from raftkv.sim.trace import Trace, rle_terms

_CANDIDATES = (Role.PRE_CANDIDATE, Role.CANDIDATE)


class NodeHost(Protocol):
    """What a node needs from the cluster around it."""

    now_ms: int
    trace: Trace
    invariants: Invariants

    def send(self, node: SimNode, m: Message) -> None: ...


class MemoryStorages:
    """The default storage factory: one ``MemoryStorage`` per node, kept across crashes."""

    def __init__(self, voters: tuple[int, ...]) -> None:
        self._voters = voters
        self._stores: dict[int, MemoryStorage] = {}

    def __call__(self, node_id: int) -> HostStorage:
        st = self._stores.get(node_id)
        if st is None:
            st = self._stores[node_id] = MemoryStorage(ConfState(voters=self._voters))
        return st


def encode_commands(commands: list[bytes]) -> bytes:
    """The snapshot format of the simulator's state machine."""
    return msgspec.msgpack.encode(commands)


def decode_commands(data: bytes) -> list[bytes]:
    """Inverse of ``encode_commands``; empty data is an empty state machine."""
    if not data:
        return []
    return msgspec.msgpack.decode(data, type=list[bytes])


class SimNode:
    """A live incarnation of node ``id``. A crash discards the object; a restart builds a new
    one from the same storage.

    Args:
        host: the cluster (network, clock, trace, invariants).
        raw: the core.
        storage: the node's persisted state, written only here.
        incarnation: 0 at start, +1 per restart.
        config: the simulation config (snapshot policy).
    """

    def __init__(
        self,
        host: NodeHost,
        raw: RawNode,
        storage: HostStorage,
        incarnation: int,
        config: SimConfig,
    ) -> None:
        self.host = host
        self.raw = raw
        self.id = raw.id
        self.storage = storage
        self.incarnation = incarnation
        self.config = config
        hs, conf = storage.initial_state()
        self.conf_state: ConfState = conf
        self.hs: HardState = hs
        self.role = Role.FOLLOWER
        self.lead = 0
        self.leading_term = 0  # the term this node leads, 0 when not leader
        snap = storage.snapshot()
        self.snap_index = snap.meta.index
        self.applied = 0
        self._ready_commit = hs.commit  # the commit index of the Ready being carried out
        self.commands: list[bytes] = []
        if not snap.empty:
            self._restore(snap)

    # -- views --------------------------------------------------------------------------------

    def log(self) -> list[Entry]:
        """The persisted log after the snapshot (the sim persists every Ready synchronously)."""
        st = self.storage
        lo, hi = st.first_index(), st.last_index()
        return st.entries(lo, hi + 1) if hi >= lo else []

    def log_terms(self) -> list[int]:
        """Terms of the persisted entries after the snapshot, in index order."""
        return [e.term for e in self.log()]

    def state_fields(self) -> dict[str, object]:
        """The node's full state for a trace ``state`` record (docs/trace.md)."""
        st = self.raw.status().to_dict()
        del st["id"]
        st["up"] = True
        st["log_first"] = self.storage.first_index()
        st["log_terms"] = rle_terms(self.log_terms())
        return st

    # -- the host loop ------------------------------------------------------------------------

    def handle_ready(self, from_tick: bool = False) -> None:
        """Carry out every pending Ready (``plan`` order), then ``advance``.

        Args:
            from_tick: the caller just ticked the node; used to report election timer events.
        """
        raw = self.raw
        while raw.has_ready():
            rd = raw.ready()
            soft = rd.soft_state
            if from_tick:
                self._report_timer(soft, rd.messages)
                from_tick = False
            if soft is not None:
                self._on_soft_state(soft)
            # ``plan`` may apply already-durable committed entries before this Ready's hard
            # state (with the commit index that covers them) is persisted.
            self._ready_commit = (rd.hard_state or self.hs).commit
            for step in plan(rd):
                match step:
                    case Send(messages):
                        for m in messages:
                            self.host.send(self, m)
                    case Persist(snapshot, hard_state, entries):
                        self._persist(snapshot, hard_state, entries)
                    case Apply(snapshot, entries):
                        self._apply(snapshot, entries)
            if soft is not None and soft.role == Role.LEADER:
                self._on_became_leader()
            raw.advance(rd)
            self._maybe_snapshot()

    def _report_timer(self, soft: SoftState | None, messages: list[Message]) -> None:
        role = soft.role if soft is not None else self.role
        fired = ""
        if soft is not None and self.role == Role.LEADER and role != Role.LEADER:
            fired = "check_quorum"
        elif (soft is not None and role in _CANDIDATES) or any(
            isinstance(m, RequestVote) and not m.transfer for m in messages
        ):
            fired = "election"
        if fired:
            self.host.trace.emit(
                self.host.now_ms,
                self.id,
                "timer",
                fired=fired,
                role=role.value,
                term=self.raw.raft.term,
            )

    def _on_soft_state(self, soft: SoftState) -> None:
        if soft.role != self.role or soft.lead != self.lead:
            self.host.trace.emit(
                self.host.now_ms,
                self.id,
                "role",
                role=soft.role.value,
                lead=soft.lead,
                term=self.raw.raft.term,
            )
        if soft.role != Role.LEADER:
            self.leading_term = 0
        self.role, self.lead = soft.role, soft.lead

    def _on_became_leader(self) -> None:
        term = self.hs.term
        self.leading_term = term
        st = self.storage
        last = st.last_index()

        def term_at(i: int) -> int | None:
            return st.term(i) if i <= last else None

        self.host.invariants.on_leader(self.id, term, st.first_index(), term_at)

    def _persist(
        self, snap: Snapshot | None, hs: HardState | None, ents: tuple[Entry, ...]
    ) -> None:
        host, st, inv = self.host, self.storage, self.host.invariants
        now = host.now_ms
        if snap is not None:
            if self.role == Role.LEADER:
                raise inv.fail(
                    "leader-append-only", f"leader {self.id} installed a snapshot in its term"
                )
            st.apply_snapshot(snap)
            self.snap_index = st.snapshot().meta.index
            host.trace.emit(
                now,
                self.id,
                "snapshot",
                source="leader",
                index=snap.meta.index,
                term=snap.meta.term,
            )
        if ents:
            self._check_truncation(ents, hs)
        st.save(hs, ents)
        if ents:
            first = st.first_index()
            prev_term = -1
            for e in ents:
                if e.index < first:
                    continue
                if prev_term < 0:
                    prev_term = st.term(e.index - 1)
                inv.on_append(self.id, e, prev_term)
                prev_term = e.term
            host.trace.emit(
                now,
                self.id,
                "append",
                lo=ents[0].index,
                hi=ents[-1].index,
                terms=rle_terms(e.term for e in ents),
            )
        if hs is not None:
            self._persisted_hard_state(hs)

    def _check_truncation(self, ents: tuple[Entry, ...], hs: HardState | None) -> None:
        st = self.storage
        last = st.last_index()
        start = max(ents[0].index, st.first_index())
        if start > last:
            return
        end = ents[-1].index
        lo = 0
        for i in range(start, last + 1):
            if i > end or st.term(i) != ents[i - ents[0].index].term:
                lo = i
                break
        if not lo:
            return
        term = (hs or self.hs).term
        old = [st.term(i) for i in range(lo, last + 1)]
        self.host.trace.emit(
            self.host.now_ms, self.id, "truncate", lo=lo, hi=last, terms=rle_terms(old)
        )
        self.host.invariants.on_truncate(self.id, lo, last, self.hs.commit, self.leading_term, term)

    def _persisted_hard_state(self, hs: HardState) -> None:
        host, st, prev = self.host, self.storage, self.hs
        now = host.now_ms
        host.invariants.on_hard_state(self.id, hs, st.last_index())
        if hs.term != prev.term:
            host.trace.emit(now, self.id, "term", term=hs.term)
        if hs.vote != prev.vote or (hs.vote and hs.term != prev.term):
            host.trace.emit(now, self.id, "vote", term=hs.term, vote=hs.vote)
        if hs.commit > prev.commit:
            host.trace.emit(now, self.id, "commit", index=hs.commit, term=hs.term)
            lo = max(prev.commit + 1, st.first_index())
            newly = st.entries(lo, hs.commit + 1) if hs.commit >= lo else []
            host.invariants.on_commit(self.id, hs.term, newly, hs.commit)
        self.hs = hs

    def _apply(self, snap: Snapshot | None, ents: tuple[Entry, ...]) -> None:
        if snap is not None:
            self._restore(snap)
        if not ents:
            return
        inv = self.host.invariants
        commands = self.commands
        n = 0
        for e in ents:
            inv.on_apply(self.id, self.applied, max(self.hs.commit, self._ready_commit), e)
            self.applied = e.index
            if e.type == EntryType.NORMAL and e.data:
                commands.append(e.data)
                n += 1
        self.host.trace.emit(
            self.host.now_ms, self.id, "apply", lo=ents[0].index, hi=ents[-1].index, cmds=n
        )

    def _restore(self, snap: Snapshot) -> None:
        commands = decode_commands(snap.data)
        self.host.invariants.on_restore(self.id, self.applied, snap.meta.index, commands)
        self.commands = commands
        self.applied = snap.meta.index
        self.host.trace.emit(
            self.host.now_ms,
            self.id,
            "snapshot",
            source="restore",
            index=snap.meta.index,
            term=snap.meta.term,
            cmds=len(commands),
        )

    def _maybe_snapshot(self) -> None:
        cfg = self.config
        if self.applied - self.snap_index < cfg.snapshot_interval:
            return
        st = self.storage
        snap = st.create_snapshot(self.applied, self.conf_state, encode_commands(self.commands))
        self.snap_index = snap.meta.index
        keep_to = self.applied - cfg.snapshot_keep
        if keep_to >= st.first_index():
            st.compact(keep_to)
        self.host.trace.emit(
            self.host.now_ms,
            self.id,
            "snapshot",
            source="create",
            index=snap.meta.index,
            term=snap.meta.term,
            compacted=st.first_index() - 1,
        )


__all__ = ["MemoryStorages", "NodeHost", "SimNode", "decode_commands", "encode_commands"]
