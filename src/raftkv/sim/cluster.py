"""``Cluster``: a deterministic, virtual-time simulation of a Raft cluster.

Theory of operation. One event queue (a heap ordered by ``(due ms, seq)``, where ``seq`` is a
counter) holds everything that happens: node ticks, message deliveries, pause ends and scheduled
calls. ``tick(n)`` pops every event due in the next ``n x tick_ms`` virtual ms, in order. Each node
ticks every ``tick_ms x skew`` ms; after every tick, delivery or API call on a node, the node's
Readies are carried out at once (``SimNode.handle_ready``), so persisting is synchronous and a
crash between two events loses nothing that was handled. All randomness comes from
``random.Random(seed)`` (the network's and the fault schedule's draws) and per-node generators
derived from the seed, so one seed gives one trace, byte for byte.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from typing import Any

from raftkv.raft.config import Config
from raftkv.raft.errors import ProposalDropped
from raftkv.raft.messages import (
    AppendEntries,
    Heartbeat,
    InstallSnapshot,
    Message,
    encode_message,
)
from raftkv.raft.rawnode import RawNode
from raftkv.raft.storage import HostStorage
from raftkv.raft.types import Entry, Role
from raftkv.sim.config import SimConfig
from raftkv.sim.errors import LivenessFailure, NoLeader, SimError, SimTimeout
from raftkv.sim.invariants import Invariants
from raftkv.sim.network import Flight, Network
from raftkv.sim.node import MemoryStorages, SimNode
from raftkv.sim.trace import Listener, Trace, message_fields, text

StorageFactory = Callable[[int], HostStorage]

_TICK, _DELIVER, _CALL, _RESUME = 0, 1, 2, 3


class Cluster:
    """A simulated cluster of ``nodes`` voters with ids 1..nodes.

    Args:
        nodes: number of nodes.
        seed: fixes every random decision of the run.
        config: timing, core options, snapshot policy and trace sink (``SimConfig()``).
        storage_factory: ``storage_factory(node_id)`` returns the node's persisted storage; it is
            called at start and at every restart. The default keeps one ``MemoryStorage`` per
            node across crashes; a disk-backed factory would reopen the node's directory. At a
            crash the old storage's ``close()`` is called if it has one.
    """

    def __init__(
        self,
        nodes: int,
        seed: int,
        config: SimConfig | None = None,
        storage_factory: StorageFactory | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.seed = seed
        self.config = cfg = config or SimConfig()
        self.ids: tuple[int, ...] = tuple(range(1, nodes + 1))
        self.rng = random.Random(seed)
        self.now_ms = 0
        self.ticks = 0
        self.trace = Trace(cfg.trace, cfg.recent_events)
        self.invariants = Invariants(seed, self._on_violation)
        self.network = Network(self.rng, cfg.delay_ms)
        self.storage_factory: StorageFactory = storage_factory or MemoryStorages(self.ids)
        self._queue: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._flights: dict[int, Flight] = {}
        self._held: dict[int, list[Flight]] = {i: [] for i in self.ids}
        self._nodes: dict[int, SimNode | None] = dict.fromkeys(self.ids)
        self._storages: dict[int, HostStorage] = {}
        self._incarnation = dict.fromkeys(self.ids, -1)
        self._skew = dict.fromkeys(self.ids, 1.0)
        self._last_tick: dict[int, float] = dict.fromkeys(self.ids, 0.0)
        self._tick_gen: dict[int, int] = dict.fromkeys(self.ids, 0)
        self._paused_until = dict.fromkeys(self.ids, 0)
        self.msgs_sent = 0
        self.bytes = 0
        self.delivered = 0
        self.dropped: dict[str, int] = {}
        self.duplicated = 0
        self.node_ticks = 0
        self.trace.header(
            {
                "seed": seed,
                "nodes": nodes,
                "tick_ms": cfg.tick_ms,
                "election_tick": cfg.election_tick,
                "heartbeat_tick": cfg.heartbeat_tick,
                "pre_vote": cfg.pre_vote,
                "check_quorum": cfg.check_quorum,
                "snapshot_interval": cfg.snapshot_interval,
                "state_every": cfg.trace_state_every,
            }
        )
        for i in self.ids:
            self._boot(i)

    # -- event queue ----------------------------------------------------------------------------

    def _push(self, due_ms: int, kind_: int, payload: Any) -> int:
        self._seq += 1
        heapq.heappush(self._queue, (due_ms, self._seq, kind_, payload))
        return self._seq

    def at(self, t_ms: int, fn: Callable[[], None]) -> None:
        """Call ``fn()`` at virtual time ``t_ms`` (at once, after the current event, if past)."""
        self._push(max(t_ms, self.now_ms), _CALL, fn)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every trace event from now on."""
        self.trace.subscribe(listener)

    def run_for(self, ms: int) -> None:
        """Advance virtual time by ``ms``, processing every event due until then."""
        target = self.now_ms + ms
        q = self._queue
        while q and q[0][0] <= target:
            due, _, k, payload = heapq.heappop(q)
            self.now_ms = due
            if k == _DELIVER:
                self._deliver(payload)
            elif k == _TICK:
                self._tick_node(*payload)
            elif k == _CALL:
                payload()
            else:
                self._resume(payload)
        self.now_ms = target

    def tick(self, n: int = 1) -> None:
        """Advance ``n`` nominal ticks (``n x tick_ms`` virtual ms)."""
        every = self.config.trace_state_every
        for _ in range(n):
            self.run_for(self.config.tick_ms)
            self.ticks += 1
            if every and self.trace.writing and self.ticks % every == 0:
                self._state_records()

    def run_until(self, predicate: Callable[[], bool], max_ticks: int) -> int:
        """Tick until ``predicate()`` holds; returns the ticks it took.

        Raises:
            SimTimeout: ``max_ticks`` passed first.
        """
        for n in range(max_ticks + 1):
            if predicate():
                return n
            if n < max_ticks:
                self.tick()
        raise SimTimeout(f"condition not met within {max_ticks} ticks", self.seed)

    # -- nodes ----------------------------------------------------------------------------------

    def _boot(self, i: int) -> None:
        cfg = self.config
        inc = self._incarnation[i] + 1
        self._incarnation[i] = inc
        storage = self.storage_factory(i)
        self._storages[i] = storage
        rng = random.Random((self.seed * 1000003 + i) * 1009 + inc)
        raw = RawNode(
            Config(
                id=i,
                rng=rng,
                election_tick=cfg.election_tick,
                heartbeat_tick=cfg.heartbeat_tick,
                pre_vote=cfg.pre_vote,
                check_quorum=cfg.check_quorum,
                max_size_per_msg=cfg.max_size_per_msg,
                max_inflight_msgs=cfg.max_inflight_msgs,
                applied=storage.snapshot().meta.index,
            ),
            storage,
        )
        if inc:
            hs, _ = storage.initial_state()
            self.trace.emit(
                self.now_ms,
                i,
                "restart",
                incarnation=inc,
                term=hs.term,
                vote=hs.vote,
                commit=hs.commit,
                snapshot_index=storage.snapshot().meta.index,
                last_index=storage.last_index(),
            )
            self.invariants.on_hard_state(i, hs, storage.last_index())
        node = SimNode(self, raw, storage, inc, cfg)
        self._nodes[i] = node
        first = float(self.now_ms + self.rng.randint(1, cfg.tick_ms))
        self._last_tick[i] = first - cfg.tick_ms * self._skew[i]
        self._schedule_tick(i, first)
        node.handle_ready()

    def _schedule_tick(self, i: int, at: float) -> None:
        """Schedule node ``i``'s next tick at exact time ``at`` (ms, fractional; the event is
        due at the rounded ms), replacing any tick scheduled before."""
        self._tick_gen[i] += 1
        self._push(max(round(at), self.now_ms + 1), _TICK, (i, self._tick_gen[i], at))

    def _tick_node(self, i: int, gen: int, exact: float) -> None:
        node = self._nodes[i]
        if node is None or gen != self._tick_gen[i]:
            return
        self._last_tick[i] = exact
        self._schedule_tick(i, exact + self.config.tick_ms * self._skew[i])
        if self._paused_until[i] > self.now_ms:
            return
        self.node_ticks += 1
        node.raw.tick()
        node.handle_ready(from_tick=True)

    def node(self, i: int) -> SimNode:
        """The live node ``i``.

        Raises:
            SimError: the node is crashed.
        """
        n = self._nodes[i]
        if n is None:
            raise SimError(f"node {i} is down", self.seed)
        return n

    def is_up(self, i: int) -> bool:
        """Whether node ``i`` is running (paused nodes are up)."""
        return self._nodes[i] is not None

    def is_paused(self, i: int) -> bool:
        """Whether node ``i`` is in a pause."""
        return self._paused_until[i] > self.now_ms

    def live(self) -> list[int]:
        """Ids of the running nodes."""
        return [i for i in self.ids if self._nodes[i] is not None]

    def storage(self, i: int) -> HostStorage:
        """Node ``i``'s storage (the last one its factory returned, also while crashed)."""
        return self._storages[i]

    # -- the network ----------------------------------------------------------------------------

    def send(self, node: SimNode, m: Message) -> None:
        """Put a message from ``node`` into the network (called by nodes while handling Ready)."""
        self.msgs_sent += 1
        self.bytes += len(encode_message(m))
        now = self.now_ms
        seq = self._seq + 1
        fields = message_fields(m)
        to = m.to
        if to not in self._nodes:
            self.trace.emit(now, node.id, "send", id=seq, due=[], **fields)
            self._dropped(Flight(seq, m, now, now, node.incarnation), "unknown")
            return
        if not self.network.connected(m.frm, to):
            self.trace.emit(now, node.id, "send", id=seq, due=[], **fields)
            self._dropped(Flight(seq, m, now, now, node.incarnation), "partition")
            return
        times = self.network.delivery_times(m.frm, to, now)
        self.trace.emit(now, node.id, "send", id=seq, due=times, **fields)
        if not times:
            self._dropped(Flight(seq, m, now, now, node.incarnation), "loss")
            return
        for n, due in enumerate(times):
            f = Flight(0, m, now, due, node.incarnation, duplicate=n > 0)
            f.seq = self._push(due, _DELIVER, f)
            self._flights[f.seq] = f
        if len(times) > 1:
            self.duplicated += 1

    def _deliver(self, f: Flight) -> None:
        if self._flights.pop(f.seq, None) is None:
            return  # dropped while in flight
        to = f.msg.to
        node = self._nodes[to]
        if node is None:
            self._dropped(f, "down")
            return
        held = self._held[to]
        if held or self._paused_until[to] > self.now_ms:
            held.append(f)
            return
        self._step(node, f)

    def _step(self, node: SimNode, f: Flight) -> None:
        m = f.msg
        self.delivered += 1
        self.trace.emit(self.now_ms, node.id, "deliver", id=f.seq, **message_fields(m))
        node.raw.step(m)
        node.handle_ready()
        if isinstance(m, InstallSnapshot) and not f.duplicate:
            self._report_snapshot(f, True)

    def _dropped(self, f: Flight, reason: str) -> None:
        m = f.msg
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.trace.emit(self.now_ms, m.to, "drop", id=f.seq, reason=reason, **message_fields(m))
        if isinstance(m, InstallSnapshot) and not f.duplicate:
            self.at(self.now_ms, lambda: self._report_snapshot(f, False))
        if reason in ("partition", "down") and isinstance(
            m, AppendEntries | Heartbeat | InstallSnapshot
        ):
            # The transport notices a dead link (not a lost packet) and tells the leader.
            self.at(self.now_ms, lambda: self._report_unreachable(f))

    def _sender(self, f: Flight) -> SimNode | None:
        sender = self._nodes.get(f.msg.frm)
        if sender is None or sender.incarnation != f.sender_incarnation:
            return None
        return sender

    def _report_snapshot(self, f: Flight, ok: bool) -> None:
        sender = self._sender(f)
        if sender is not None:
            sender.raw.report_snapshot(f.msg.to, ok)
            sender.handle_ready()

    def _report_unreachable(self, f: Flight) -> None:
        sender = self._sender(f)
        if sender is not None:
            sender.raw.report_unreachable(f.msg.to)
            sender.handle_ready()

    def _drop_in_flight(self, cond: Callable[[Flight], bool], reason: str) -> None:
        for seq, f in list(self._flights.items()):
            if cond(f):
                del self._flights[seq]
                self._dropped(f, reason)
        for i in self.ids:
            held = self._held[i]
            keep = [f for f in held if not cond(f)]
            if len(keep) != len(held):
                for f in held:
                    if cond(f):
                        self._dropped(f, reason)
                self._held[i] = keep

    def _resume(self, i: int) -> None:
        if self._paused_until[i] > self.now_ms:
            return  # extended by a later pause
        self.trace.emit(self.now_ms, i, "resume")
        held, self._held[i] = self._held[i], []
        for n, f in enumerate(held):
            node = self._nodes[i]
            if node is None:
                for g in held[n:]:
                    self._dropped(g, "down")
                return
            self._step(node, f)

    # -- faults ---------------------------------------------------------------------------------

    def partition(self, *groups: Iterable[int]) -> None:
        """Only nodes sharing a group can talk; a node in no group is cut off from everyone.
        Messages in flight across the new cuts are dropped."""
        gs = [sorted(set(g)) for g in groups]
        self.network.partition(gs)
        self.trace.emit(self.now_ms, 0, "partition", groups=gs)
        net = self.network
        self._drop_in_flight(lambda f: not net.connected(f.msg.frm, f.msg.to), "partition")

    def heal(self) -> None:
        """Remove every partition."""
        self.network.heal()
        self.trace.emit(self.now_ms, 0, "heal")

    def set_network(
        self,
        loss: float = 0.0,
        duplicate: float = 0.0,
        delay_ms: tuple[int, int] | None = None,
        reorder: bool = False,
    ) -> None:
        """Set loss and duplication probabilities, the one-way delay range in ms (default
        ``config.delay_ms``) and whether messages between a pair may be reordered."""
        self.network.configure(loss, duplicate, delay_ms, reorder)
        lo, hi = self.network.delay_ms
        self.trace.emit(
            self.now_ms,
            0,
            "network",
            loss=loss,
            duplicate=duplicate,
            delay_ms=[lo, hi],
            reorder=reorder,
        )

    def crash(self, i: int, drop_outgoing: bool = False) -> None:
        """Stop node ``i``: only what it persisted survives; messages in flight to it are lost.

        Args:
            drop_outgoing: also lose the messages it sent that are still in flight, as if they
                were in its socket buffers when the process died.
        """
        node = self.node(i)
        self._nodes[i] = None
        self._paused_until[i] = 0
        self.trace.emit(
            self.now_ms,
            i,
            "crash",
            term=node.hs.term,
            role=node.role.value,
            drop_outgoing=drop_outgoing,
        )
        self._drop_in_flight(lambda f: f.msg.to == i or (drop_outgoing and f.msg.frm == i), "down")
        close = getattr(node.storage, "close", None)
        if callable(close):
            close()

    def restart(self, i: int) -> None:
        """Start node ``i`` again from ``storage_factory(i)``: a new ``RawNode`` with
        ``applied`` = the snapshot's index, the state machine restored from the snapshot."""
        if self._nodes[i] is not None:
            raise SimError(f"node {i} is already running", self.seed)
        self._boot(i)

    def pause(self, i: int, ms: int) -> None:
        """Node ``i`` neither ticks nor receives for ``ms``; messages to it wait until the end."""
        until = max(self._paused_until[i], self.now_ms + ms)
        self._paused_until[i] = until
        self.trace.emit(self.now_ms, i, "pause", until=until)
        self._push(until, _RESUME, i)

    def set_skew(self, i: int, factor: float) -> None:
        """Node ``i`` ticks every ``tick_ms x factor`` ms from now on (its next tick comes
        ``tick_ms x factor`` after its last one)."""
        if factor <= 0:
            raise ValueError("skew must be > 0")
        self._skew[i] = factor
        self.trace.emit(self.now_ms, i, "skew", factor=factor)
        if self._nodes[i] is not None:
            self._schedule_tick(i, self._last_tick[i] + self.config.tick_ms * factor)

    # -- client API -----------------------------------------------------------------------------

    def propose(self, data: bytes, via: int | None = None) -> int:
        """Propose ``data`` through node ``via`` (default: the current leader).

        Returns:
            The entry's index on a leader; 0 when a follower forwarded it.

        Raises:
            NoLeader: ``via`` is None and no live node leads.
            ProposalDropped: the core refused it (no known leader, transfer in progress).
            SimError: node ``via`` is down.
        """
        if via is None:
            via = self.leader()
            if via is None:
                raise NoLeader("no leader to propose to", self.seed)
        node = self.node(via)
        try:
            index = node.raw.propose(data)
        except ProposalDropped:
            self.trace.emit(self.now_ms, via, "propose", index=-1, data=text(data))
            raise
        self.trace.emit(self.now_ms, via, "propose", index=index, data=text(data))
        node.handle_ready()
        return index

    def campaign(self, i: int) -> None:
        """Make node ``i`` start an election now."""
        node = self.node(i)
        node.raw.campaign()
        node.handle_ready()

    def transfer_leader(self, to: int) -> None:
        """Ask the current leader to hand leadership to ``to`` (thesis §3.10).

        Raises:
            NoLeader: no live node leads.
        """
        lead = self.leader()
        if lead is None:
            raise NoLeader("no leader to transfer from", self.seed)
        node = self.node(lead)
        self.trace.emit(self.now_ms, lead, "transfer", to=to)
        node.raw.transfer_leader(to)
        node.handle_ready()

    # -- views ----------------------------------------------------------------------------------

    def leader(self) -> int | None:
        """The leader of the highest term among live nodes, or None."""
        best: tuple[int, int] | None = None
        for i in self.ids:
            n = self._nodes[i]
            if n is not None and n.role == Role.LEADER and (best is None or n.hs.term > best[0]):
                best = (n.hs.term, i)
        return None if best is None else best[1]

    def term(self, i: int) -> int:
        """Node ``i``'s current term (its persisted term while crashed)."""
        n = self._nodes[i]
        return n.raw.term if n is not None else self._storages[i].initial_state()[0].term

    def role(self, i: int) -> Role | None:
        """Node ``i``'s role, None while crashed."""
        n = self._nodes[i]
        return None if n is None else n.role

    def voted_for(self, i: int) -> int:
        """Node ``i``'s vote in its current term (0: none)."""
        n = self._nodes[i]
        return n.raw.status().vote if n is not None else self._storages[i].initial_state()[0].vote

    def commit_index(self, i: int) -> int:
        """Node ``i``'s persisted commit index."""
        return self._storages[i].initial_state()[0].commit

    def log(self, i: int) -> list[Entry]:
        """Node ``i``'s whole persisted log. Entries compacted into its snapshot come from the
        harness's history of committed entries (everything below a snapshot was committed)."""
        st = self._storages[i]
        lo, hi = st.first_index(), st.last_index()
        hist = self.invariants.committed
        head = [hist[j] for j in range(1, lo) if j in hist]
        return head + (st.entries(lo, hi + 1) if hi >= lo else [])

    def committed(self, i: int) -> list[Entry]:
        """The entries of ``log(i)`` up to node ``i``'s persisted commit index."""
        commit = self.commit_index(i)
        return [e for e in self.log(i) if e.index <= commit]

    def applied_commands(self, i: int) -> list[bytes]:
        """Node ``i``'s state machine: the commands it applied, in order."""
        return list(self.node(i).commands)

    def message_count(self) -> int:
        """Messages sent so far (duplicates and dropped ones included, once each)."""
        return self.msgs_sent

    def bytes_sent(self) -> int:
        """Bytes of encoded messages sent so far."""
        return self.bytes

    # -- liveness -------------------------------------------------------------------------------

    def check_liveness(self, deadline_ms: int | None = None) -> int:
        """Run until a leader exists and a new proposal commits on a majority.

        Call it once the last fault has ended. Returns the virtual ms it took.

        Raises:
            LivenessFailure: not within ``deadline_ms`` (default: 10 x the maximum election
                timeout).
        """
        start = self.now_ms
        deadline = start + (deadline_ms or self.config.liveness_deadline_ms)
        probe = f"liveness-{start}".encode()
        proposer: tuple[int, int] | None = None  # (node, term) that took the probe
        index = 0
        while self.now_ms < deadline:
            lead = self.leader()
            if lead is not None and (proposer is None or proposer != (lead, self.term(lead))):
                try:
                    index = self.propose(probe, via=lead)
                    proposer = (lead, self.term(lead))
                except ProposalDropped:
                    proposer = None
            if proposer is not None and self._committed_on_majority(index, probe):
                self.trace.emit(self.now_ms, 0, "live", index=index, ms=self.now_ms - start)
                return self.now_ms - start
            self.tick()
        raise LivenessFailure(
            f"no leader with a new commit on a majority within {deadline - start} ms after the "
            f"last fault (leader={self.leader()})",
            self.seed,
        )

    def _committed_on_majority(self, index: int, data: bytes) -> bool:
        n = 0
        for i in self.ids:
            st = self._storages[i]
            if self._nodes[i] is None or st.initial_state()[0].commit < index:
                continue
            if index >= st.first_index() and st.entries(index, index + 1)[0].data != data:
                continue
            n += 1
        return n * 2 > len(self.ids)

    # -- trace ----------------------------------------------------------------------------------

    def _on_violation(self, invariant: str, message: str) -> None:
        self.trace.emit(self.now_ms, 0, "violation", invariant=invariant, message=message)

    def _state_records(self) -> None:
        for i in self.ids:
            n = self._nodes[i]
            rec: dict[str, Any] = {"t_ms": self.now_ms, "node": i, "ev": "state", "up": False}
            if n is not None:
                rec.update(n.state_fields())
                rec["paused"] = self._paused_until[i] > self.now_ms
                rec["skew"] = self._skew[i]
            self.trace.record(rec)


__all__ = ["Cluster", "StorageFactory"]
