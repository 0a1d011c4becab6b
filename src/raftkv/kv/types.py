"""Requests, responses and records of the KV store, named after etcd's v3 API.

Field names and enum values follow ``etcdserverpb`` (rpc.proto) and ``mvccpb`` (kv.proto), so the
gRPC layer is a field-by-field translation. Every struct is frozen. Commands (everything that goes
through the log) form one tagged union, :data:`Command`, so one command is one encoded payload.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

import msgspec


class SortOrder(enum.IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(enum.IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class CompareResult(enum.IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


class CompareTarget(enum.IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class EventType(enum.IntEnum):
    PUT = 0
    DELETE = 1


class WatchFilter(enum.IntEnum):
    NOPUT = 0
    NODELETE = 1


# --- records ---------------------------------------------------------------------------------


class KeyValue(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """mvccpb.KeyValue. A tombstone (the kv of a DELETE event) has ``version == 0``."""

    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0


class ResponseHeader(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The store fills ``revision``; the server layer fills the other three."""

    cluster_id: int = 0
    member_id: int = 0
    revision: int = 0
    raft_term: int = 0


class Event(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """mvccpb.Event: one change of one key at one revision."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


# --- KV requests -----------------------------------------------------------------------------


class RangeRequest(msgspec.Struct, frozen=True, array_like=True, tag="range"):
    """Read ``key`` (``range_end`` empty), ``[key, range_end)``, or ``key`` onward (``b"\\x00"``)."""

    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    serializable: bool = False
    keys_only: bool = False
    count_only: bool = False
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


class PutRequest(msgspec.Struct, frozen=True, array_like=True, tag="put"):
    key: bytes
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


class DeleteRangeRequest(msgspec.Struct, frozen=True, array_like=True, tag="delete_range"):
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


class Compare(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One txn guard. Only the field named by ``target`` is read (etcd's ``target_union``)."""

    result: CompareResult
    target: CompareTarget
    key: bytes
    range_end: bytes = b""
    version: int = 0
    create_revision: int = 0
    mod_revision: int = 0
    value: bytes = b""
    lease: int = 0


class TxnRequest(msgspec.Struct, frozen=True, array_like=True, tag="txn"):
    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


RequestOp: TypeAlias = "RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest"
"""etcd's RequestOp oneof: one operation of a txn branch."""


class CompactionRequest(msgspec.Struct, frozen=True, array_like=True, tag="compact"):
    revision: int
    physical: bool = False


# --- lease and session requests ----------------------------------------------------------------


class LeaseGrantRequest(msgspec.Struct, frozen=True, array_like=True, tag="lease_grant"):
    """``ID`` 0 asks the state machine to pick one deterministically (from the entry index)."""

    ttl: int
    id: int = 0


class LeaseRevokeRequest(msgspec.Struct, frozen=True, array_like=True, tag="lease_revoke"):
    id: int


class LeaseCheckpoint(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: int
    remaining_ttl: int


class LeaseCheckpointRequest(msgspec.Struct, frozen=True, array_like=True, tag="lease_checkpoint"):
    """Replicates the leader's remaining TTLs so a new leader does not restart them at full TTL."""

    checkpoints: tuple[LeaseCheckpoint, ...] = ()


class ExpireSessionsRequest(msgspec.Struct, frozen=True, array_like=True, tag="expire_sessions"):
    """Drop client sessions idle since ``now_ms - timeout_ms`` (thesis §6.3), stamped by the leader."""

    now_ms: int
    timeout_ms: int


class MemberAttrsRequest(msgspec.Struct, frozen=True, array_like=True, tag="member_attrs"):
    """A member publishes its name and client URLs through the log, as etcd members do once they
    see a leader, so every member can list everyone's client URLs."""

    member_id: int
    name: str
    client_urls: tuple[str, ...] = ()


class MemberAttrsResponse(msgspec.Struct, frozen=True, array_like=True, tag="member_attrs"):
    header: ResponseHeader


Command: TypeAlias = (
    RangeRequest
    | PutRequest
    | DeleteRangeRequest
    | TxnRequest
    | CompactionRequest
    | LeaseGrantRequest
    | LeaseRevokeRequest
    | LeaseCheckpointRequest
    | ExpireSessionsRequest
    | MemberAttrsRequest
)
"""Everything that can be proposed through the log."""


class Envelope(msgspec.Struct, frozen=True, array_like=True):
    """One log entry's payload: the command and its exactly-once session (thesis §6.3).

    ``client_id`` 0 means no session. ``now_ms`` is the leader's clock when it proposed the entry:
    the only time a replica ever sees.
    """

    cmd: Command
    client_id: int = 0
    seq: int = 0
    now_ms: int = 0


# --- responses -------------------------------------------------------------------------------


class RangeResponse(msgspec.Struct, frozen=True, array_like=True, tag="range"):
    header: ResponseHeader
    kvs: tuple[KeyValue, ...] = ()
    more: bool = False
    count: int = 0


class PutResponse(msgspec.Struct, frozen=True, array_like=True, tag="put"):
    header: ResponseHeader
    prev_kv: KeyValue | None = None


class DeleteRangeResponse(msgspec.Struct, frozen=True, array_like=True, tag="delete_range"):
    header: ResponseHeader
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = ()


class TxnResponse(msgspec.Struct, frozen=True, array_like=True, tag="txn"):
    header: ResponseHeader
    succeeded: bool = False
    responses: tuple[ResponseOp, ...] = ()


ResponseOp: TypeAlias = "RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse"


class CompactionResponse(msgspec.Struct, frozen=True, array_like=True, tag="compact"):
    header: ResponseHeader


class LeaseGrantResponse(msgspec.Struct, frozen=True, array_like=True, tag="lease_grant"):
    header: ResponseHeader
    id: int = 0
    ttl: int = 0
    error: str = ""


class LeaseRevokeResponse(msgspec.Struct, frozen=True, array_like=True, tag="lease_revoke"):
    header: ResponseHeader


class LeaseCheckpointResponse(msgspec.Struct, frozen=True, array_like=True, tag="lease_checkpoint"):
    header: ResponseHeader


class LeaseKeepAliveResponse(msgspec.Struct, frozen=True, array_like=True, tag="lease_keepalive"):
    header: ResponseHeader
    id: int = 0
    ttl: int = 0


class LeaseTimeToLiveResponse(msgspec.Struct, frozen=True, array_like=True, tag="lease_ttl"):
    """``ttl`` is -1 for an unknown lease, as etcd answers."""

    header: ResponseHeader
    id: int = 0
    ttl: int = 0
    granted_ttl: int = 0
    keys: tuple[bytes, ...] = ()


class LeaseStatus(msgspec.Struct, frozen=True, array_like=True, gc=False):
    id: int


class LeaseLeasesResponse(msgspec.Struct, frozen=True, array_like=True, tag="lease_leases"):
    header: ResponseHeader
    leases: tuple[LeaseStatus, ...] = ()


class ExpireSessionsResponse(msgspec.Struct, frozen=True, array_like=True, tag="expire_sessions"):
    header: ResponseHeader
    expired: int = 0


Response: TypeAlias = (
    RangeResponse
    | PutResponse
    | DeleteRangeResponse
    | TxnResponse
    | CompactionResponse
    | LeaseGrantResponse
    | LeaseRevokeResponse
    | LeaseCheckpointResponse
    | ExpireSessionsResponse
    | MemberAttrsResponse
)
"""What applying a :data:`Command` returns (an error is returned as a ``KVError`` instead)."""


# --- watch -----------------------------------------------------------------------------------


class WatchResponse(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """etcdserverpb.WatchResponse: all events of one revision for one watch, or a status change."""

    header: ResponseHeader
    watch_id: int
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    events: tuple[Event, ...] = ()
