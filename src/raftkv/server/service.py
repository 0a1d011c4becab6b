"""``KVService``: the one place where requests meet the node — every front door (the native
protocol, HTTP, etcd's gRPC and JSON gateway) translates to these calls and back.

Writes are proposed through the log and answered once applied on this member (any member
accepts writes; a follower forwards to the leader in the core's batched ``Propose``). Reads are
linearizable by default (ReadIndex, thesis §6.4) or served locally when ``serializable``. Leases
expire on the leader only, which proposes the revocation through the log; a new leader extends
every lease by an election timeout first, as etcd's lessor does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from raftkv.kv import (
    CompactionRequest,
    CompactionResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ExpireSessionsRequest,
    KVError,
    KVStateMachine,
    LeaseCheckpoint,
    LeaseCheckpointRequest,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseNotFound,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    MemberAttrsRequest,
    NoLeader,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseHeader,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
    check_request_size,
    encode_command,
)
from raftkv.kv.errors import (
    BadLeaderTransferee,
    LeaderTransferTimeout,
    NotLeader,
    RequestTimeout,
    ServerStopped,
)
from raftkv.kv.types import Command
from raftkv.node import Node, NodeStopped, NotLeaderError, Proposal, Role, StorageFailed

log = logging.getLogger("raftkv.server")

_T = TypeVar("_T")
_R = TypeVar("_R", bound=msgspec.Struct)


@dataclass(frozen=True, kw_only=True)
class Member:
    id: int
    name: str
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()


@dataclass(kw_only=True)
class ServiceConfig:
    cluster_id: int
    members: list[Member] = field(default_factory=list)
    request_timeout: float = 7.0
    max_request_bytes: int = 1536 * 1024
    lease_check_interval: float = 0.5
    session_timeout_ms: int = 10 * 60 * 1000
    session_expiry_interval: float = 60.0
    watch_progress_interval: float = 600.0
    """How often an idle etcd-API watch created with ``progress_notify`` gets a progress
    notification (etcd's ``--experimental-watch-progress-notify-interval``, 10 minutes)."""


Response = (
    RangeResponse
    | PutResponse
    | DeleteRangeResponse
    | TxnResponse
    | CompactionResponse
    | LeaseGrantResponse
    | LeaseRevokeResponse
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextlib.contextmanager
def _etcd_errors() -> Iterator[None]:
    """The node's errors (and a timeout) as etcd's."""
    try:
        yield
    except NotLeaderError as e:
        raise NoLeader() from e
    except TimeoutError as e:
        raise RequestTimeout() from e
    except (NodeStopped, StorageFailed) as e:
        raise ServerStopped() from e


class _Deadlines:
    """Request timeouts for proposals, without a timer per request: every proposal gets the
    same timeout, so their deadlines are in submission order; a queue and one sweep suffice."""

    SWEEP_S = 0.05

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._queue: collections.deque[tuple[float, Proposal]] = collections.deque()

    def add(self, fut: Proposal) -> None:
        q = self._queue
        while q and q[0][1].done():  # answered in about the order asked: keep the queue short
            q.popleft()
        q.append((time.monotonic() + self.timeout, fut))

    async def run(self) -> None:
        q = self._queue
        while True:
            await asyncio.sleep(self.SWEEP_S)
            now = time.monotonic()
            while q and (q[0][0] <= now or q[0][1].done()):
                _, fut = q.popleft()
                if not fut.done():
                    fut.set_exception(TimeoutError())


class KVService:
    """Call ``start`` before serving: it runs the lease, session, publish and request-timeout
    loops (a proposal fails with etcd's request timeout only while they run).

    Args:
        node: the running member.
        sm: the KV state machine the node applies to.
        config: cluster identity, members and limits.
    """

    def __init__(self, node: Node, sm: KVStateMachine, config: ServiceConfig) -> None:
        self.node = node
        self.sm = sm
        self.config = config
        self.member_id = node.id
        self._tasks: list[asyncio.Task[None]] = []
        self._leader_since = 0.0
        self._deadlines = _Deadlines(config.request_timeout)
        self._senders: dict[int, Callable[[], None]] = {}  # answers to send after this batch
        node.after_answers.append(self._send_answers)
        self.event_loop = ""
        """The event loop serving this member: "uvloop" or "asyncio" (set by ``start``)."""
        node.on_soft_state.append(self._on_soft_state)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.event_loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        self._tasks.append(asyncio.create_task(self._lease_loop(), name="raftkv-leases"))
        self._tasks.append(asyncio.create_task(self._session_loop(), name="raftkv-sessions"))
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="raftkv-publish"))
        self._tasks.append(asyncio.create_task(self._deadlines.run(), name="raftkv-deadlines"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def _on_soft_state(self, lead: int, role: Role, term: int) -> None:
        if role is Role.LEADER:
            # etcd's lessor.Promote: every lease gets at least an election timeout to be renewed
            # at the new leader.
            extend = self.node.config.election_tick * self.node.config.tick_ms * 2
            self.sm.promote(extend, _now_ms())
            self._leader_since = time.monotonic()
        else:
            self.sm.demote()

    # -- headers --------------------------------------------------------------------------------

    def header(self, revision: int | None = None) -> ResponseHeader:
        return ResponseHeader(
            cluster_id=self.config.cluster_id,
            member_id=self.member_id,
            revision=self.sm.revision if revision is None else revision,
            raft_term=self.node.raw.term,
        )

    def _stamp(self, resp: msgspec.Struct) -> msgspec.Struct:
        h = getattr(resp, "header", None)
        if h is None:
            return resp
        return msgspec.structs.replace(resp, header=self.header(h.revision))

    # -- writes ---------------------------------------------------------------------------------

    async def _node_call(self, call: Awaitable[_T]) -> _T:
        """Await a node call within the request timeout, its errors turned into etcd's."""
        with _etcd_errors():
            async with asyncio.timeout(self.config.request_timeout):  # no extra task, unlike wait_for
                return await call

    def start_propose(self, cmd: Command, client_id: int = 0, seq: int = 0) -> Proposal:
        """Propose ``cmd`` with no coroutine and no task (the write path of every request):
        the node's future, failed with ``TimeoutError`` once the request timeout has passed.
        Read it with ``proposal_result``.

        Raises:
            KVError: at once, when the request is too large.
        """
        data = encode_command(cmd, client_id, seq, _now_ms())
        check_request_size(data, self.config.max_request_bytes)
        fut = self.node.propose(data)
        if not fut.done():
            self._deadlines.add(fut)
        return fut

    def send_after_answers(self, key: int, send: Callable[[], None]) -> bool:
        """Inside a proposal's done-callback: call ``send`` once the node has settled the whole
        batch it is applying, so a connection writes all its answers of the batch at once.
        Returns False outside an applied batch (a timeout, a refusal): the caller sends on its
        own."""
        if not self.node.answering:
            return False
        self._senders[key] = send
        return True

    def _send_answers(self) -> None:
        senders, self._senders = self._senders, {}
        for send in senders.values():
            send()

    def proposal_result(self, fut: Proposal) -> object:
        """The answer of a settled proposal, its header stamped, or raise its etcd error."""
        with _etcd_errors():
            result = fut.result()
        if isinstance(result, KVError):
            raise result
        if isinstance(result, msgspec.Struct):
            return self._stamp(result)
        return result

    async def propose(self, cmd: Command, client_id: int = 0, seq: int = 0) -> object:
        """Propose one command; returns its response (header stamped) or raises its KVError."""
        fut = self.start_propose(cmd, client_id, seq)
        with contextlib.suppress(Exception):  # proposal_result turns it into etcd's error
            await fut
        return self.proposal_result(fut)

    async def _propose_as(
        self, kind: type[_R], cmd: Command, client_id: int = 0, seq: int = 0
    ) -> _R:
        resp = await self.propose(cmd, client_id, seq)
        assert isinstance(resp, kind), resp
        return resp

    async def put(self, req: PutRequest, client_id: int = 0, seq: int = 0) -> PutResponse:
        return await self._propose_as(PutResponse, req, client_id, seq)

    async def delete_range(
        self, req: DeleteRangeRequest, client_id: int = 0, seq: int = 0
    ) -> DeleteRangeResponse:
        return await self._propose_as(DeleteRangeResponse, req, client_id, seq)

    async def txn(self, req: TxnRequest, client_id: int = 0, seq: int = 0) -> TxnResponse:
        # A read-only txn goes through the log too (it adds no revision): simple and
        # linearizable; serving it from ReadIndex is an optimisation for later.
        return await self._propose_as(TxnResponse, req, client_id, seq)

    async def compact(self, req: CompactionRequest) -> CompactionResponse:
        return await self._propose_as(CompactionResponse, req)

    # -- reads ----------------------------------------------------------------------------------

    async def _linearize(self) -> None:
        await self._node_call(self.node.read_index())

    async def range(self, req: RangeRequest) -> RangeResponse:
        if not req.serializable:
            await self._linearize()
        resp = self.sm.read(req)
        return self._stamp(resp)  # type: ignore[return-value]

    # -- leases ---------------------------------------------------------------------------------

    async def lease_grant(self, req: LeaseGrantRequest) -> LeaseGrantResponse:
        return await self._propose_as(LeaseGrantResponse, req)

    async def lease_revoke(self, req: LeaseRevokeRequest) -> LeaseRevokeResponse:
        return await self._propose_as(LeaseRevokeResponse, req)

    async def lease_keepalive(self, lease_id: int) -> LeaseKeepAliveResponse:
        """Renew a lease. The leader renews in its lessor; any other member replicates a
        checkpoint with the full TTL, which renews it on every member (leader included)."""
        if self.node.is_leader():
            resp = self.sm.renew(lease_id, _now_ms())
            return self._stamp(resp)  # type: ignore[return-value]
        ttl = self.sm.lease_time_to_live(lease_id, False, _now_ms())
        if ttl.ttl <= 0 and ttl.granted_ttl <= 0:
            raise LeaseNotFound()
        await self.propose(
            LeaseCheckpointRequest(checkpoints=(LeaseCheckpoint(lease_id, ttl.granted_ttl),))
        )
        return LeaseKeepAliveResponse(self.header(), lease_id, ttl.granted_ttl)

    async def lease_time_to_live(self, lease_id: int, keys: bool) -> LeaseTimeToLiveResponse:
        await self._linearize()
        resp = self.sm.lease_time_to_live(lease_id, keys, _now_ms())
        return self._stamp(resp)  # type: ignore[return-value]

    async def lease_leases(self) -> LeaseLeasesResponse:
        await self._linearize()
        return self._stamp(self.sm.lease_leases())  # type: ignore[return-value]

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_check_interval)
            if not self.node.is_leader():
                continue
            for lease_id in self.sm.expired(_now_ms()):
                with contextlib.suppress(KVError):
                    await self.propose(LeaseRevokeRequest(id=lease_id))

    async def _session_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.session_expiry_interval)
            if self.node.is_leader():
                with contextlib.suppress(KVError):
                    await self.propose(
                        ExpireSessionsRequest(
                            now_ms=_now_ms(), timeout_ms=self.config.session_timeout_ms
                        )
                    )

    # -- watches --------------------------------------------------------------------------------

    def watch_create(
        self,
        key: bytes,
        range_end: bytes,
        start_revision: int,
        prev_kv: bool,
        filters: tuple[WatchFilter, ...],
        send: Callable[[WatchResponse], None],
    ) -> int:
        """Start a watch whose responses (the first one ``created``) go to ``send``."""
        wid, first = self.sm.hub.create(
            key, range_end, start_revision, prev_kv, filters, callback=lambda r: send(
                self._stamp(r)  # type: ignore[arg-type]
            )
        )
        for r in first:
            send(self._stamp(r))  # type: ignore[arg-type]
        return wid

    def watch_cancel(self, watch_id: int) -> WatchResponse | None:
        r = self.sm.hub.cancel(watch_id)
        return None if r is None else self._stamp(r)  # type: ignore[return-value]

    def watch_progress(self, watch_id: int) -> WatchResponse | None:
        r = self.sm.hub.progress(watch_id)
        return None if r is None else self._stamp(r)  # type: ignore[return-value]

    # -- cluster --------------------------------------------------------------------------------

    async def move_leader(self, target: int) -> None:
        """Hand leadership to member ``target`` (thesis §3.10; etcd's MoveLeader). Only the
        leader can; returns once ``target`` leads.

        Raises:
            NotLeader: this member is not the leader.
            BadLeaderTransferee: ``target`` is not a voting member.
            LeaderTransferTimeout: ``target`` did not take over within two election timeouts.
        """
        if not self.node.is_leader():
            raise NotLeader()
        if target == self.member_id:
            return
        if target not in self.node.raw.status().voters:
            raise BadLeaderTransferee()
        self.node.transfer_leader(target)
        cfg = self.node.config
        deadline = time.monotonic() + 4 * cfg.election_tick * cfg.tick_ms / 1000
        while time.monotonic() < deadline:
            if self.node.leader() == target:
                return
            await asyncio.sleep(cfg.tick_ms / 1000)
        raise LeaderTransferTimeout()

    def members(self) -> list[Member]:
        """The configured members, with the client URLs each one published through the log."""
        attrs = self.sm.member_attrs
        out = []
        for m in self.config.members:
            a = attrs.get(m.id)
            if a is not None and not m.client_urls:
                m = Member(id=m.id, name=m.name, peer_urls=m.peer_urls, client_urls=a.client_urls)
            out.append(m)
        return out

    async def _publish_loop(self) -> None:
        """Publish this member's name and client URLs through the log once a leader is known,
        and again whenever the replicated copy differs (e.g. new URLs after a restart)."""
        me = next((m for m in self.config.members if m.id == self.member_id), None)
        if me is None or not me.client_urls:
            return
        want = MemberAttrsRequest(self.member_id, me.name, me.client_urls)
        while True:
            if self.sm.member_attrs.get(self.member_id) == want:
                return
            if self.node.leader() != 0:
                with contextlib.suppress(KVError):
                    await self.propose(want)
                    continue
            await asyncio.sleep(0.1)

    def status(self) -> dict[str, object]:
        d = self.node.status()
        d["cluster_id"] = self.config.cluster_id
        d["revision"] = self.sm.revision
        d["compact_revision"] = self.sm.compact_revision
        d["event_loop"] = self.event_loop
        return d

