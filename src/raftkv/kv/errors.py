"""Typed errors of the KV state machine, one per etcd error, each with etcd 3.4's exact text.

The texts and gRPC status names come from etcd's ``etcdserver/api/v3rpc/rpctypes/error.go``;
the gRPC layer maps ``code`` to a status and ``message`` to its details unchanged.

::

    KVError                     base: ``code`` (gRPC status name) and ``message`` (etcd's text)
    ├── EmptyKey                INVALID_ARGUMENT     a request without a key
    ├── KeyNotFound             INVALID_ARGUMENT     ignore_value / ignore_lease on a missing key
    ├── ValueProvided           INVALID_ARGUMENT     ignore_value with a value
    ├── LeaseProvided           INVALID_ARGUMENT     ignore_lease with a lease
    ├── TooManyOps              INVALID_ARGUMENT     a txn branch longer than max_txn_ops
    ├── DuplicateKey            INVALID_ARGUMENT     one key written twice in a txn
    ├── InvalidSortOption       INVALID_ARGUMENT     an unknown sort order or target
    ├── RequestTooLarge         INVALID_ARGUMENT     an encoded request over max_request_bytes
    ├── Compacted               OUT_OF_RANGE         a revision below the compacted one
    ├── FutureRev               OUT_OF_RANGE         a revision above the current one
    ├── TTLTooLarge             OUT_OF_RANGE         a lease TTL above MAX_LEASE_TTL
    ├── LeaseNotFound           NOT_FOUND            an unknown lease id
    ├── LeaseExist              FAILED_PRECONDITION  granting an id already granted
    ├── NoLeader                UNAVAILABLE          (raised by the server layer)
    └── StaleSequence           FAILED_PRECONDITION  raftkv only: a session seq older than the last
"""

from __future__ import annotations

from typing import ClassVar


class KVError(Exception):
    """Base class of every KV error. Instances compare equal when they are of the same class."""

    code: ClassVar[str] = "UNKNOWN"
    message: ClassVar[str] = "etcdserver: unknown error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class EmptyKey(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: key is not provided"


class KeyNotFound(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: key not found"


class ValueProvided(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: value is provided"


class LeaseProvided(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: lease is provided"


class TooManyOps(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: too many operations in txn request"


class DuplicateKey(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: duplicate key given in txn request"


class InvalidSortOption(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: invalid sort option"


class RequestTooLarge(KVError):
    code = "INVALID_ARGUMENT"
    message = "etcdserver: request is too large"


class Compacted(KVError):
    code = "OUT_OF_RANGE"
    message = "etcdserver: mvcc: required revision has been compacted"


class FutureRev(KVError):
    code = "OUT_OF_RANGE"
    message = "etcdserver: mvcc: required revision is a future revision"


class TTLTooLarge(KVError):
    code = "OUT_OF_RANGE"
    message = "etcdserver: too large lease TTL"


class LeaseNotFound(KVError):
    code = "NOT_FOUND"
    message = "etcdserver: requested lease not found"


class LeaseExist(KVError):
    code = "FAILED_PRECONDITION"
    message = "etcdserver: lease already exists"


class NoLeader(KVError):
    code = "UNAVAILABLE"
    message = "etcdserver: no leader"


class NotLeader(KVError):
    """etcd's ErrGRPCNotLeader: the request (a leadership transfer) must go to the leader."""

    code = "FAILED_PRECONDITION"
    message = "etcdserver: not leader"


class BadLeaderTransferee(KVError):
    code = "FAILED_PRECONDITION"
    message = "etcdserver: bad leader transferee"


class LeaderTransferTimeout(KVError):
    code = "UNAVAILABLE"
    message = "etcdserver: request timed out, leader transfer took too long"


class RequestTimeout(KVError):
    """etcd's ErrTimeout: the request was not applied in time (it may still be)."""

    code = "UNAVAILABLE"
    message = "etcdserver: request timed out"


class ServerStopped(KVError):
    code = "UNAVAILABLE"
    message = "etcdserver: server stopped"


class StaleSequence(KVError):
    """A retried command whose seq is older than the session's last applied one (thesis §6.3)."""

    code = "FAILED_PRECONDITION"
    message = "raftkv: session sequence number is older than the last applied one"


ERRORS: dict[str, type[KVError]] = {
    cls.__name__: cls
    for cls in (
        EmptyKey, KeyNotFound, ValueProvided, LeaseProvided, TooManyOps, DuplicateKey,
        InvalidSortOption, RequestTooLarge, Compacted, FutureRev, TTLTooLarge, LeaseNotFound,
        LeaseExist, NoLeader, StaleSequence, NotLeader, BadLeaderTransferee,
        LeaderTransferTimeout, RequestTimeout, ServerStopped,
    )
}  # fmt: skip
"""Every KV error by class name: how a cached error is stored in a snapshot and read back."""
