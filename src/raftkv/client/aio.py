"""``AsyncClient``: raftkv's asyncio client over the native protocol.

One connection per endpoint at a time, pipelined: every call gets a request id, a reader task
hands each answer to the call waiting for it, so any number of calls may be in flight at once.
Writes to the socket are coalesced into one per event-loop iteration.

Failover: a call that meets a broken connection, a refused dial, or an "unavailable" answer
(``NoLeader``, ``RequestTimeout``, ``ServerStopped``) is retried on the next endpoint until its
``command_timeout`` runs out. Retrying a write is safe: put, delete and txn carry a session
``(client_id, seq)`` and the cluster applies one ``(client_id, seq)`` at most once, answering a
retry with the first answer (thesis §6.3). The state machine keeps one sequence number per
session, so the client keeps a pool of sessions and gives each write in flight its own one.
Compact, lease grant and lease revoke have no session: a retried grant may grant twice.

The leader first (``prefer_leader``): every member accepts every request, but one that is not
the leader forwards writes to the leader and answers once it has applied them itself, which
costs a hop each way and the wait for the commit index to reach it. So after dialing, the
client asks the member for the leader and the members' client URLs, and when the leader is
one of its endpoints, it talks to the leader instead. When an answer shows a new term, it
asks again, and moves its new calls over; the old connection stays open until the calls and
watches on it are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from raftkv.client.errors import ClientError, ConnectionFailed, Timeout
from raftkv.kv import (
    Compacted,
    CompactionRequest,
    CompactionResponse,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KVError,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    NoLeader,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
)
from raftkv.kv.errors import RequestTimeout, ServerStopped
from raftkv.kv.wire import (
    ClientFrame,
    ClientRequest,
    ClientResponse,
    LeaseKeepAlive,
    LeaseLeases,
    LeaseTimeToLive,
    MemberList,
    MemberListResponse,
    RequestBody,
    ResponseBody,
    Status,
    StatusResponse,
    WatchCancel,
    WatchCreate,
    WatchProgress,
    WatchResult,
    decode_response,
    decode_watch_event,
    encode,
    error_from_response,
)
from raftkv.transport.errors import FrameError
from raftkv.transport.framing import CLIENT_MAGIC, DEFAULT_MAX_FRAME, FrameDecoder, encode_frame

KeyLike = str | bytes
_R = TypeVar("_R")

UNAVAILABLE: tuple[type[KVError], ...] = (NoLeader, RequestTimeout, ServerStopped)
"""Answers after which the call is retried on the next endpoint."""

_BACKOFF_MIN = 0.02
_BACKOFF_MAX = 0.25
_RETIRE_POLL = 0.1  # seconds between looks at a connection being retired


def to_bytes(b: KeyLike) -> bytes:
    return b.encode() if isinstance(b, str) else bytes(b)


def prefix_end(key: bytes) -> bytes:
    """etcd's GetPrefixRangeEnd: the smallest key greater than every key starting with ``key``."""
    end = bytearray(key)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"  # every byte is 0xff: to the end of the keyspace


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port``, ``http://host:port`` or ``https://host:port`` (TLS is not supported)."""
    ep = endpoint.strip()
    for scheme in ("http://", "https://", "unix://", "tcp://"):
        if ep.startswith(scheme):
            ep = ep[len(scheme) :]
    ep = ep.rstrip("/")
    host, sep, port = ep.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r} is not host:port")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


# --- one connection -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Stream:
    """Where a watch's pushed responses go; a ClientError ends it (the connection broke)."""

    queue: asyncio.Queue[WatchResponse | ClientError] = field(default_factory=asyncio.Queue)
    watch_id: int = -1
    conn: _Connection | None = None  # where the watch lives (set when it is created)


