"""A KVStateMachine driven through real encoded log entries, as a node would drive it."""

from __future__ import annotations

from typing import Any

from raftkv.kv import (
    Command,
    CompactionRequest,
    DeleteRangeRequest,
    KeyValue,
    KVStateMachine,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    Result,
    encode_command,
)
from raftkv.raft import Entry


class KV:
    def __init__(self, machine: KVStateMachine | None = None) -> None:
        self.m = machine or KVStateMachine()
        self.index = self.m.applied_index
        self.now_ms = 0

    def apply(self, cmd: Command, client_id: int = 0, seq: int = 0) -> Result:
        """Apply one command through an encoded entry; returns the response or the KVError."""
        self.index += 1
        data = encode_command(cmd, client_id, seq, self.now_ms)
        return self.m.apply([Entry(term=1, index=self.index, data=data)])[0]

    def ok(self, cmd: Command, **kw: Any) -> Any:
        res = self.apply(cmd, **kw)
        assert not isinstance(res, Exception), res
        return res

    def put(self, key: bytes, value: bytes = b"", **kw: Any) -> Any:
        return self.ok(PutRequest(key, value, **kw))

    def delete(self, key: bytes, range_end: bytes = b"", **kw: Any) -> Any:
        return self.ok(DeleteRangeRequest(key, range_end, **kw))

    def get(self, key: bytes, range_end: bytes = b"", **kw: Any) -> Any:
        return self.m.read(RangeRequest(key, range_end, **kw))

    def one(self, key: bytes, **kw: Any) -> KeyValue | None:
        kvs = self.get(key, **kw).kvs
        assert len(kvs) <= 1
        return kvs[0] if kvs else None

    def keys(self, key: bytes, range_end: bytes = b"", **kw: Any) -> list[bytes]:
        return [kv.key for kv in self.get(key, range_end, **kw).kvs]

    def compact(self, revision: int) -> Result:
        return self.apply(CompactionRequest(revision))

    def grant(self, ttl: int, lease_id: int = 0) -> Any:
        return self.ok(LeaseGrantRequest(ttl, lease_id))

    def revoke(self, lease_id: int) -> Result:
        return self.apply(LeaseRevokeRequest(lease_id))

    def restore(self, data: bytes) -> None:
        self.m.restore(data)
        self.index = self.m.applied_index

    @property
    def rev(self) -> int:
        return self.m.revision
