"""raftkv's native client protocol: the messages both ``raftkv.server.native`` and
``raftkv.client`` speak, and the mapping of typed errors to the wire and back.

A connection starts with ``CLIENT_MAGIC`` (``b"RKVC"``) sent by the client, then both directions
carry frames of ``raftkv.transport.framing`` (``length u32 | type u8 | payload``) whose type is
one of :class:`ClientFrame` and whose payload is msgpack:

- ``REQUEST`` (client → server): one :class:`ClientRequest`. Requests are pipelined: a client
  sends many without waiting, each with its own ``id``; answers come back in completion order.
- ``RESPONSE`` (server → client): one :class:`ClientResponse`, matched to its request by ``id``.
  A typed error (a ``KVError``) is an answer too: ``body`` is None and ``error_type`` /
  ``error_code`` / ``error`` carry the class name, the gRPC status name and etcd's message.
- ``WATCH_EVENT`` (server → client): one :class:`WatchEvent`, a watch response pushed after the
  watch's ``created`` answer (events, progress notifications, cancellation).
- ``ERROR`` (server → client): one line of UTF-8 text, the last frame before the server closes
  a connection whose byte stream it cannot read (bad magic, garbage, an oversized frame).

Writes (put, delete_range, txn) carry a session ``(client_id, seq)``: the state machine applies
one ``(client_id, seq)`` at most once and answers a retry with the first answer (thesis §6.3).
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import msgspec

from raftkv.kv.errors import ERRORS, KVError
from raftkv.kv.types import (
    CompactionRequest,
    CompactionResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    ResponseHeader,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
)


class ClientFrame(enum.IntEnum):
    """Frame types of the native client protocol (the 0x40-0x7f range of ``framing``)."""

    REQUEST = 0x40
    RESPONSE = 0x41
    WATCH_EVENT = 0x42
    ERROR = 0x43


# --- requests that are not log commands ------------------------------------------------------


class WatchCreate(msgspec.Struct, frozen=True, array_like=True, tag="watch_create"):
    """Start a watch on ``key`` / ``[key, range_end)``; answered by the ``created`` response.

    ``progress_notify``: a progress notification every ``watch_progress_interval`` in which
    the watch had no events (etcd's flag of the same name).
    """

    key: bytes
    range_end: bytes = b""
    start_revision: int = 0
    prev_kv: bool = False
    filters: tuple[WatchFilter, ...] = ()
    progress_notify: bool = False


class WatchCancel(msgspec.Struct, frozen=True, array_like=True, tag="watch_cancel"):
    watch_id: int


class WatchProgress(msgspec.Struct, frozen=True, array_like=True, tag="watch_progress"):
    """Ask for a progress notification (no events; the header has the current revision)."""

    watch_id: int


class LeaseKeepAlive(msgspec.Struct, frozen=True, array_like=True, tag="lease_keepalive"):
    id: int


class LeaseTimeToLive(msgspec.Struct, frozen=True, array_like=True, tag="lease_ttl"):
    id: int
    keys: bool = False


class LeaseLeases(msgspec.Struct, frozen=True, array_like=True, tag="lease_leases"):
    pass


class MemberList(msgspec.Struct, frozen=True, array_like=True, tag="member_list"):
    pass


class Status(msgspec.Struct, frozen=True, array_like=True, tag="status"):
    pass


RequestBody: TypeAlias = (
    RangeRequest
    | PutRequest
    | DeleteRangeRequest
    | TxnRequest
    | CompactionRequest
    | LeaseGrantRequest
    | LeaseRevokeRequest
    | LeaseKeepAlive
    | LeaseTimeToLive
    | LeaseLeases
    | WatchCreate
    | WatchCancel
    | WatchProgress
    | MemberList
    | Status
)


class ClientRequest(msgspec.Struct, frozen=True, array_like=True):
    """One request. ``client_id`` / ``seq`` (0: none) make a write exactly-once."""

    id: int
    body: RequestBody
    client_id: int = 0
    seq: int = 0


class RawClientRequest(msgspec.Struct, frozen=True, array_like=True):
    """A request whose body is not decoded: how a server finds the id of a request it refuses."""

    id: int
    body: msgspec.Raw
    client_id: int = 0
    seq: int = 0


# --- responses that are not log results --------------------------------------------------------


class WatchResult(msgspec.Struct, frozen=True, array_like=True, tag="watch"):
    """The answer to WatchCreate / WatchCancel / WatchProgress."""

    response: WatchResponse


class Member(msgspec.Struct, frozen=True, array_like=True):
    """etcdserverpb.Member."""

    id: int
    name: str = ""
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False


class MemberListResponse(msgspec.Struct, frozen=True, array_like=True, tag="member_list"):
    header: ResponseHeader
    members: tuple[Member, ...] = ()


class StatusResponse(msgspec.Struct, frozen=True, array_like=True, tag="status"):
    """etcdserverpb.StatusResponse (``db_size`` is 0: the store lives in memory)."""

    header: ResponseHeader
    version: str = ""
    db_size: int = 0
    leader: int = 0
    raft_index: int = 0
    raft_term: int = 0
    raft_applied_index: int = 0
    errors: tuple[str, ...] = ()
    db_size_in_use: int = 0
    is_learner: bool = False


ResponseBody: TypeAlias = (
    RangeResponse
    | PutResponse
    | DeleteRangeResponse
    | TxnResponse
    | CompactionResponse
    | LeaseGrantResponse
    | LeaseRevokeResponse
    | LeaseKeepAliveResponse
    | LeaseTimeToLiveResponse
    | LeaseLeasesResponse
    | WatchResult
    | MemberListResponse
    | StatusResponse
)


class ClientResponse(msgspec.Struct, frozen=True, array_like=True):
    """The answer to request ``id``: a ``body``, or a typed error (``body`` None)."""

    id: int
    body: ResponseBody | None = None
    error_code: str = ""
    error: str = ""
    error_type: str = ""


class WatchEvent(msgspec.Struct, frozen=True, array_like=True):
    """A watch response pushed to the client after the watch's ``created`` answer."""

    watch_id: int
    response: WatchResponse


# --- codec -------------------------------------------------------------------------------------

_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(ClientRequest)
_raw_request_decoder = msgspec.msgpack.Decoder(RawClientRequest)
_response_decoder = msgspec.msgpack.Decoder(ClientResponse)
_watch_event_decoder = msgspec.msgpack.Decoder(WatchEvent)


def encode(msg: ClientRequest | ClientResponse | WatchEvent) -> bytes:
    return _encoder.encode(msg)


def decode_request(payload: bytes) -> ClientRequest:
    """Raises msgspec.DecodeError (not msgpack) or msgspec.ValidationError (unknown shape)."""
    return _request_decoder.decode(payload)


def decode_raw_request(payload: bytes) -> RawClientRequest:
    return _raw_request_decoder.decode(payload)


def decode_response(payload: bytes) -> ClientResponse:
    return _response_decoder.decode(payload)


def decode_watch_event(payload: bytes) -> WatchEvent:
    return _watch_event_decoder.decode(payload)


# --- typed errors over the wire ------------------------------------------------------------------


class UnknownRequest(KVError):
    """The server could not read a request's body (an unknown type or a malformed one)."""

    code = "UNIMPLEMENTED"
    message = "raftkv: unknown request type"


class InternalError(KVError):
    code = "INTERNAL"
    message = "raftkv: internal server error"


class RemoteError(KVError):
    """A typed error this side does not know by name; keeps the server's code and message."""

    def __init__(self, message: str | None = None, remote_code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.remote_code = remote_code


WIRE_ERRORS: dict[str, type[KVError]] = {
    **ERRORS,
    **{c.__name__: c for c in (UnknownRequest, InternalError)},
}
"""Every error class a client can rebuild from a response, by class name."""


def error_response(request_id: int, err: KVError) -> ClientResponse:
    """The answer carrying ``err``: its class name, gRPC status name and etcd's message."""
    return ClientResponse(
        request_id,
        None,
        error_code=error_code(err),
        error=str(err) or err.message,
        error_type=type(err).__name__,
    )


def error_code(err: KVError) -> str:
    """The gRPC status name of ``err`` (a RemoteError keeps the server's)."""
    if isinstance(err, RemoteError):
        return err.remote_code
    return err.code


def error_from_response(resp: ClientResponse) -> KVError:
    """The typed error of an error response: same class and message as on the server."""
    cls = WIRE_ERRORS.get(resp.error_type)
    if cls is not None:
        return cls(resp.error or None)
    return RemoteError(resp.error or None, resp.error_code or "UNKNOWN")
