"""Bad input on the peer port: each offending connection is closed with a one-line log message,
and the transport keeps serving its real peers."""

from __future__ import annotations

import asyncio
import logging
import random

import msgspec
import pytest

from conftest import CLUSTER_ID, Member, cluster, retry_until, run, stop_all, wait_until
from raftkv.raft.messages import Heartbeat, Message
from raftkv.transport import PEER_MAGIC, FrameDecoder, FrameType, Hello, encode_frame
from raftkv.transport.framing import PEER_FRAME_TYPES, encode_frame_header, messages_payload
from raftkv.transport.handshake import PROTOCOL_VERSION, encode_hello

LOGGER = "raftkv.transport"


def hb(frm: int, to: int, commit: int) -> Message:
    return Heartbeat(to=to, frm=frm, term=1, commit=commit)


async def raw_exchange(addr: tuple[str, int], data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; return everything received until the server closes."""
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # read() to EOF: the server closed
    finally:
        writer.close()


async def after_handshake(addr: tuple[str, int], hello_bytes: bytes, data: bytes) -> bytes:
    """Complete a valid handshake, then send ``data``; return what came after HELLO_OK."""
    reader, writer = await asyncio.open_connection(*addr)
    try:
        writer.write(hello_bytes)
        ok = await asyncio.wait_for(reader.readexactly(5), 10)
        assert ok == encode_frame(FrameType.HELLO_OK)
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def still_serving(members: list[Member], commit: int) -> None:
    a, b = members[0], members[1]
    before = len(a.received)
    await retry_until(lambda: b.t.send([hb(2, 1, commit)]), lambda: len(a.received) > before)
    assert a.received[-1] == hb(2, 1, commit)


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_bytes_refused(seed: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)

    async def body() -> None:
        members = await cluster(2)
        try:
            await still_serving(members, 1)
            garbage = random.Random(seed).randbytes(5000)
            assert await raw_exchange(members[0].addr, garbage) == b""
            await wait_until(lambda: any("bad magic" in m for m in refusals(caplog)))
            await still_serving(members, 2)
        finally:
            await stop_all(members)

    run(body())
    (line,) = [m for m in refusals(caplog) if "bad magic" in m]
    assert line.startswith("node 1: refused peer connection from 127.0.0.1:")
    assert "\n" not in line


def hello(cluster_id: int = CLUSTER_ID, frm: int = 2, to: int = 1) -> bytes:
    return encode_hello(Hello(PROTOCOL_VERSION, cluster_id, frm, to))


def test_oversized_length_prefix_closes_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)

    async def body() -> None:
        members = await cluster(2, max_frame_size=1 << 16)
        try:
            # after a valid handshake
            header = encode_frame_header(FrameType.MESSAGES, 1 << 30)
            assert await after_handshake(members[0].addr, hello(), header) == b""
            await wait_until(
                lambda: any("closed connection from peer 2" in m for m in refusals(caplog))
            )
            assert any("exceeds the maximum frame size" in m for m in refusals(caplog))
            # and in place of a hello
            await raw_exchange(members[0].addr, PEER_MAGIC + b"\x7f\xff\xff\xff\x01")
            await wait_until(
                lambda: any("refused" in m and "exceeds" in m for m in refusals(caplog))
            )
            # bytes pipelined after the hello, before its answer
            await raw_exchange(members[0].addr, hello() + encode_frame(FrameType.MESSAGES, b"\x90"))
            await wait_until(lambda: any("before the handshake" in m for m in refusals(caplog)))
            await still_serving(members, 3)
        finally:
            await stop_all(members)

    run(body())


def test_wrong_cluster_hello_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)

    async def body() -> None:
        members = await cluster(2)
        try:
            answer = await raw_exchange(members[0].addr, hello(cluster_id=0xBAD))
            (frame,) = FrameDecoder(frame_types=PEER_FRAME_TYPES).feed(answer)
            assert frame.type == FrameType.HELLO_ERR
            assert b"cluster id mismatch" in frame.payload
            for bad, why in [
                (hello(frm=99), "not a member"),
                (hello(to=7), "dialed member 7"),
                (PEER_MAGIC + encode_frame(FrameType.HELLO, b"\xc1junk"), "malformed hello"),
                (PEER_MAGIC + encode_frame(FrameType.MESSAGES, b"\x90"), "expected a hello"),
            ]:
                await raw_exchange(members[0].addr, bad)
                await wait_until(lambda why=why: any(why in m for m in refusals(caplog)), what=why)
            await still_serving(members, 4)
        finally:
            await stop_all(members)

    run(body())
    assert any("cluster id mismatch" in m for m in refusals(caplog))


def test_member_of_another_cluster_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)

    async def body() -> None:
        members = await cluster(2)
        intruder = Member(2, cluster_id=0xBAD)
        await intruder.t.start("127.0.0.1", 0)
        intruder.t.add_peer(1, members[0].addr)
        try:
            intruder.t.send([hb(2, 1, 99)])
            await wait_until(lambda: intruder.t.stats()[1].connect_failures >= 1)
            assert 1 in intruder.unreachable
            await still_serving(members, 5)
            assert hb(2, 1, 99) not in members[0].received
        finally:
            await stop_all([*members, intruder])

    run(body())
    msgs = refusals(caplog)
    assert any(m.startswith("node 1: refused peer connection") and "cluster" in m for m in msgs)
    assert any(m.startswith("node 2: cannot reach peer 1") and "refused" in m for m in msgs)


def test_bad_frames_after_handshake_close_connection(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)

    async def body() -> None:
        members = await cluster(2)
        enc = msgspec.msgpack.encode
        try:
            for data, why in [
                (encode_frame(FrameType.MESSAGES, b"\x91\xc1"), "malformed messages frame"),
                (encode_frame(0x33, b""), "unknown frame type"),
                (encode_frame(FrameType.HELLO, b""), "unexpected frame type"),
                (encode_frame(FrameType.SNAP_CHUNK, b"x"), "without a snapshot begin"),
                # a message claiming to come from another member than the handshake said
                (
                    encode_frame(FrameType.MESSAGES, messages_payload([enc(hb(3, 1, 1))])),
                    "message from 3 to 1 on the connection from peer 2",
                ),
            ]:
                assert await after_handshake(members[0].addr, hello(), data) == b""
                await wait_until(lambda why=why: any(why in m for m in refusals(caplog)), what=why)
            await still_serving(members, 6)
        finally:
            await stop_all(members)

    run(body())


def test_silent_connection_times_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)

    async def body() -> None:
        members = await cluster(2, connect_timeout=0.2)
        try:
            assert await raw_exchange(members[0].addr, b"RK") == b""
            await wait_until(lambda: any("during the handshake" in m for m in refusals(caplog)))
            await still_serving(members, 7)
        finally:
            await stop_all(members)

    run(body())
