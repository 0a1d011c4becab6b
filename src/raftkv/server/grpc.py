"""etcd's v3 gRPC API (``etcdserverpb``) on the client port, translated to ``KVService`` calls.

- ``EtcdApi``: one method per RPC, protobuf message in, protobuf message out, raising a
  ``KVError`` (etcd's gRPC status name in ``code``, etcd's exact text in ``message``). The JSON
  gateway (``raftkv.server.gateway``) calls the same methods.
- ``WatchSession``: one watch stream (many watches, stream-local ids from 0 as etcd numbers them).
- ``EtcdGrpc``: the grpclib services (KV, Watch, Lease, Cluster, Maintenance, Auth) and
  ``protocol()``, the HTTP/2 protocol the client listener hands a sniffed connection to.

Errors go out as a gRPC status whose message is etcd's text unchanged: etcd's Go client maps
those strings back to its typed errors. A member that knows no leader answers writes and
linearizable reads with UNAVAILABLE ``etcdserver: no leader``. Auth answers UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from raftkv.kv import (
    CompactionRequest,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KVError,
    LeaseGrantRequest,
    LeaseNotFound,
    LeaseRevokeRequest,
    NoLeader,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
    WatchFilter,
)
from raftkv.kv import types as kt
from raftkv.kv.errors import InvalidSortOption
from raftkv.kv.mvcc import KVHasher
from raftkv.kv.txn import MAX_TXN_OPS, check_delete, check_put, check_range, check_txn
from raftkv.server.etcdpb import kv_pb2 as mvccpb
from raftkv.server.etcdpb import rpc_grpc
from raftkv.server.etcdpb import rpc_pb2 as pb
from raftkv.server.progress import ProgressTicker
from raftkv.server.service import KVService

log = logging.getLogger("raftkv.server.grpc")

ETCD_SERVER_VERSION = "3.4.23"
_DB_SIZE_CACHE_S = 5.0
_HASH_KEYS_PER_TURN = 2000
_PROGRESS_WATCH_ID = -1  # etcd: a progress response belongs to no watch (broadcast)


class BadArgument(KVError):
    """A request field raftkv cannot translate (an unknown enum value, an empty op)."""

    code = "INVALID_ARGUMENT"
    message = "etcdserver: invalid argument"


# --- raftkv.kv types -> protobuf ------------------------------------------------------------


def header_pb(h: kt.ResponseHeader) -> pb.ResponseHeader:
    return pb.ResponseHeader(
        cluster_id=h.cluster_id, member_id=h.member_id, revision=h.revision, raft_term=h.raft_term
    )


def kv_pb(kv: kt.KeyValue) -> mvccpb.KeyValue:
    return mvccpb.KeyValue(
        key=kv.key,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        value=kv.value,
        lease=kv.lease,
    )


def range_resp_pb(r: RangeResponse) -> pb.RangeResponse:
    return pb.RangeResponse(
        header=header_pb(r.header), kvs=[kv_pb(kv) for kv in r.kvs], more=r.more, count=r.count
    )


def put_resp_pb(r: PutResponse) -> pb.PutResponse:
    out = pb.PutResponse(header=header_pb(r.header))
    if r.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_pb(r.prev_kv))
    return out


def delete_resp_pb(r: DeleteRangeResponse) -> pb.DeleteRangeResponse:
    return pb.DeleteRangeResponse(
        header=header_pb(r.header), deleted=r.deleted, prev_kvs=[kv_pb(kv) for kv in r.prev_kvs]
    )


def txn_resp_pb(r: TxnResponse) -> pb.TxnResponse:
    ops = []
    for op in r.responses:
        match op:
            case RangeResponse():
                ops.append(pb.ResponseOp(response_range=range_resp_pb(op)))
            case PutResponse():
                ops.append(pb.ResponseOp(response_put=put_resp_pb(op)))
            case DeleteRangeResponse():
                ops.append(pb.ResponseOp(response_delete_range=delete_resp_pb(op)))
            case TxnResponse():
                ops.append(pb.ResponseOp(response_txn=txn_resp_pb(op)))
    return pb.TxnResponse(header=header_pb(r.header), succeeded=r.succeeded, responses=ops)


def event_pb(e: kt.Event) -> mvccpb.Event:
    out = mvccpb.Event(type=e.type.name, kv=kv_pb(e.kv))
    if e.prev_kv is not None:
        out.prev_kv.CopyFrom(kv_pb(e.prev_kv))
    return out


# --- protobuf -> raftkv.kv types ------------------------------------------------------------


def _enum(cls: Any, value: int) -> Any:
    try:
        return cls(value)
    except ValueError as e:
        raise BadArgument() from e


def range_req(r: pb.RangeRequest) -> RangeRequest:
    if r.sort_order not in kt.SortOrder._value2member_map_:
        raise InvalidSortOption()
    if r.sort_target not in kt.SortTarget._value2member_map_:
        raise InvalidSortOption()
    return RangeRequest(
        key=r.key,
        range_end=r.range_end,
        limit=r.limit,
        revision=r.revision,
        sort_order=kt.SortOrder(r.sort_order),
        sort_target=kt.SortTarget(r.sort_target),
        serializable=r.serializable,
        keys_only=r.keys_only,
        count_only=r.count_only,
        min_mod_revision=r.min_mod_revision,
        max_mod_revision=r.max_mod_revision,
        min_create_revision=r.min_create_revision,
        max_create_revision=r.max_create_revision,
    )


def put_req(r: pb.PutRequest) -> PutRequest:
    return PutRequest(
        key=r.key,
        value=r.value,
        lease=r.lease,
        prev_kv=r.prev_kv,
        ignore_value=r.ignore_value,
        ignore_lease=r.ignore_lease,
    )


def delete_req(r: pb.DeleteRangeRequest) -> DeleteRangeRequest:
    return DeleteRangeRequest(key=r.key, range_end=r.range_end, prev_kv=r.prev_kv)


def _op(o: pb.RequestOp) -> kt.RequestOp:
    which = o.WhichOneof("request")
    if which == "request_range":
        return range_req(o.request_range)
    if which == "request_put":
        return put_req(o.request_put)
    if which == "request_delete_range":
        return delete_req(o.request_delete_range)
    if which == "request_txn":
        return txn_req(o.request_txn)
    raise BadArgument()


def txn_req(r: pb.TxnRequest) -> TxnRequest:
    compares = tuple(
        kt.Compare(
            result=_enum(kt.CompareResult, c.result),
            target=_enum(kt.CompareTarget, c.target),
            key=c.key,
            range_end=c.range_end,
            version=c.version,
            create_revision=c.create_revision,
            mod_revision=c.mod_revision,
            value=c.value,
            lease=c.lease,
        )
        for c in r.compare
    )
    return TxnRequest(
        compare=compares,
        success=tuple(_op(o) for o in r.success),
        failure=tuple(_op(o) for o in r.failure),
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the API ---------------------------------------------------------------------------------


class EtcdApi:
    """etcd's v3 RPCs over one member's ``KVService``.

    Args:
        service: the member's KV service.
        db_size: returns the size in bytes reported as ``dbSize`` (default: the length of the
            state machine's snapshot image, recomputed at most every 5 s).
    """

    def __init__(self, service: KVService, *, db_size: Callable[[], int] | None = None) -> None:
        self.service = service
        self.node = service.node
        self._db_size_fn = db_size
        self._db_size = (0.0, 0)
        applier = getattr(service.sm, "applier", None)
        self.max_txn_ops = getattr(applier, "max_txn_ops", MAX_TXN_OPS)

    def _need_leader(self) -> None:
        if self.node.leader() == 0:
            raise NoLeader()

    def header(self) -> pb.ResponseHeader:
        return header_pb(self.service.header())

    # KV

    async def range(self, r: pb.RangeRequest) -> pb.RangeResponse:
        req = range_req(r)
        check_range(req)
        if not req.serializable:
            self._need_leader()
        return range_resp_pb(await self.service.range(req))

    async def put(self, r: pb.PutRequest) -> pb.PutResponse:
        req = put_req(r)
        check_put(req)
        self._need_leader()
        return put_resp_pb(await self.service.put(req))

    async def delete_range(self, r: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
        req = delete_req(r)
        check_delete(req)
        self._need_leader()
        return delete_resp_pb(await self.service.delete_range(req))

    async def txn(self, r: pb.TxnRequest) -> pb.TxnResponse:
        req = txn_req(r)
        check_txn(req, self.max_txn_ops)
        self._need_leader()
        return txn_resp_pb(await self.service.txn(req))

    async def compact(self, r: pb.CompactionRequest) -> pb.CompactionResponse:
        self._need_leader()
        resp = await self.service.compact(
            CompactionRequest(revision=r.revision, physical=r.physical)
        )
        return pb.CompactionResponse(header=header_pb(resp.header))

    # Lease

    async def lease_grant(self, r: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
        self._need_leader()
        resp = await self.service.lease_grant(LeaseGrantRequest(ttl=r.TTL, id=r.ID))
        return pb.LeaseGrantResponse(
            header=header_pb(resp.header), ID=resp.id, TTL=resp.ttl, error=resp.error
        )

    async def lease_revoke(self, r: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse:
        self._need_leader()
        resp = await self.service.lease_revoke(LeaseRevokeRequest(id=r.ID))
        return pb.LeaseRevokeResponse(header=header_pb(resp.header))

    async def lease_keepalive(self, r: pb.LeaseKeepAliveRequest) -> pb.LeaseKeepAliveResponse:
        self._need_leader()
        try:
            resp = await self.service.lease_keepalive(r.ID)
        except LeaseNotFound:
            # etcd answers an unknown lease with TTL 0 (the client turns it into its error)
            return pb.LeaseKeepAliveResponse(header=self.header(), ID=r.ID, TTL=0)
        return pb.LeaseKeepAliveResponse(header=header_pb(resp.header), ID=r.ID, TTL=resp.ttl)

    async def lease_time_to_live(self, r: pb.LeaseTimeToLiveRequest) -> pb.LeaseTimeToLiveResponse:
        self._need_leader()
        resp = await self.service.lease_time_to_live(r.ID, r.keys)
        if resp.ttl < 0:  # etcd: an unknown lease is TTL -1 and nothing else
            return pb.LeaseTimeToLiveResponse(header=header_pb(resp.header), ID=r.ID, TTL=-1)
        return pb.LeaseTimeToLiveResponse(
            header=header_pb(resp.header),
            ID=r.ID,
            TTL=resp.ttl,
            grantedTTL=resp.granted_ttl,
            keys=list(resp.keys),
        )

    async def lease_leases(self, r: pb.LeaseLeasesRequest) -> pb.LeaseLeasesResponse:
        self._need_leader()
        resp = await self.service.lease_leases()
        return pb.LeaseLeasesResponse(
            header=header_pb(resp.header), leases=[pb.LeaseStatus(ID=s.id) for s in resp.leases]
        )

    # Cluster

    async def member_list(self, r: pb.MemberListRequest) -> pb.MemberListResponse:
        members = [
            pb.Member(
                ID=m.id, name=m.name, peerURLs=list(m.peer_urls), clientURLs=list(m.client_urls)
            )
            for m in self.service.members()
        ]
        return pb.MemberListResponse(header=self.header(), members=members)

    # Maintenance

    def db_size(self) -> int:
        if self._db_size_fn is not None:
            return self._db_size_fn()
        at, size = self._db_size
        now = time.monotonic()
        if now - at > _DB_SIZE_CACHE_S:
            snap = getattr(self.service.sm, "snapshot", None)
            size = len(snap()) if snap is not None else 0
            self._db_size = (now, size)
        return size

    async def status(self, r: pb.StatusRequest) -> pb.StatusResponse:
        st = self.node.raw.status()
        size = self.db_size()
        errors = [] if st.lead else ["etcdserver: no leader"]
        return pb.StatusResponse(
            header=self.header(),
            version=ETCD_SERVER_VERSION,
            dbSize=size,
            leader=st.lead,
            raftIndex=st.commit,
            raftTerm=st.term,
            raftAppliedIndex=self.node.applied,
            errors=errors,
            dbSizeInUse=size,
        )

    async def move_leader(self, r: pb.MoveLeaderRequest) -> pb.MoveLeaderResponse:
        await self.service.move_leader(r.targetID)
        return pb.MoveLeaderResponse(header=self.header())

    async def defragment(self, r: pb.DefragmentRequest) -> pb.DefragmentResponse:
        # The store is in memory: no file to defragment. etcd 3.4 answers without a header.
        return pb.DefragmentResponse()

    async def _hash_kv(self, revision: int) -> tuple[int, int]:
        """(hash, compact revision) of this member's store, a chunk of keys per turn of the
        loop (a store of 200k records takes about 150 ms: longer than an election timeout)."""
        while True:
            store = self.service.sm.store
            hasher = KVHasher(store, revision)
            while not hasher.step(_HASH_KEYS_PER_TURN):
                await asyncio.sleep(0)
                if hasher.stale:
                    break  # compacted meanwhile: start again (or fail, if now compacted away)
            else:
                return hasher.crc, store.compact_rev

    async def hash_kv(self, r: pb.HashKVRequest) -> pb.HashKVResponse:
        h, compact_rev = await self._hash_kv(r.revision)
        # etcd reports -1 while nothing was ever compacted
        return pb.HashKVResponse(header=self.header(), hash=h, compact_revision=compact_rev or -1)

    async def hash(self, r: pb.HashRequest) -> pb.HashResponse:
        # etcd hashes its whole backend (every bucket); raftkv's is the current MVCC history.
        h, _ = await self._hash_kv(0)
        return pb.HashResponse(header=self.header(), hash=h)

    async def alarm(self, r: pb.AlarmRequest) -> pb.AlarmResponse:
        # raftkv raises no alarms (no space quota, no corruption check): GET lists none,
        # ACTIVATE / DEACTIVATE change nothing. etcd 3.4 answers an alarm call without a header.
        return pb.AlarmResponse()


class WatchSession:
    """The watches of one stream: ``handle`` each request, responses go to ``send``.

    Watch ids are local to the stream and count from 0 as etcd's do; ``close`` cancels every
    watch still open (the stream ended).

    A watch created with ``progress_notify`` gets, every ``watch_progress_interval`` (the
    service's config), a progress notification (its id, no events, the current revision in the
    header) unless events went out for it since the last one, as etcd's watch stream does.
    """

    def __init__(self, api: EtcdApi, send: Callable[[pb.WatchResponse], None]) -> None:
        self.api = api
        self.service = api.service
        self.send = send
        self._hub_ids: dict[int, int] = {}  # local id -> hub id
        self._next = 0
        self.closed = False
        self._progress = ProgressTicker(
            self.service.config.watch_progress_interval,
            lambda local: self.send(pb.WatchResponse(header=self.api.header(), watch_id=local)),
        )

    def _to_pb(self, r: kt.WatchResponse, local: int) -> pb.WatchResponse:
        out = pb.WatchResponse(
            header=header_pb(r.header),
            watch_id=local,
            created=r.created,
            canceled=r.canceled,
            compact_revision=r.compact_revision,
            cancel_reason=r.cancel_reason,
            events=[event_pb(e) for e in r.events],
        )
        if r.canceled:
            self._hub_ids.pop(local, None)
            self._progress.discard(local)
        elif r.events:
            self._progress.saw_events(local)
        return out

    def handle(self, req: pb.WatchRequest) -> None:
        which = req.WhichOneof("request_union")
        if which == "create_request":
            self._create(req.create_request)
        elif which == "cancel_request":
            local = req.cancel_request.watch_id
            hub = self._hub_ids.pop(local, None)
            self._progress.discard(local)
            if hub is not None and self.service.watch_cancel(hub) is not None:
                self.send(pb.WatchResponse(header=self.api.header(), watch_id=local, canceled=True))
        elif which == "progress_request":
            self.send(pb.WatchResponse(header=self.api.header(), watch_id=_PROGRESS_WATCH_ID))

    def _create(self, c: pb.WatchCreateRequest) -> None:
        if c.watch_id > 0 and c.watch_id in self._hub_ids:
            # etcd: a taken id is refused with a canceled create response of id -1
            self.send(
                pb.WatchResponse(
                    header=self.api.header(), watch_id=-1, created=True, canceled=True,
                    cancel_reason="mvcc: duplicate watch ID provided on the WatchStream",
                )
            )  # fmt: skip
            return
        if c.watch_id > 0:
            local = c.watch_id
        else:
            while self._next in self._hub_ids:
                self._next += 1
            local = self._next
            self._next += 1
        filters = tuple(WatchFilter(f) for f in c.filters if f in (0, 1))
        self._hub_ids[local] = -1  # reserved: the first responses come before the id is known

        catching_up = True

        def deliver(r: kt.WatchResponse) -> None:
            if self.closed:
                return
            out = self._to_pb(r, local)
            if catching_up:
                # etcd stamps the history a new watch catches up on with the store's current
                # revision (mvcc syncWatchers), not with each event's own
                out.header.revision = self.service.sm.revision
            self.send(out)

        hub = self.service.watch_create(
            c.key, c.range_end, c.start_revision, c.prev_kv, filters, deliver
        )
        catching_up = False
        if local in self._hub_ids:  # not canceled by its first responses (compacted start)
            self._hub_ids[local] = hub
            if c.progress_notify:
                self._progress.add(local)

    def close(self) -> None:
        self.closed = True
        self._progress.close()
        for hub in self._hub_ids.values():
            if hub >= 0:
                self.service.watch_cancel(hub)
        self._hub_ids.clear()


# --- grpclib services ------------------------------------------------------------------------


def grpc_error(e: KVError) -> GRPCError:
    try:
        status = Status[e.code]
    except KeyError:
        status = Status.UNKNOWN
    return GRPCError(status, str(e))


async def _recv(stream: Stream[Any, Any]) -> Any:
    try:
        return await stream.recv_message()
    except DecodeError as e:
        raise GRPCError(Status.INTERNAL, f"grpc: error unmarshalling request: {e}") from e


async def _unary(stream: Stream[Any, Any], call: Callable[[Any], Any]) -> None:
    req = await _recv(stream)
    try:
        resp = await call(req)
    except KVError as e:
        raise grpc_error(e) from e
    await stream.send_message(resp)


class _KV(rpc_grpc.KVBase):
    def __init__(self, api: EtcdApi) -> None:
        self.api = api

    async def Range(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.range)

    async def Put(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.put)

    async def DeleteRange(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.delete_range)

    async def Txn(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.txn)

    async def Compact(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.compact)


class _Watch(rpc_grpc.WatchBase):
    def __init__(self, api: EtcdApi) -> None:
        self.api = api

    async def Watch(self, stream: Stream[Any, Any]) -> None:
        out: asyncio.Queue[pb.WatchResponse] = asyncio.Queue()
        session = WatchSession(self.api, out.put_nowait)

        async def sender() -> None:
            while True:
                await stream.send_message(await out.get())

        task = asyncio.create_task(sender())
        try:
            while True:
                req = await _recv(stream)
                if req is None:
                    break  # the client closed its side; etcd keeps sending until it leaves
                session.handle(req)
            await task
        finally:
            session.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Lease(rpc_grpc.LeaseBase):
    def __init__(self, api: EtcdApi) -> None:
        self.api = api

    async def LeaseGrant(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.lease_grant)

    async def LeaseRevoke(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.lease_revoke)

    async def LeaseKeepAlive(self, stream: Stream[Any, Any]) -> None:
        while True:
            req = await _recv(stream)
            if req is None:
                return
            try:
                resp = await self.api.lease_keepalive(req)
            except KVError as e:
                raise grpc_error(e) from e
            await stream.send_message(resp)

    async def LeaseTimeToLive(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.lease_time_to_live)

    async def LeaseLeases(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.lease_leases)


class _Cluster(rpc_grpc.ClusterBase):
    def __init__(self, api: EtcdApi) -> None:
        self.api = api

    async def MemberList(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.member_list)


class _Maintenance(rpc_grpc.MaintenanceBase):
    def __init__(self, api: EtcdApi) -> None:
        self.api = api

    async def Alarm(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.alarm)

    async def Status(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.status)

    async def MoveLeader(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.move_leader)

    async def Defragment(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.defragment)

    async def Hash(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.hash)

    async def HashKV(self, stream: Stream[Any, Any]) -> None:
        await _unary(stream, self.api.hash_kv)


_AUTH_MSG = "raftkv: authentication is not implemented"


class _Auth(rpc_grpc.AuthBase):
    async def _no(self, stream: Stream[Any, Any]) -> None:
        await _recv(stream)
        raise GRPCError(Status.UNIMPLEMENTED, _AUTH_MSG)

    async def AuthEnable(self, stream: Stream[Any, Any]) -> None:
        await self._no(stream)

    async def AuthDisable(self, stream: Stream[Any, Any]) -> None:
        await self._no(stream)

    async def Authenticate(self, stream: Stream[Any, Any]) -> None:
        await self._no(stream)

    async def UserList(self, stream: Stream[Any, Any]) -> None:
        await self._no(stream)

    async def RoleList(self, stream: Stream[Any, Any]) -> None:
        await self._no(stream)


class _Methods(dict[str, Handler]):
    """grpclib's method table, answering an unknown method as grpc-go does: UNIMPLEMENTED with a
    complete response (grpclib's own answer omits the content-type, which clients reject)."""

    def get(self, key: str, default: Any = None) -> Handler:
        h = super().get(key)
        if h is not None:
            return h
        service, _, method = key.lstrip("/").rpartition("/")
        known = any(k.startswith(f"/{service}/") for k in self)
        text = (
            f"unknown method {method} for service {service}" if known
            else f"unknown service {service}"
        )  # fmt: skip

        async def unimplemented(stream: Stream[Any, Any]) -> None:
            raise GRPCError(Status.UNIMPLEMENTED, text)

        return Handler(
            unimplemented, Cardinality.STREAM_STREAM, pb.StatusRequest, pb.StatusResponse
        )


class EtcdGrpc:
    """The etcd gRPC services of one member, served on connections handed over by the listener.

    Args:
        service: the member's KV service.
        db_size: see ``EtcdApi``.
    """

    def __init__(self, service: KVService, *, db_size: Callable[[], int] | None = None) -> None:
        self.api = EtcdApi(service, db_size=db_size)
        quiet = logging.getLogger("grpclib.server")
        if quiet.level == logging.NOTSET:  # it logs every cancelled call at INFO
            quiet.setLevel(logging.WARNING)
        a = self.api
        self.server = Server([_KV(a), _Watch(a), _Lease(a), _Cluster(a), _Maintenance(a), _Auth()])
        self.server._mapping = _Methods(self.server._mapping)

    def protocol(self) -> asyncio.Protocol:
        """A new HTTP/2 server protocol for one connection (grpclib's own factory)."""
        proto: asyncio.Protocol = self.server._protocol_factory()
        return proto

    async def close(self, timeout: float = 1.0) -> None:
        """Cancel running calls and close every gRPC connection."""
        handlers = list(self.server._handlers)
        for h in handlers:
            h.close()
        if handlers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(*(h.wait_closed() for h in handlers), return_exceptions=True),
                    timeout,
                )
