"""``Node``: the asyncio host of one Raft member.

It owns a ``RawNode`` and runs two tasks: a tick timer and the Ready loop. The Ready loop carries
out each Ready through ``raftkv.raft.host.plan`` (the one place of the persist-before-send
rule); the disk write runs in a worker thread so the event loop keeps stepping messages and
taking requests meanwhile, and everything that arrives during an fsync forms the next Ready —
group commit. Client requests are batched the same way: all proposals waiting when the loop
comes round go to the core in one ``propose_many``, all linearizable reads share one ReadIndex.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from raftkv.node.errors import NodeStopped, NotLeaderError, StorageFailed
from raftkv.node.notices import CommitNotices
from raftkv.node.proposal import Proposal
from raftkv.node.statemachine import StateMachine, origin_of, unwrap, wrap
from raftkv.raft import Config, ProposalDropped, RaftError, RawNode, Role
from raftkv.raft.host import Apply, Persist, Send, plan
from raftkv.raft.messages import Message, kind
from raftkv.raft.storage import HostStorage, Storage
from raftkv.raft.types import ConfState, Entry, HardState, ReadState, Snapshot

log = logging.getLogger("raftkv.node")


class _Done:
    """An awaitable that is already complete (a synchronous storage's write)."""

    def __await__(self):  # type: ignore[no-untyped-def]
        return iter(())


_DONE = _Done()


class AsyncHostStorage(Storage, Protocol):
    """A storage whose writes are awaitable (``raftkv.storage.AsyncDiskStorage``): the disk
    half runs in its own thread, the in-memory half on the event loop."""

    def save(self, hard_state: HardState | None, entries: Sequence[Entry]) -> Awaitable[None]: ...

    def apply_snapshot(self, snap: Snapshot) -> Awaitable[None]: ...

    def create_snapshot(
        self, index: int, conf_state: ConfState, data: bytes
    ) -> Awaitable[Snapshot]: ...

    def compact(self, index: int) -> Awaitable[None]: ...


class Transport(Protocol):
    """What the node needs from a transport: a non-blocking send."""

    def send(self, messages: Sequence[Message]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """Args:
    id: this member's id.
    tick_ms: length of one tick.
    election_tick / heartbeat_tick: in ticks (etcd's flags are in ms; divide by tick_ms).
    snapshot_count: applied entries between two snapshots of the state machine.
    snapshot_keep: entries kept in the log behind a snapshot for slow followers.
    max_batch: proposals handed to the core at once.
    seed: seeds the election-timeout RNG (default: from the id and the clock).
    commit_notice_ms: how long a leader holds an append that only carries a new commit index,
        for the next append to carry it instead (see ``raftkv.node.notices``; 0: never held).
    """

    id: int
    tick_ms: int = 10
    election_tick: int = 15
    heartbeat_tick: int = 5
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_count: int = 10_000
    snapshot_keep: int = 5_000
    max_batch: int = 4096
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    seed: int | None = None
    commit_notice_ms: float = 2.0


def next_tick(due: float, now: float, interval: float) -> float:
    """When the tick after the one ``due`` now should fire. After a stall of the loop (a long
    apply, a snapshot, a busy machine) the missed ticks are dropped, as Go's ticker drops them
    for etcd, instead of firing in a burst that would expire every election timer at once."""
    following = due + interval
    return following if following >= now else now + interval


class Node:
    """One Raft member in an asyncio program.

    Args:
        config: see ``NodeConfig``.
        storage: the member's persisted log: ``AsyncDiskStorage`` (writes awaited, the loop
            never blocks) or a synchronous ``HostStorage`` such as ``MemoryStorage`` (called
            inline); bootstrapped with the cluster's ``ConfState`` before the first start.
        transport: where outgoing messages go; incoming ones are handed to ``receive``.
        state_machine: what committed entries are applied to.
    """

    def __init__(
        self,
        config: NodeConfig,
        storage: HostStorage | AsyncHostStorage,
        transport: Transport,
        state_machine: StateMachine,
    ) -> None:
        self.config = config
        self.id = config.id
        self.storage = storage
        self.transport = transport
        self.sm = state_machine
        snap = storage.snapshot()
        if not snap.empty:
            state_machine.restore(snap.data)
        seed = config.seed if config.seed is not None else (config.id << 32) ^ time.time_ns()
        self.raw = RawNode(
            Config(
                id=config.id,
                rng=random.Random(seed),
                election_tick=config.election_tick,
                heartbeat_tick=config.heartbeat_tick,
                pre_vote=config.pre_vote,
                check_quorum=config.check_quorum,
                max_size_per_msg=config.max_size_per_msg,
                max_inflight_msgs=config.max_inflight_msgs,
                applied=snap.meta.index,
            ),
            storage,
        )
        self.applied = snap.meta.index
        self.snapshot_index = snap.meta.index
        self.started_at = time.monotonic()
        self.on_apply: list[Callable[[list[Entry]], None]] = []
        self.after_answers: list[Callable[[], None]] = []
        """Called after each applied batch has settled its proposals: where a server sends the
        answers its proposals' callbacks queued, one write per connection."""
        self.answering = False
        """True while an applied batch settles its proposals (their callbacks are running)."""
        self.on_soft_state: list[Callable[[int, Role, int], None]] = []
        self._rids = itertools.count(1)
        self._ctxs = itertools.count(1)
        self._pending: list[bytes] = []
        self._waiters: dict[int, Proposal] = {}
        self._forwarded: dict[int, int] = {}  # request id -> the leader it was forwarded to
        self._read_pending: list[asyncio.Future[int]] = []
        self._read_by_ctx: dict[bytes, list[asyncio.Future[int]]] = {}
        self._read_ready: list[tuple[int, list[asyncio.Future[int]]]] = []
        self._apply_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        self.sent_kinds: dict[tuple[int, str], int] = {}
        """Messages sent so far, per (peer, message kind): what the event stream shows."""
        self.notices = CommitNotices(config.commit_notice_ms / 1000, self._transmit)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.fatal: BaseException | None = None
        self.done = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._tick_loop(), name=f"raftkv-tick-{self.id}"),
            asyncio.create_task(self._ready_loop(), name=f"raftkv-ready-{self.id}"),
        ]

    async def stop(self, transfer: bool = True, timeout: float = 2.0) -> None:
        """Stop: hand leadership to the most caught-up follower first when ``transfer``."""
        if self._stopped:
            return
        if transfer and self.is_leader() and len(self.raw.status().voters) > 1:
            await self._transfer_away(timeout)
        self._stopped = True
        self._wake.set()
        self.notices.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._fail_all(NodeStopped("the node is stopping"))
        close = getattr(self.storage, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result
        for cb in self.on_stop:
            await cb()
        self.done.set()

    async def _transfer_away(self, timeout: float) -> None:
        st = self.raw.status()
        followers = [(p.match, k) for k, p in st.progress.items() if k != self.id]
        if not followers:
            return
        _, target = max(followers)
        with contextlib.suppress(RaftError):
            self.raw.transfer_leader(target)
            self._wake.set()
        deadline = time.monotonic() + timeout
        while self.is_leader() and time.monotonic() < deadline:
            await asyncio.sleep(self.config.tick_ms / 1000)

    # -- inputs ---------------------------------------------------------------------------------

    def receive(self, m: Message) -> None:
        """Step a message from a peer (called by the transport)."""
        if self._stopped:
            return
        self.raw.step(m)
        self._wake.set()

    def report_snapshot(self, to: int, ok: bool) -> None:
        self.raw.report_snapshot(to, ok)
        self._wake.set()

    def report_unreachable(self, to: int) -> None:
        self.raw.report_unreachable(to)

    def propose(self, payload: bytes) -> Proposal:
        """Replicate ``payload``; the ``Proposal`` gets the state machine's result once it is
        applied here. Await it, or add a done-callback: callbacks run inside the apply, so a
        server can answer in the same turn of the loop.

        Raises (from the proposal):
            NotLeaderError: no leader is known (retry later or elsewhere).
            NodeStopped / StorageFailed: the node is not running.
        """
        fut = Proposal()
        try:
            self._check_running()
        except (NodeStopped, StorageFailed) as e:
            fut.set_exception(e)
            return fut
        rid = next(self._rids)
        self._waiters[rid] = fut
        fut.add_done_callback(lambda _: self._forget(rid))
        self._pending.append(wrap(self.id, rid, payload))
        self._wake.set()
        return fut

    def _forget(self, rid: int) -> None:
        self._waiters.pop(rid, None)
        self._forwarded.pop(rid, None)

    async def read_index(self) -> int:
        """Linearizable read point (Raft §8, thesis §6.4): returns once this node has applied
        everything committed when the read arrived; then a local read is linearizable.

        Raises:
            NotLeaderError: no leader is known.
        """
        self._check_running()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._read_pending.append(fut)
        self._wake.set()
        index = await fut
        await self.wait_applied(index)
        return index

    async def wait_applied(self, index: int) -> None:
        if self.applied >= index:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._apply_waiters.append((index, fut))
        await fut

    def campaign(self) -> None:
        self.raw.campaign()
        self._wake.set()

    def transfer_leader(self, to: int) -> None:
        self.raw.transfer_leader(to)
        self._wake.set()

    # -- views ----------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.raw.role is Role.LEADER

    def leader(self) -> int:
        return self.raw.lead

    def status(self) -> dict[str, object]:
        d = self.raw.status().to_dict()
        d["applied"] = self.applied
        d["snapshot_index"] = self.snapshot_index
        d["uptime_s"] = round(time.monotonic() - self.started_at, 3)
        return d

    # -- the loops ------------------------------------------------------------------------------

    def _check_running(self) -> None:
        if self.fatal is not None:
            raise StorageFailed(str(self.fatal))
        if self._stopped:
            raise NodeStopped("the node is stopped")

    async def _tick_loop(self) -> None:
        interval = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while not self._stopped:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = next_tick(next_at, loop.time(), interval)
            self.raw.tick()
            self._wake.set()

    async def _ready_loop(self) -> None:
        try:
            while not self._stopped:
                await self._wake.wait()
                self._wake.clear()
                self._flush_requests()
                while self.raw.has_ready() and not self._stopped:
                    await self._handle_ready()
                    self._flush_requests()
        except asyncio.CancelledError:
            raise
        except StorageFailed as e:
            self._die(e)
        except Exception as e:  # a bug: stop rather than run on with unknown state
            log.exception("node %d: ready loop failed", self.id)
            self._die(e)

    def _die(self, e: BaseException) -> None:
        log.error("node %d stopping: %s", self.id, e)
        self.fatal = e
        self._stopped = True
        self.notices.close()
        self._fail_all(StorageFailed(str(e)) if not isinstance(e, StorageFailed) else e)
        self.done.set()

    async def _handle_ready(self) -> None:
        rd = self.raw.ready()
        if rd.soft_state is not None:
            for cb in self.on_soft_state:
                cb(rd.soft_state.lead, rd.soft_state.role, self.raw.term)
            if rd.soft_state.role is not Role.LEADER and rd.soft_state.lead == 0:
                self._fail_reads(NotLeaderError("etcdserver: no leader"))
            if self._forwarded:
                self._fail_forwarded(rd.soft_state.lead)
        steps = plan(rd)
        waiting = self._forwarders(rd.committed_entries)
        persist = next((s for s in steps if isinstance(s, Persist)), None)
        writing: Awaitable[None] = _DONE
        first = 0
        if steps and isinstance(steps[0], Send):
            if not rd.entries and len(steps) > 1 and isinstance(steps[1], Apply):
                # Nothing new to replicate, only entries to apply (already durable) and the
                # commit index for the followers: answer the clients first.
                self._apply(steps[1].snapshot, steps[1].entries)
                self.notices.send(steps[0].messages, waiting)
                first = 2
            else:
                # A leader's appends leave first: the followers' round trip and fsync are the
                # longer path to commit than this node's own fsync.
                self.notices.send(steps[0].messages, waiting)
                first = 1
        if persist is not None:
            # Then start the disk write (AsyncDiskStorage hands it to its I/O thread in this
            # call). An Apply that plan() put before the Persist covers entries already
            # durable, so it runs while the fsync is in flight.
            try:
                writing = self._start_persist(persist.snapshot, persist.hard_state, persist.entries)
            except Exception as e:
                raise StorageFailed(f"storage write failed: {e}") from e
        for step in steps[first:]:
            match step:
                case Send(messages):
                    self.notices.send(messages, waiting)
                case Persist():
                    try:
                        await writing
                    except Exception as e:
                        raise StorageFailed(f"storage write failed: {e}") from e
                case Apply(snapshot, entries):
                    self._apply(snapshot, entries)
        self._handle_read_states(rd.read_states)
        self.raw.advance(rd)
        self._release_reads()
        await self._maybe_snapshot()

    def _forwarders(self, committed: Sequence[Entry]) -> set[int]:
        """The other members whose forwarded proposals are among ``committed``: they answer
        their clients only once they apply them, so their commit notices must not wait."""
        if not committed or self.raw.role is not Role.LEADER:
            return set()
        me = self.id
        return {o for e in committed if (o := origin_of(e.data)) != me and o}

    def _transmit(self, messages: tuple[Message, ...]) -> None:
        self.transport.send(messages)
        counts = self.sent_kinds
        for m in messages:
            key = (m.to, kind(m))
            counts[key] = counts.get(key, 0) + 1

    def _start_persist(
        self, snap: Snapshot | None, hs: HardState | None, entries: tuple[Entry, ...]
    ) -> Awaitable[None]:
        """Start the write; the result is awaited before anything acknowledges it. While it
        awaits an fsync, the loop keeps stepping messages and taking proposals: they form the
        next Ready (group commit)."""
        if snap is not None:
            return self._persist_with_snapshot(snap, hs, entries)
        r = self.storage.save(hs, entries)
        return r if r is not None else _DONE

    async def _persist_with_snapshot(
        self, snap: Snapshot, hs: HardState | None, entries: tuple[Entry, ...]
    ) -> None:
        r = self.storage.apply_snapshot(snap)
        if inspect.isawaitable(r):
            await r
        r2 = self.storage.save(hs, entries)
        if inspect.isawaitable(r2):
            await r2

    def _apply(self, snap: Snapshot | None, entries: tuple[Entry, ...]) -> None:
        if snap is not None:
            self.sm.restore(snap.data)
            self.applied = snap.meta.index
            self.snapshot_index = snap.meta.index
        if not entries:
            return
        plain: list[Entry] = []
        owners: list[int] = []
        for e in entries:
            origin, rid, payload = unwrap(e.data)
            plain.append(Entry(term=e.term, index=e.index, data=payload, type=e.type))
            owners.append(rid if origin == self.id else 0)
        results = self.sm.apply(plain)
        self.applied = entries[-1].index
        for cb in self.on_apply:
            cb(plain)
        # Then the answers: their callbacks run here, in this call (see Proposal).
        self.answering = True
        try:
            for rid, result in zip(owners, results, strict=True):
                if rid:
                    fut = self._waiters.get(rid)
                    if fut is not None and not fut.done():
                        if isinstance(result, BaseException):
                            fut.set_exception(result)
                        else:
                            fut.set_result(result)
        finally:
            self.answering = False
        for done in self.after_answers:
            try:
                done()
            except Exception:  # a server's bug must not stop the node
                log.exception("node %d: an after_answers hook failed", self.id)

    async def _maybe_snapshot(self) -> None:
        if self.applied - self.snapshot_index < self.config.snapshot_count:
            return
        index = self.applied
        data = self.sm.snapshot()
        conf = self.raw.status().voters
        r = self.storage.create_snapshot(index, ConfState(voters=conf), data)
        if inspect.isawaitable(r):
            await r
        self.snapshot_index = index
        compact_to = index - self.config.snapshot_keep
        if compact_to > self.storage.first_index():
            r2 = self.storage.compact(compact_to)
            if inspect.isawaitable(r2):
                await r2
        log.info("node %d: snapshot at %d, log compacted to %d", self.id, index, compact_to)

    # -- batching -------------------------------------------------------------------------------

    def _flush_requests(self) -> None:
        if self._pending:
            batch = self._pending[: self.config.max_batch]
            del self._pending[: self.config.max_batch]
            try:
                if self.raw.propose_many(batch) == 0:  # forwarded to the leader
                    lead = self.raw.lead
                    for data in batch:
                        self._forwarded[unwrap(data)[1]] = lead
            except ProposalDropped as e:
                for data in batch:
                    _, rid, _ = unwrap(data)
                    fut = self._waiters.get(rid)
                    if fut is not None and not fut.done():
                        fut.set_exception(NotLeaderError(str(e)))
            if self._pending:
                self._wake.set()
        if self._read_pending:
            reads, self._read_pending = self._read_pending, []
            ctx = f"{self.id}:{next(self._ctxs)}".encode()
            try:
                self.raw.read_index(ctx)
            except ProposalDropped as e:
                for f in reads:
                    if not f.done():
                        f.set_exception(NotLeaderError(str(e)))
                return
            self._read_by_ctx[ctx] = reads

    def _handle_read_states(self, states: list[ReadState]) -> None:
        for rs in states:
            futs = self._read_by_ctx.pop(rs.ctx, None)
            if futs:
                self._read_ready.append((rs.index, futs))

    def _release_reads(self) -> None:
        if self._read_ready:
            for index, futs in self._read_ready:
                for f in futs:
                    if not f.done():
                        f.set_result(index)
            self._read_ready = []
        if self._apply_waiters:
            keep = []
            for index, fut in self._apply_waiters:
                if index <= self.applied:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    keep.append((index, fut))
            self._apply_waiters = keep

    def _fail_forwarded(self, lead: int) -> None:
        """The leader changed: proposals forwarded to the old one may be lost with it, so they
        fail now (the client retries; a write may still have been applied, as after a timeout)
        instead of waiting out their timeout."""
        gone = [rid for rid, to in self._forwarded.items() if to != lead]
        for rid in gone:
            del self._forwarded[rid]
            fut = self._waiters.get(rid)
            if fut is not None and not fut.done():
                fut.set_exception(NotLeaderError("etcdserver: leader changed"))

    def _fail_reads(self, e: Exception) -> None:
        for futs in self._read_by_ctx.values():
            for f in futs:
                if not f.done():
                    f.set_exception(e)
        self._read_by_ctx.clear()

    def _fail_all(self, e: Exception) -> None:
        for fut in list(self._waiters.values()):  # settling one removes it from the dict
            if not fut.done():
                fut.set_exception(e)
        for f in self._read_pending:
            if not f.done():
                f.set_exception(e)
        self._read_pending = []
        self._fail_reads(e)
        for _, w in self._apply_waiters:
            if not w.done():
                w.set_exception(e)
        self._apply_waiters = []