class _Connection:
    def __init__(
        self,
        endpoint: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_frame_size: int,
    ) -> None:
        self.endpoint = endpoint
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_frame_size, frozenset(ClientFrame))
        self._next_id = 1
        self._pending: dict[int, tuple[asyncio.Future[ClientResponse], _Stream | None]] = {}
        self.watches: dict[int, _Stream] = {}
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.error: ConnectionFailed | None = None
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, endpoint: str, timeout: float, max_frame_size: int) -> _Connection:
        host, port = parse_endpoint(endpoint)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), max(timeout, 0.001)
            )
        except (OSError, TimeoutError) as e:
            raise ConnectionFailed(f"dial {endpoint}: {e or 'timed out'}") from None
        writer.write(CLIENT_MAGIC)
        return cls(endpoint, reader, writer, max_frame_size)

    @property
    def closed(self) -> bool:
        return self.error is not None

    @property
    def pending(self) -> int:
        """Calls sent on this connection and not answered yet."""
        return len(self._pending)

    def send(self, body: RequestBody, client_id: int = 0, seq: int = 0,
             stream: _Stream | None = None) -> asyncio.Future[ClientResponse]:  # fmt: skip
        """Queue one request; the future gets its answer or a ConnectionFailed."""
        if self.error is not None:
            raise self.error
        rid = self._next_id
        self._next_id += 1
        fut: asyncio.Future[ClientResponse] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (fut, stream)
        self._out.append(
            encode_frame(ClientFrame.REQUEST, encode(ClientRequest(rid, body, client_id, seq)))
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return fut

    def forget(self, fut: asyncio.Future[ClientResponse]) -> None:
        """Drop a request the caller stopped waiting for (its answer will be ignored)."""
        for rid, (f, _) in list(self._pending.items()):
            if f is fut:
                del self._pending[rid]
                return

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.error is not None or not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        try:
            self._writer.write(data)
        except (OSError, RuntimeError) as e:
            self._fail(f"write to {self.endpoint}: {e}")

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(1 << 16)
                if not data:
                    self._fail(f"{self.endpoint} closed the connection")
                    return
                for f in self._decoder.feed(data):
                    if f.type == ClientFrame.RESPONSE:
                        self._on_response(decode_response(f.payload))
                    elif f.type == ClientFrame.WATCH_EVENT:
                        ev = decode_watch_event(f.payload)
                        s = self.watches.get(ev.watch_id)
                        if s is not None:
                            if ev.response.canceled:
                                del self.watches[ev.watch_id]
                            s.queue.put_nowait(ev.response)
                    elif f.type == ClientFrame.ERROR:
                        reason = f.payload.decode(errors="replace")
                        self._fail(f"{self.endpoint} closed the connection: {reason}")
                        return
                    else:
                        self._fail(f"{self.endpoint} sent a request frame")
                        return
        except asyncio.CancelledError:
            self._fail(f"connection to {self.endpoint} closed")
            raise
        except (OSError, FrameError, msgspec.DecodeError, msgspec.ValidationError) as e:
            self._fail(f"connection to {self.endpoint}: {e}")

    def _on_response(self, resp: ClientResponse) -> None:
        entry = self._pending.pop(resp.id, None)
        if entry is None:
            return
        fut, stream = entry
        body = resp.body
        # Register the stream before anyone runs: the watch's events may be in this same chunk.
        if stream is not None and isinstance(body, WatchResult) and body.response.created:
            stream.watch_id = body.response.watch_id
            stream.conn = self
            self.watches[stream.watch_id] = stream
        if not fut.done():
            fut.set_result(resp)

    def _fail(self, reason: str) -> None:
        if self.error is not None:
            return
        self.error = ConnectionFailed(reason)
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(self.error)
        self._pending.clear()
        for s in self.watches.values():
            s.queue.put_nowait(self.error)
        self.watches.clear()
        with contextlib.suppress(Exception):
            self._writer.close()

    async def close(self) -> None:
        self._fail(f"connection to {self.endpoint} closed")
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


# --- sessions ---------------------------------------------------------------------------------------


class _Sessions:
    """Exactly-once sessions, one per write in flight: ``(client_id, seq)`` with seq increasing."""

    def __init__(self) -> None:
        self._free: list[tuple[int, int]] = []

    def acquire(self) -> tuple[int, int]:
        if self._free:
            cid, last = self._free.pop()
            return cid, last + 1
        return secrets.randbits(63) or 1, 1

    def release(self, client_id: int, seq: int) -> None:
        self._free.append((client_id, seq))


# --- the client ---------------------------------------------------------------------------------------


class AsyncClient:
    """Args:
    endpoints: ``host:port`` of the members' client URLs (``http://`` prefixes are accepted).
    dial_timeout: seconds to open one connection.
    command_timeout: seconds for one call, failover included.
    max_frame_size: the largest frame accepted from the server.
    prefer_leader: talk to the leader when it is one of ``endpoints`` (see the module doc).

    Use as ``async with AsyncClient([...]) as c:`` or call :meth:`close`. Every method raises the
    server's typed ``KVError`` (same class and etcd message), ``ConnectionFailed`` when no endpoint
    could be reached, or ``Timeout`` when the call did not complete within ``command_timeout``.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        dial_timeout: float = 5.0,
        command_timeout: float = 5.0,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        prefer_leader: bool = True,
    ) -> None:
        if not endpoints:
            raise ValueError("no endpoints")
        for ep in endpoints:
            parse_endpoint(ep)
        self.endpoints = list(endpoints)
        self.dial_timeout = dial_timeout
        self.command_timeout = command_timeout
        self.max_frame_size = max_frame_size
        self._index = 0
        self._conn: _Connection | None = None
        self._dialing: asyncio.Future[_Connection] | None = None
        self._sessions = _Sessions()
        self._closed = False
        self.prefer_leader = prefer_leader and len(self.endpoints) > 1
        self._term = 0  # the highest raft term seen in an answer
        self._rerouting: asyncio.Task[None] | None = None
        self._retiring: dict[asyncio.Task[None], _Connection] = {}  # closed once idle
        self._reroute_again = False  # a newer term was seen while a reroute was running

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if self._rerouting is not None:
            self._rerouting.cancel()
        retiring, self._retiring = self._retiring, {}
        for task in retiring:
            task.cancel()
        for old in retiring.values():
            await old.close()
        if conn is not None:
            await conn.close()

    @property
    def endpoint(self) -> str | None:
        """The endpoint of the current connection, if any."""
        return None if self._conn is None or self._conn.closed else self._conn.endpoint

    # -- connections and failover ------------------------------------------------------------------

    async def _connection(self, deadline: float) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        if self._dialing is not None:  # one dial at a time; everyone else waits for it
            return await asyncio.shield(self._dialing)
        fut: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()
        self._dialing = fut
        try:
            conn = await self._dial(deadline)
            self._conn = conn  # kept (not leaked) if this caller is cancelled below
            if self.prefer_leader:
                conn = await self._to_leader(conn, deadline)
            self._conn = conn
            fut.set_result(conn)
            return conn
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self._dialing = None

    async def _dial(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        for _ in range(len(self.endpoints)):
            if self._closed:
                raise ConnectionFailed("client closed")
            ep = self.endpoints[self._index]
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                return await _Connection.open(
                    ep, min(self.dial_timeout, remaining), self.max_frame_size
                )
            except ConnectionFailed as e:
                errors.append(str(e))
                self._index = (self._index + 1) % len(self.endpoints)
        raise ConnectionFailed("; ".join(errors) or "no endpoint answered in time")

    async def _to_leader(self, conn: _Connection, deadline: float) -> _Connection:
        """``conn``, or a new connection to the leader when ``conn``'s member is not the leader
        and the leader's client URL is one of the endpoints. Best effort: on any failure the
        call goes on over ``conn`` (the member forwards to the leader)."""
        loop = asyncio.get_running_loop()
        try:
            status, members = conn.send(Status()), conn.send(MemberList())
        except ConnectionFailed:
            return conn
        try:
            async with asyncio.timeout(max(min(self.dial_timeout, deadline - loop.time()), 0)):
                st, ml = (await status).body, (await members).body
        except (TimeoutError, ConnectionFailed):
            for f in (status, members):
                conn.forget(f)
                if f.done() and not f.cancelled():
                    f.exception()  # retrieved: the call goes on over conn regardless
            return conn
        if not isinstance(st, StatusResponse) or not isinstance(ml, MemberListResponse):
            return conn
        if st.leader == 0:  # an election is on: the next answer in its term looks again
            return conn
        self._term = max(self._term, st.raft_term)
        if st.leader == st.header.member_id:
            return conn
        urls = next((m.client_urls for m in ml.members if m.id == st.leader), ())
        known = {parse_endpoint(ep): ep for ep in self.endpoints}
        target = next((known[a] for a in map(parse_endpoint, urls) if a in known), None)
        if target is None or self._closed:
            return conn
        try:
            leader = await _Connection.open(
                target, max(min(self.dial_timeout, deadline - loop.time()), 0), self.max_frame_size
            )
        except ConnectionFailed:
            return conn
        self._index = self.endpoints.index(target)
        self._retire(conn)
        return leader

    def _saw_term(self, body: ResponseBody) -> None:
        """An answer's term is newer than any seen: the leader may have changed; look again."""
        header = getattr(body, "header", None)
        term = header.raft_term if header is not None else 0
        if term <= self._term:
            return
        self._term = term
        if not self.prefer_leader or self._closed:
            return
        if self._rerouting is not None:
            self._reroute_again = True
            return
        self._rerouting = asyncio.get_running_loop().create_task(self._reroute())

    async def _reroute(self) -> None:
        try:
            conn = self._conn
            if conn is None or conn.closed or self._dialing is not None:
                return
            loop = asyncio.get_running_loop()
            new = await self._to_leader(conn, loop.time() + self.command_timeout)
            if new is not conn and self._conn is conn and not self._closed:
                self._conn = new
            elif new is not conn:  # the client moved on meanwhile
                self._retire(new)
        finally:
            self._rerouting = None
            if self._reroute_again and not self._closed:
                self._reroute_again = False
                self._rerouting = asyncio.get_running_loop().create_task(self._reroute())

    def _retire(self, conn: _Connection) -> None:
        """Close ``conn`` once the calls and watches on it are done."""

        async def retire() -> None:
            while (conn.pending or conn.watches) and not conn.closed:
                await asyncio.sleep(_RETIRE_POLL)
            await conn.close()

        task = asyncio.get_running_loop().create_task(retire())
        self._retiring[task] = conn
        task.add_done_callback(lambda t: self._retiring.pop(t, None))

    def _fail_over(self, conn: _Connection) -> None:
        """Leave ``conn``'s endpoint: the next call dials the next one."""
        if self._conn is conn:
            self._conn = None
            self._index = (self.endpoints.index(conn.endpoint) + 1) % len(self.endpoints)
            asyncio.get_running_loop().create_task(conn.close())

    async def _call(
        self, body: RequestBody, client_id: int = 0, seq: int = 0, stream: _Stream | None = None
    ) -> ResponseBody:
        """Send ``body`` and return the answer, failing over until the command timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.command_timeout
        backoff = _BACKOFF_MIN
        last: Exception | None = None
        tried = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                conn = await self._connection(deadline)
            except ConnectionFailed as e:
                last = e
            else:
                fut = conn.send(body, client_id, seq, stream)
                try:
                    async with asyncio.timeout(remaining):  # no extra task, unlike wait_for
                        resp = await fut
                except TimeoutError:
                    conn.forget(fut)
                    raise Timeout() from last
                except asyncio.CancelledError:
                    conn.forget(fut)
                    raise
                except ConnectionFailed as e:
                    last = e
                    self._fail_over(conn)
                else:
                    if resp.body is not None:
                        self._saw_term(resp.body)
                        return resp.body
                    err = error_from_response(resp)
                    if not isinstance(err, UNAVAILABLE):
                        raise err
                    last = err
                    self._fail_over(conn)
            tried += 1
            if tried % len(self.endpoints) == 0:  # every endpoint failed: back off a little
                await asyncio.sleep(min(backoff, max(deadline - loop.time(), 0)))
                backoff = min(backoff * 2, _BACKOFF_MAX)
        if isinstance(last, KVError | ConnectionFailed):
            raise last
        raise Timeout()

    async def _typed(self, body: RequestBody, kind: type[_R], client_id: int = 0,
                     seq: int = 0) -> _R:  # fmt: skip
        out = await self._call(body, client_id, seq)
        if not isinstance(out, kind):
            raise ConnectionFailed(
                f"unexpected answer {type(out).__name__} to {type(body).__name__}"
            )
        return out

    async def _write(self, body: RequestBody, kind: type[_R]) -> _R:
        client_id, seq = self._sessions.acquire()
        try:
            return await self._typed(body, kind, client_id, seq)
        finally:
            self._sessions.release(client_id, seq)

    # -- KV ------------------------------------------------------------------------------------------

    async def put(
        self,
        key: KeyLike,
        value: KeyLike = b"",
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResponse:
        req = PutRequest(to_bytes(key), to_bytes(value), lease, prev_kv, ignore_value, ignore_lease)
        return await self._write(req, PutResponse)

    async def get(
        self,
        key: KeyLike,
        range_end: KeyLike = b"",
        prefix: bool = False,
        from_key: bool = False,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: SortOrder = SortOrder.NONE,
        sort_target: SortTarget = SortTarget.KEY,
        serializable: bool = False,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
    ) -> RangeResponse:
        k = to_bytes(key)
        end = _range_end(k, to_bytes(range_end), prefix, from_key)
        if sort_target == SortTarget.KEY and sort_order == SortOrder.ASCEND:
            sort_order = SortOrder.NONE  # the server's natural order (as clientv3 does)
        req = RangeRequest(
            k, end, limit, revision, sort_order, sort_target, serializable, keys_only,
            count_only, min_mod_revision, max_mod_revision, min_create_revision,
            max_create_revision,
        )  # fmt: skip
        return await self._typed(req, RangeResponse)

    async def delete(
        self,
        key: KeyLike,
        range_end: KeyLike = b"",
        prefix: bool = False,
        from_key: bool = False,
        prev_kv: bool = False,
    ) -> DeleteRangeResponse:
        k = to_bytes(key)
        end = _range_end(k, to_bytes(range_end), prefix, from_key)
        return await self._write(DeleteRangeRequest(k, end, prev_kv), DeleteRangeResponse)

    async def txn(
        self,
        compare: Iterable[Compare] = (),
        success: Iterable[RequestOp] = (),
        failure: Iterable[RequestOp] = (),
    ) -> TxnResponse:
        req = TxnRequest(tuple(compare), tuple(success), tuple(failure))
        return await self._write(req, TxnResponse)

    async def compact(self, revision: int, physical: bool = False) -> CompactionResponse:
        return await self._typed(CompactionRequest(revision, physical), CompactionResponse)

    # -- leases ----------------------------------------------------------------------------------

    async def lease_grant(self, ttl: int, id: int = 0) -> LeaseGrantResponse:
        return await self._typed(LeaseGrantRequest(ttl, id), LeaseGrantResponse)

    async def lease_revoke(self, id: int) -> LeaseRevokeResponse:
        return await self._typed(LeaseRevokeRequest(id), LeaseRevokeResponse)

    async def lease_keep_alive_once(self, id: int) -> LeaseKeepAliveResponse:
        return await self._typed(LeaseKeepAlive(id), LeaseKeepAliveResponse)

    async def lease_keep_alive(self, id: int) -> AsyncIterator[LeaseKeepAliveResponse]:
        """Renew the lease now and then every third of its TTL, yielding each answer; ends with
        ``LeaseNotFound`` once the lease is gone."""
        while True:
            resp = await self.lease_keep_alive_once(id)
            yield resp
            await asyncio.sleep(max(resp.ttl / 3, 0.5))

    async def lease_time_to_live(self, id: int, keys: bool = False) -> LeaseTimeToLiveResponse:
        return await self._typed(LeaseTimeToLive(id, keys), LeaseTimeToLiveResponse)

    async def lease_leases(self) -> LeaseLeasesResponse:
        return await self._typed(LeaseLeases(), LeaseLeasesResponse)

    # -- cluster -----------------------------------------------------------------------------------

    async def member_list(self) -> MemberListResponse:
        return await self._typed(MemberList(), MemberListResponse)

    async def status(self, endpoint: str | None = None) -> StatusResponse:
        """The status of ``endpoint`` (one of any host:port; no failover), or of the current one."""
        if endpoint is None:
            return await self._typed(Status(), StatusResponse)
        one = AsyncClient([endpoint], self.dial_timeout, self.command_timeout, self.max_frame_size)
        try:
            conn = await one._connection(asyncio.get_running_loop().time() + self.command_timeout)
            resp = await asyncio.wait_for(conn.send(Status()), self.command_timeout)
        except TimeoutError:
            raise Timeout() from None
        finally:
            await one.close()
        if resp.body is None:
            raise error_from_response(resp)
        if not isinstance(resp.body, StatusResponse):
            raise ConnectionFailed(f"unexpected answer {type(resp.body).__name__} to Status")
        return resp.body

    # -- watch ---------------------------------------------------------------------------------------

    def watch(
        self,
        key: KeyLike,
        range_end: KeyLike = b"",
        prefix: bool = False,
        from_key: bool = False,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Iterable[WatchFilter] = (),
        progress_notify: bool = False,
    ) -> Watcher:
        """A watch: ``async with client.watch(...) as w: async for resp in w: ...``.

        The watch is created on ``start()`` (or entering the ``async with``, or the first
        iteration). If its connection breaks it is created again on another endpoint from the
        revision after the last one seen, so no event is lost or repeated. With
        ``progress_notify`` the member sends a progress notification (no events, its current
        revision) at its ``--experimental-watch-progress-notify-interval`` when there were no
        events meanwhile.
        """
        k = to_bytes(key)
        end = _range_end(k, to_bytes(range_end), prefix, from_key)
        create = WatchCreate(k, end, start_revision, prev_kv, tuple(filters), progress_notify)
        return Watcher(self, create)


def _range_end(key: bytes, range_end: bytes, prefix: bool, from_key: bool) -> bytes:
    if prefix:
        return prefix_end(key) if key else b"\x00"
    if from_key:
        return b"\x00"
    return range_end


class Watcher:
    """An async iterator of a watch's responses (events and progress notifications).

    Iteration ends when the watch is canceled; a watch whose start revision was compacted
    raises ``Compacted``.
    """

    def __init__(self, client: AsyncClient, create: WatchCreate) -> None:
        self._client = client
        self._create = create
        self._stream: _Stream | None = None
        self._conn: _Connection | None = None
        self._next_rev = create.start_revision
        self._done = False
        self.watch_id = -1
        self.compact_revision = 0

    async def __aenter__(self) -> Watcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    def __aiter__(self) -> Watcher:
        return self

    async def start(self) -> None:
        """Create the watch (again, after a broken connection); returns once it is created."""
        c = self._client
        create = msgspec.structs.replace(self._create, start_revision=self._next_rev)
        stream = _Stream()
        body = await c._call(create, stream=stream)
        if not isinstance(body, WatchResult):
            raise ConnectionFailed(f"unexpected answer {type(body).__name__} to WatchCreate")
        self._stream = stream
        self._conn = stream.conn  # not c._conn: the client may have moved on meanwhile
        self.watch_id = stream.watch_id
        if self._next_rev == 0:
            self._next_rev = body.response.header.revision + 1

    async def __anext__(self) -> WatchResponse:
        while True:
            if self._done:
                raise StopAsyncIteration
            if self._stream is None:
                await self.start()
            assert self._stream is not None
            item = await self._stream.queue.get()
            if isinstance(item, ClientError):
                self._stream = None  # the connection broke: create it again elsewhere
                continue
            if item.canceled:
                self._done = True
                if item.compact_revision:
                    self.compact_revision = item.compact_revision
                    raise Compacted()
                raise StopAsyncIteration
            self._next_rev = max(self._next_rev, item.header.revision + 1)
            return item

    async def progress(self) -> None:
        """Ask for a progress notification; it arrives through the iteration."""
        if self._stream is None or self._conn is None or self._conn.closed:
            return
        resp = await self._conn.send(WatchProgress(self.watch_id))
        if resp.body is not None and isinstance(resp.body, WatchResult):
            self._stream.queue.put_nowait(resp.body.response)

    async def cancel(self) -> None:
        """Stop the watch; iteration ends."""
        if self._done:
            return
        self._done = True
        conn, stream = self._conn, self._stream
        self._stream = None
        if stream is not None:
            stream.queue.put_nowait(ConnectionFailed("watch canceled"))
        if conn is None or conn.closed or stream is None:
            return
        conn.watches.pop(stream.watch_id, None)
        with contextlib.suppress(ClientError, TimeoutError):
            await asyncio.wait_for(
                conn.send(WatchCancel(stream.watch_id)), self._client.command_timeout
            )
