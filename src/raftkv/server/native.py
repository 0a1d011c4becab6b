"""The native protocol's server side: one :class:`NativeProtocol` per client connection.

The byte stream starts with ``CLIENT_MAGIC`` and then carries frames (see ``raftkv.kv.wire``).
Requests are pipelined: every request decoded from one ``data_received`` chunk is dispatched
at once, each in its own task, so the node sees them together and batches them into one
proposal round (group commit) or one ReadIndex. Answers are written as they complete and
coalesced into one socket write per event-loop iteration.

Bad input never reaches anyone else: a request the server cannot read but whose id it can find
(an unknown type) gets an error answer and the connection stays; a byte stream it cannot read
(bad magic, garbage, an oversized frame, a frame type that is not a request) gets one ``ERROR``
frame with a one-line reason, then the connection is closed.

Backpressure: the protocol stops reading while too many requests are in flight or while the
transport's write buffer is over its high-water mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import cast

import msgspec

import raftkv
from raftkv.kv import (
    CompactionRequest,
    CompactionResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KVError,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    ResponseHeader,
    TxnRequest,
    TxnResponse,
    WatchResponse,
)
from raftkv.kv.wire import (
    ClientFrame,
    ClientRequest,
    ClientResponse,
    InternalError,
    LeaseKeepAlive,
    LeaseLeases,
    LeaseTimeToLive,
    Member,
    MemberList,
    MemberListResponse,
    RequestBody,
    ResponseBody,
    Status,
    StatusResponse,
    UnknownRequest,
    WatchCancel,
    WatchCreate,
    WatchEvent,
    WatchProgress,
    WatchResult,
    decode_raw_request,
    decode_request,
    encode,
    error_response,
)
from raftkv.node import Proposal
from raftkv.server.progress import ProgressTicker
from raftkv.server.service import KVService
from raftkv.transport.errors import FrameError, one_line
from raftkv.transport.framing import (
    CLIENT_MAGIC,
    DEFAULT_MAX_FRAME,
    MAGIC_LEN,
    FrameDecoder,
    encode_frame,
)

log = logging.getLogger("raftkv.server.native")

MAX_IN_FLIGHT = 16_384
"""Requests in flight on one connection before the server stops reading from it."""


class NativeProtocol(asyncio.Protocol):
    """Serve one native-protocol connection with ``service``.

    The listener may hand over a connection whose first bytes it already read: it calls
    ``connection_made`` then ``data_received`` with those bytes, magic included.
    """

    def __init__(
        self,
        service: KVService,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.service = service
        self.max_in_flight = max_in_flight
        self._decoder = FrameDecoder(max_frame_size, frozenset(ClientFrame))
        self._transport: asyncio.Transport | None = None
        self._magic = bytearray()
        self._magic_ok = False
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._proposals = 0  # writes in flight (answered from callbacks, not tasks)
        self._watches: set[int] = set()
        self._progress = ProgressTicker(service.config.watch_progress_interval, self._notify)
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._write_paused = False
        self._read_paused = False
        self.peer = "?"

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's do not subclass asyncio.Transport)
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._magic_ok:
            need = MAGIC_LEN - len(self._magic)
            self._magic += data[:need]
            data = data[need:]
            if not CLIENT_MAGIC.startswith(bytes(self._magic)):
                self._fatal("not the raftkv native protocol (bad magic prefix)")
                return
            if len(self._magic) < MAGIC_LEN:
                return
            self._magic_ok = True
            if not data:
                return
        try:
            frames = self._decoder.feed(data)
        except FrameError as e:
            self._fatal(str(e))
            return
        for f in frames:
            if f.type != ClientFrame.REQUEST:
                self._fatal(f"unexpected frame type 0x{f.type:02x} from a client")
                return
            self._on_request(f.payload)
            if self._closing:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        for t in self._tasks:
            t.cancel()
        for wid in self._watches:
            self.service.watch_cancel(wid)
        self._watches.clear()
        self._progress.close()
        self._out.clear()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    # -- requests -------------------------------------------------------------------------------

    def _on_request(self, payload: bytes) -> None:
        try:
            req = decode_request(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            try:
                rid = decode_raw_request(payload).id
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._fatal(f"malformed request frame: {e}")
                return
            self._answer(
                error_response(rid, UnknownRequest(one_line(f"{UnknownRequest.message}: {e}")))
            )
            return
        body = req.body
        # Requests answered at once, without the log.
        match body:
            case WatchCreate() | WatchCancel() | WatchProgress():
                self._watch(req.id, body)
                return
            case PutRequest() | DeleteRangeRequest() | TxnRequest() | CompactionRequest():
                self._propose(req)
                return
            case MemberList():
                self._answer(ClientResponse(req.id, self._member_list()))
                return
            case Status():
                self._answer(ClientResponse(req.id, self._status()))
                return
            case _:
                pass
        task = asyncio.get_running_loop().create_task(self._serve(req))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._update_reading()

    def _propose(self, req: ClientRequest) -> None:
        """A write, with no task: the answer is sent from the proposal's done callback."""
        body = req.body
        assert isinstance(body, PutRequest | DeleteRangeRequest | TxnRequest | CompactionRequest)
        try:
            if isinstance(body, CompactionRequest):
                fut = self.service.start_propose(body)
            else:
                fut = self.service.start_propose(body, req.client_id, req.seq)
        except KVError as e:
            self._answer(error_response(req.id, e))
            return
        self._proposals += 1
        fut.add_done_callback(functools.partial(self._proposed, req.id))
        self._update_reading()

    def _proposed(self, rid: int, fut: Proposal) -> None:
        """The proposal's done-callback: runs inside the node's apply (see ``Proposal``), so
        the answer leaves with the batch's other answers, before the node's next step."""
        self._proposals -= 1
        try:
            result = self.service.proposal_result(fut)
            assert isinstance(result, PutResponse | DeleteRangeResponse | TxnResponse
                              | CompactionResponse), result  # fmt: skip
            resp = ClientResponse(rid, result)
        except KVError as e:
            resp = error_response(rid, e)
        except Exception as e:  # a bug must not take the connection down
            log.exception("native request %d from %s failed", rid, self.peer)
            resp = error_response(rid, InternalError(one_line(f"{InternalError.message}: {e!r}")))
        self._answer(resp, with_batch=True)
        self._update_reading()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._update_reading()

    async def _serve(self, req: ClientRequest) -> None:
        try:
            body = await self._execute(req.body, req.client_id, req.seq)
            resp = ClientResponse(req.id, body)
        except KVError as e:
            resp = error_response(req.id, e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not take the connection down
            log.exception("native request %d from %s failed", req.id, self.peer)
            resp = error_response(
                req.id, InternalError(one_line(f"{InternalError.message}: {e!r}"))
            )
        self._answer(resp)

    async def _execute(self, body: RequestBody, client_id: int, seq: int) -> ResponseBody:
        s = self.service
        match body:
            case RangeRequest():
                return await s.range(body)
            case LeaseGrantRequest():
                return await s.lease_grant(body)
            case LeaseRevokeRequest():
                return await s.lease_revoke(body)
            case LeaseKeepAlive():
                return await s.lease_keepalive(body.id)
            case LeaseTimeToLive():
                return await s.lease_time_to_live(body.id, body.keys)
            case LeaseLeases():
                return await s.lease_leases()
            case (
                WatchCreate() | WatchCancel() | WatchProgress() | MemberList() | Status()
                | PutRequest() | DeleteRangeRequest() | TxnRequest() | CompactionRequest()
            ):  # fmt: skip
                raise AssertionError("answered without a task")  # pragma: no cover
        raise UnknownRequest()  # pragma: no cover

    # -- watches --------------------------------------------------------------------------------

    def _watch(self, rid: int, body: WatchCreate | WatchCancel | WatchProgress) -> None:
        match body:
            case WatchCreate():
                answered = False

                def send(resp: WatchResponse) -> None:
                    nonlocal answered
                    if not answered and resp.created:
                        answered = True
                        self._answer(ClientResponse(rid, WatchResult(resp)))
                        return
                    if resp.canceled:
                        self._watches.discard(resp.watch_id)
                        self._progress.discard(resp.watch_id)
                    elif resp.events:
                        self._progress.saw_events(resp.watch_id)
                    self._push(WatchEvent(resp.watch_id, resp))

                try:
                    wid = self.service.watch_create(
                        body.key, body.range_end, body.start_revision, body.prev_kv,
                        body.filters, send,
                    )  # fmt: skip
                except KVError as e:
                    self._answer(error_response(rid, e))
                    return
                if self._closing:
                    self.service.watch_cancel(wid)
                elif wid in self.service.sm.hub.watches:
                    self._watches.add(wid)
                    if body.progress_notify:
                        self._progress.add(wid)
            case WatchCancel():
                # Only this connection's own watches: ids are per member, not per connection.
                r = None
                if body.watch_id in self._watches:
                    self._watches.discard(body.watch_id)
                    self._progress.discard(body.watch_id)
                    r = self.service.watch_cancel(body.watch_id)
                if r is None:
                    r = WatchResponse(self.service.header(), body.watch_id, canceled=True)
                self._answer(ClientResponse(rid, WatchResult(r)))
            case WatchProgress():
                p = None
                if body.watch_id in self._watches:
                    p = self.service.watch_progress(body.watch_id)
                if p is None:
                    p = WatchResponse(self.service.header(), body.watch_id)
                self._answer(ClientResponse(rid, WatchResult(p)))

    def _notify(self, wid: int) -> None:
        """A progress notification for watch ``wid`` (no events, the current revision)."""
        self._push(WatchEvent(wid, WatchResponse(self.service.header(), wid)))

    # -- cluster --------------------------------------------------------------------------------

    def _member_list(self) -> MemberListResponse:
        members = tuple(
            Member(m.id, m.name, tuple(m.peer_urls), tuple(m.client_urls))
            for m in self.service.members()
        )
        return MemberListResponse(self.service.header(), members)

    def _status(self) -> StatusResponse:
        st = self.service.node.raw.status()
        h: ResponseHeader = self.service.header()
        return StatusResponse(
            header=h,
            version=raftkv.__version__,
            leader=st.lead,
            raft_index=st.last_index,
            raft_term=st.term,
            raft_applied_index=self.service.node.applied,
        )

    # -- output ---------------------------------------------------------------------------------

    def _answer(self, resp: ClientResponse, with_batch: bool = False) -> None:
        """Queue an answer. ``with_batch``: from a proposal's done-callback, where the answer
        leaves with the rest of the node's applied batch (``KVService.send_after_answers``)."""
        self._queue(encode_frame(ClientFrame.RESPONSE, encode(resp)), with_batch)

    def _push(self, ev: WatchEvent) -> None:
        self._queue(encode_frame(ClientFrame.WATCH_EVENT, encode(ev)))

    def _queue(self, frame: bytes, with_batch: bool = False) -> None:
        if self._closing or self._transport is None:
            return
        self._out.append(frame)
        if with_batch and self.service.send_after_answers(id(self), self._flush):
            return  # flushed once the node has settled the batch, in this same call
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        t = self._transport
        if self._closing or t is None or t.is_closing() or not self._out:
            self._out.clear()
            return
        data = b"".join(self._out)
        self._out.clear()
        t.write(data)

    def _update_reading(self) -> None:
        t = self._transport
        if t is None or self._closing:
            return
        in_flight = len(self._tasks) + self._proposals
        want_pause = self._write_paused or in_flight >= self.max_in_flight
        if want_pause and not self._read_paused:
            self._read_paused = True
            t.pause_reading()
        elif not want_pause and self._read_paused:
            self._read_paused = False
            t.resume_reading()

    def _fatal(self, reason: str) -> None:
        """Send one ERROR frame with a one-line ``reason`` (after pending answers), then close."""
        t = self._transport
        reason = one_line(reason)
        log.warning("native client %s: %s; closing the connection", self.peer, reason)
        if t is None or self._closing:
            return
        if self._out:
            self._flush()
        self._closing = True
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            t.write(encode_frame(ClientFrame.ERROR, reason.encode()))
        t.close()
