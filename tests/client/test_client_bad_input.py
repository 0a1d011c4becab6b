"""Bad input on the native port: an error to that client only; everyone else is served."""

from __future__ import annotations

import asyncio
import random

import msgspec

from cluster import ThreadCluster
from raftkv.client import AsyncClient
from raftkv.kv import PutRequest, RangeRequest
from raftkv.kv.wire import (
    ClientFrame,
    ClientRequest,
    ClientResponse,
    UnknownRequest,
    decode_response,
    encode,
    error_from_response,
)
from raftkv.server.native import NativeProtocol
from raftkv.transport.framing import (
    CLIENT_MAGIC,
    DEFAULT_MAX_FRAME,
    FRAME_HEADER,
    Frame,
    FrameDecoder,
    encode_frame,
)


async def exchange(endpoint: str, data: bytes) -> tuple[list[Frame], bool]:
    """Send ``data``; return the frames received until EOF (or 5 s) and whether EOF came."""
    host, port = endpoint.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    dec = FrameDecoder(DEFAULT_MAX_FRAME)
    frames: list[Frame] = []
    eof = False
    try:
        async with asyncio.timeout(5):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    eof = True
                    break
                frames += dec.feed(chunk)
                if frames and frames[-1].type == ClientFrame.RESPONSE and len(frames) >= 2:
                    break
    except TimeoutError:
        pass
    writer.close()
    return frames, eof


def request(rid: int, body: object) -> bytes:
    return encode_frame(ClientFrame.REQUEST, encode(ClientRequest(rid, body)))  # type: ignore[arg-type]


async def still_serving(endpoints: list[str]) -> None:
    async with AsyncClient(endpoints, command_timeout=5) as c:
        await c.put("bad/ok", "yes")
        assert (await c.get("bad/ok")).kvs[0].value == b"yes"


def test_random_bytes_get_an_error_frame_and_close(cluster: ThreadCluster) -> None:
    async def body() -> None:
        rnd = random.Random(7)
        garbage = bytes([0x00, 0x00, 0x00, 0x10, 0x07]) + rnd.randbytes(200)
        frames, eof = await exchange(cluster.endpoints[0], CLIENT_MAGIC + garbage)
        assert eof
        assert [f.type for f in frames] == [ClientFrame.ERROR]
        assert b"unknown frame type 0x07" in frames[0].payload
        assert b"\n" not in frames[0].payload
        await still_serving([cluster.endpoints[0]])

    asyncio.run(body())


def test_oversized_frame_gets_an_error_and_close(cluster: ThreadCluster) -> None:
    async def body() -> None:
        header = FRAME_HEADER.pack(DEFAULT_MAX_FRAME + 1, ClientFrame.REQUEST)
        frames, eof = await exchange(cluster.endpoints[1], CLIENT_MAGIC + header + b"x" * 100)
        assert eof
        assert [f.type for f in frames] == [ClientFrame.ERROR]
        assert b"exceeds the maximum frame size" in frames[0].payload
        await still_serving([cluster.endpoints[1]])

    asyncio.run(body())


def test_malformed_request_payload_gets_an_error_and_close(cluster: ThreadCluster) -> None:
    async def body() -> None:
        bad = encode_frame(ClientFrame.REQUEST, b"\xc1\xc1 not msgpack")
        frames, eof = await exchange(cluster.endpoints[0], CLIENT_MAGIC + bad)
        assert eof and [f.type for f in frames] == [ClientFrame.ERROR]
        assert frames[0].payload.startswith(b"malformed request frame")

    asyncio.run(body())


def test_unknown_request_type_gets_an_error_answer_and_the_connection_stays(
    cluster: ThreadCluster,
) -> None:
    async def body() -> None:
        unknown = encode_frame(
            ClientFrame.REQUEST, msgspec.msgpack.encode([7, ["frobnicate", 1], 0, 0])
        )
        good = request(8, PutRequest(b"bad/after", b"1"))
        frames, eof = await exchange(cluster.endpoints[2], CLIENT_MAGIC + unknown + good)
        assert not eof
        answers = {r.id: r for r in (decode_response(f.payload) for f in frames)}
        err = error_from_response(answers[7])
        assert isinstance(err, UnknownRequest) and answers[7].error_code == "UNIMPLEMENTED"
        assert answers[8].body is not None and answers[8].error == ""
        await still_serving(cluster.endpoints)

    asyncio.run(body())


def test_native_protocol_takes_the_magic_itself_and_refuses_a_wrong_one(
    cluster: ThreadCluster,
) -> None:
    service = cluster.members[1].service
    assert service is not None

    async def serve() -> asyncio.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: NativeProtocol(service), "127.0.0.1", 0
        )

    server = cluster.run(serve())
    ep = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def body() -> None:
        frames, eof = await exchange(ep, b"GET / HTTP/1.1\r\n\r\n")
        assert eof and [f.type for f in frames] == [ClientFrame.ERROR]
        assert b"bad magic" in frames[0].payload
        # Byte by byte: the magic and a frame may arrive in any pieces.
        host, port = ep.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        for b in CLIENT_MAGIC + request(1, RangeRequest(b"bad/ok", serializable=True)):
            writer.write(bytes([b]))
            await writer.drain()
        dec = FrameDecoder(DEFAULT_MAX_FRAME)
        frames = []
        while not frames:
            frames = dec.feed(await asyncio.wait_for(reader.read(65536), 5))
        resp: ClientResponse = decode_response(frames[0].payload)
        assert resp.id == 1 and resp.body is not None
        writer.close()
        await still_serving([ep])

    try:
        asyncio.run(body())
    finally:
        server.close()


def test_a_value_over_the_request_limit_gets_etcds_error_and_the_connection_stays(
    cluster: ThreadCluster,
) -> None:
    from raftkv.kv import RequestTooLarge

    async def body() -> None:
        big = b"v" * (1536 * 1024 + 1)  # over etcd's --max-request-bytes, under the frame limit
        async with AsyncClient([cluster.endpoints[0]], command_timeout=5) as c:
            try:
                await c.put("bad/big", big)
            except RequestTooLarge as e:
                assert str(e) == "etcdserver: request is too large"
            else:
                raise AssertionError("a request over the limit was accepted")
            await c.put("bad/small", "fine")  # the same connection goes on
            assert not (await c.get("bad/big")).kvs
        await still_serving(cluster.endpoints)

    asyncio.run(body())
