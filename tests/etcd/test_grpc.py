"""etcd's gRPC API from a Python gRPC client (grpclib with the generated stubs): bad input
(malformed protobuf, unknown methods, garbage after the HTTP/2 preface, oversized requests) gets
etcd's answer and the member keeps serving; no leader is UNAVAILABLE; many watches share a
stream."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError

from raftkv.localcluster import LocalCluster
from raftkv.server.etcdpb import rpc_grpc
from raftkv.server.etcdpb import rpc_pb2 as pb


class RawCodec(CodecBase):
    """Sends and receives message bytes as they are."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return data


async def _unary(port: int, method: str, payload: bytes) -> bytes:
    ch = Channel("127.0.0.1", port, codec=RawCodec())
    try:
        return await _call(ch, method, payload)
    finally:
        ch.close()


async def _call(ch: Channel, method: str, payload: bytes) -> bytes:
    async with ch.request(method, Cardinality.UNARY_UNARY, bytes, bytes, timeout=5) as stream:
        await stream.send_message(payload, end=True)
        reply = await stream.recv_message()
        assert reply is not None
        return reply


async def _put_get(port: int, key: bytes, value: bytes) -> pb.RangeResponse:
    ch = Channel("127.0.0.1", port)
    try:
        kv = rpc_grpc.KVStub(ch)
        await kv.Put(pb.PutRequest(key=key, value=value), timeout=5)
        return await kv.Range(pb.RangeRequest(key=key), timeout=5)
    finally:
        ch.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_malformed_unknown_and_oversized(rkv: LocalCluster) -> None:
    port = rkv.members[0].client_port
    with pytest.raises(GRPCError) as e:
        run(_unary(port, "/etcdserverpb.KV/Put", b"\xff\xff\xff\xff"))
    assert e.value.status is Status.INTERNAL
    assert e.value.message and e.value.message.startswith("grpc: error unmarshalling request")
    with pytest.raises(GRPCError) as e:
        run(_unary(port, "/etcdserverpb.KV/NoSuchMethod", b""))
    assert e.value.status is Status.UNIMPLEMENTED
    with pytest.raises(GRPCError) as e:
        run(_unary(port, "/etcdserverpb.Auth/UserAdd", b""))
    assert e.value.status is Status.UNIMPLEMENTED
    big = pb.PutRequest(key=b"big", value=b"x" * (200 * 1024)).SerializeToString()
    with pytest.raises(GRPCError) as e:
        run(_unary(port, "/etcdserverpb.KV/Put", big))
    assert (e.value.status, e.value.message) == (
        Status.INVALID_ARGUMENT, "etcdserver: request is too large"
    )
    # garbage after the HTTP/2 preface: that connection ends, the member goes on
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\xff" * 64)
        s.settimeout(5)
        with pytest.raises((ConnectionError, TimeoutError, OSError)):
            while s.recv(4096):
                pass
            raise ConnectionError("closed")
    resp = run(_put_get(port, b"alive", b"yes"))
    assert [(kv.key, kv.value) for kv in resp.kvs] == [(b"alive", b"yes")]
    assert resp.header.member_id and resp.header.cluster_id and resp.header.raft_term


def test_no_leader_is_unavailable(rkv: LocalCluster) -> None:
    """A member cut off from the others answers writes with UNAVAILABLE etcd's no leader."""
    port = rkv.members[2].client_port

    async def put_alone() -> None:
        ch = Channel("127.0.0.1", port)
        try:
            await rpc_grpc.KVStub(ch).Put(pb.PutRequest(key=b"k", value=b"v"), timeout=15)
        finally:
            ch.close()

    from etcd_helpers import wait_until

    from raftkv.localcluster import http_json

    ids = [rkv.status(i)["member_id"] for i in range(3)]  # type: ignore[index]
    others = [ids[0], ids[1]]
    try:
        for i, m in enumerate(rkv.members):
            drop = others if i == 2 else [ids[2]]
            assert http_json(m.client_url + "/raftkv/v1/debug/partition", {"drop": drop})[0] == 200
        wait_until(lambda: (rkv.status(2) or {}).get("lead") == 0, timeout=15, what="no leader")
        with pytest.raises(GRPCError) as e:
            run(put_alone())
        assert (e.value.status, e.value.message) == (Status.UNAVAILABLE, "etcdserver: no leader")
    finally:
        for m in rkv.members:
            http_json(m.client_url + "/raftkv/v1/debug/heal", {})
    rkv.wait_ready(20)


