"""The machine's edges: entries, encoding, errors' texts and codes, request size limit."""

from __future__ import annotations

import msgspec
import pytest

from raftkv import kv as kvpkg
from raftkv.kv import (
    MAX_REQUEST_BYTES,
    Compare,
    CompareResult,
    CompareTarget,
    Envelope,
    KVError,
    KVStateMachine,
    PutRequest,
    PutResponse,
    RangeRequest,
    RequestTooLarge,
    TxnRequest,
    check_request_size,
    decode_command,
    encode_command,
)
from raftkv.kv.errors import ERRORS
from raftkv.raft import Entry, EntryType

ETCD_ERRORS = {
    "EmptyKey": ("INVALID_ARGUMENT", "etcdserver: key is not provided"),
    "KeyNotFound": ("INVALID_ARGUMENT", "etcdserver: key not found"),
    "ValueProvided": ("INVALID_ARGUMENT", "etcdserver: value is provided"),
    "LeaseProvided": ("INVALID_ARGUMENT", "etcdserver: lease is provided"),
    "TooManyOps": ("INVALID_ARGUMENT", "etcdserver: too many operations in txn request"),
    "DuplicateKey": ("INVALID_ARGUMENT", "etcdserver: duplicate key given in txn request"),
    "RequestTooLarge": ("INVALID_ARGUMENT", "etcdserver: request is too large"),
    "Compacted": ("OUT_OF_RANGE", "etcdserver: mvcc: required revision has been compacted"),
    "FutureRev": ("OUT_OF_RANGE", "etcdserver: mvcc: required revision is a future revision"),
    "TTLTooLarge": ("OUT_OF_RANGE", "etcdserver: too large lease TTL"),
    "LeaseNotFound": ("NOT_FOUND", "etcdserver: requested lease not found"),
    "LeaseExist": ("FAILED_PRECONDITION", "etcdserver: lease already exists"),
    "NoLeader": ("UNAVAILABLE", "etcdserver: no leader"),
}


@pytest.mark.parametrize("name", sorted(ETCD_ERRORS))
def test_errors_carry_etcds_text_and_grpc_code(name: str) -> None:
    cls = getattr(kvpkg, name)
    assert issubclass(cls, KVError) and ERRORS[name] is cls
    assert (cls.code, str(cls())) == ETCD_ERRORS[name]


def test_commands_round_trip_through_msgpack() -> None:
    cmd = TxnRequest(
        (Compare(CompareResult.GREATER, CompareTarget.MOD, b"k", mod_revision=3),),
        (PutRequest(b"k", b"\x00\xff", lease=5), TxnRequest((), (RangeRequest(b"a", b"\x00"),))),
    )
    data = encode_command(cmd, client_id=3, seq=9, now_ms=1234)
    assert decode_command(data) == Envelope(cmd, 3, 9, 1234)
    with pytest.raises(msgspec.DecodeError):
        decode_command(b"\x93garbage")


def test_apply_handles_noops_and_conf_changes() -> None:
    m = KVStateMachine()
    entries = [
        Entry(1, 1, b""),
        Entry(1, 2, b"opaque conf change", EntryType.CONF_CHANGE),
        Entry(1, 3, encode_command(PutRequest(b"k", b"v"))),
    ]
    results = m.apply(entries)
    assert results[:2] == [None, None]
    assert isinstance(results[2], PutResponse) and results[2].header.revision == 2
    assert m.applied_index == 3


def test_request_size_limit() -> None:
    assert MAX_REQUEST_BYTES == 1_572_864
    check_request_size(encode_command(PutRequest(b"k", b"x" * 1_500_000)))
    with pytest.raises(RequestTooLarge):
        check_request_size(encode_command(PutRequest(b"k", b"x" * MAX_REQUEST_BYTES)))


def test_reads_without_the_log_raise_typed_errors() -> None:
    m = KVStateMachine()
    with pytest.raises(KVError) as e:
        m.read(RangeRequest(b"k", revision=5))
    assert e.value.code == "OUT_OF_RANGE"