def test_many_watches_on_one_stream(rkv: LocalCluster) -> None:
    """Create, progress and cancel on one bidirectional stream, ids counted from 0 per stream."""
    port = rkv.members[0].client_port

    async def scenario() -> list[pb.WatchResponse]:
        ch = Channel("127.0.0.1", port)
        got: list[pb.WatchResponse] = []
        try:
            kv = rpc_grpc.KVStub(ch)
            async with rpc_grpc.WatchStub(ch).Watch.open(timeout=15) as stream:
                for key in (b"mw/a", b"mw/b"):
                    await stream.send_message(
                        pb.WatchRequest(create_request=pb.WatchCreateRequest(key=key))
                    )
                    got.append(await stream.recv_message())  # created
                await kv.Put(pb.PutRequest(key=b"mw/b", value=b"1"))
                got.append(await stream.recv_message())  # event on watch 1
                await stream.send_message(
                    pb.WatchRequest(progress_request=pb.WatchProgressRequest())
                )
                got.append(await stream.recv_message())  # progress, id -1
                await stream.send_message(
                    pb.WatchRequest(cancel_request=pb.WatchCancelRequest(watch_id=0))
                )
                got.append(await stream.recv_message())  # canceled 0
                await kv.Put(pb.PutRequest(key=b"mw/a", value=b"2"))  # watch 0 is gone
                await kv.Put(pb.PutRequest(key=b"mw/b", value=b"3"))
                got.append(await stream.recv_message())  # event on watch 1
                await stream.cancel()
        finally:
            ch.close()
        return got

    got = run(scenario())
    assert [(r.watch_id, r.created, r.canceled) for r in got] == [
        (0, True, False), (1, True, False), (1, False, False), (-1, False, False),
        (0, False, True), (1, False, False),
    ]  # fmt: skip
    assert [(e.kv.key, e.kv.value) for e in got[2].events] == [(b"mw/b", b"1")]
    assert got[3].header.revision == got[2].header.revision
    assert [(e.kv.key, e.kv.value) for e in got[5].events] == [(b"mw/b", b"3")]
    assert got[5].header.revision == got[2].header.revision + 2


def test_progress_notify_watches_get_periodic_progress(rkv: LocalCluster) -> None:
    """A watch created with progress_notify gets a progress notification (its id, no events,
    the current revision) every --experimental-watch-progress-notify-interval (300ms for these
    members); a watch without it never does, and events still arrive in between."""
    port = rkv.members[0].client_port

    async def scenario() -> tuple[list[pb.WatchResponse], list[pb.WatchResponse]]:
        ch = Channel("127.0.0.1", port)
        try:
            kv = rpc_grpc.KVStub(ch)
            async with rpc_grpc.WatchStub(ch).Watch.open(timeout=30) as stream:
                for key, notify in ((b"pn/a", True), (b"pn/b", False)):
                    create = pb.WatchCreateRequest(key=key, progress_notify=notify)
                    await stream.send_message(pb.WatchRequest(create_request=create))
                    assert (await stream.recv_message()).created
                before = [await stream.recv_message() for _ in range(3)]
                put = await kv.Put(pb.PutRequest(key=b"pn/a", value=b"1"))
                after: list[pb.WatchResponse] = []
                while len([r for r in after if not r.events]) < 2:
                    after.append(await stream.recv_message())
                await stream.cancel()
                assert put.header.revision > 0
        finally:
            ch.close()
        return before, after

    before, after = run(scenario())
    for r in before:  # progress only, and only for watch 0
        assert (r.watch_id, len(r.events), r.created, r.canceled) == (0, 0, False, False)
        assert r.header.revision > 0 and r.compact_revision == 0
    events = [r for r in after if r.events]
    assert [(r.watch_id, [e.kv.value for e in r.events]) for r in events] == [(0, [b"1"])]
    progress = [r for r in after if not r.events]
    assert {r.watch_id for r in progress} == {0}
    assert all(r.header.revision >= events[0].header.revision for r in progress)
