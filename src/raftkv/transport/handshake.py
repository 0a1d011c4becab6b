"""The peer handshake: who is dialing whom, in which cluster.

The dialer writes the peer magic and a ``HELLO`` frame in one write::

    b"RKVP" | HELLO(Hello(version, cluster_id, frm, to))

The listener checks the protocol version, the cluster id, that ``frm`` is a known member and
that ``to`` is itself, then answers ``HELLO_OK`` (empty payload) or ``HELLO_ERR`` (a one-line
UTF-8 reason) and closes. After ``HELLO_OK`` the connection carries frames from the dialer to
the listener only: each member dials each peer for the messages it sends to that peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container

import msgspec

from raftkv.transport.errors import FrameError, HandshakeError, one_line
from raftkv.transport.framing import (
    MAGIC_LEN,
    PEER_FRAME_TYPES,
    PEER_MAGIC,
    Frame,
    FrameDecoder,
    FrameType,
    encode_frame,
)

PROTOCOL_VERSION = 1
HELLO_MAX = 4096
"""The largest hello/answer payload read before the connection is known (guards memory)."""


class Hello(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The dialer's introduction: ``frm`` believes it is dialing ``to`` in ``cluster_id``."""

    version: int
    cluster_id: int
    frm: int
    to: int


_hello_decoder = msgspec.msgpack.Decoder(Hello)
_encoder = msgspec.msgpack.Encoder()


def encode_hello(hello: Hello) -> bytes:
    """The magic and the ``HELLO`` frame the dialer sends first."""
    return PEER_MAGIC + encode_frame(FrameType.HELLO, _encoder.encode(hello))


def decode_hello(payload: bytes) -> Hello:
    """Raises ``HandshakeError`` when the payload is not a hello."""
    try:
        return _hello_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise HandshakeError(f"malformed hello: {e}") from None


def check_hello(hello: Hello, cluster_id: int, self_id: int, members: Container[int]) -> str | None:
    """Why the listener ``self_id`` of ``cluster_id`` refuses ``hello``, or None to accept."""
    if hello.version != PROTOCOL_VERSION:
        return (
            f"protocol version {hello.version} is not supported (this member speaks "
            f"{PROTOCOL_VERSION})"
        )
    if hello.cluster_id != cluster_id:
        return (
            f"cluster id mismatch: member {hello.frm} is in cluster {hello.cluster_id}, "
            f"this member is in cluster {cluster_id}"
        )
    if hello.to != self_id:
        return f"member {hello.frm} dialed member {hello.to} but reached member {self_id}"
    if hello.frm == self_id or hello.frm not in members:
        return f"member {hello.frm} is not a member of cluster {cluster_id}"
    return None


async def _read_one_frame(reader: asyncio.StreamReader) -> Frame:
    """The one frame a handshake step expects; nothing may follow it before it is answered."""
    decoder = FrameDecoder(HELLO_MAX, PEER_FRAME_TYPES)
    while True:
        data = await reader.read(HELLO_MAX)
        if not data:
            raise HandshakeError("connection closed during the handshake")
        frames = decoder.feed(data)
        if frames:
            if len(frames) > 1 or decoder.buffered:
                raise HandshakeError("bytes sent before the handshake was answered")
            return frames[0]


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    cluster_id: int,
    self_id: int,
    members: Container[int],
) -> Hello:
    """Listener side: read the magic and hello, answer, return the accepted hello.

    Raises:
        HandshakeError: bad magic, malformed hello or refused hello (a ``HELLO_ERR`` was sent
            back when the hello could be read).
        FrameError: the first frame is malformed.
    """
    magic = await reader.readexactly(MAGIC_LEN)
    if magic != PEER_MAGIC:
        raise HandshakeError(f"bad magic {magic!r}: not a raftkv peer connection")
    first = await _read_one_frame(reader)
    if first.type != FrameType.HELLO:
        raise FrameError(f"expected a hello frame, got frame type 0x{first.type:02x}")
    hello = decode_hello(first.payload)
    reason = check_hello(hello, cluster_id, self_id, members)
    if reason is not None:
        writer.write(encode_frame(FrameType.HELLO_ERR, reason.encode()))
        await writer.drain()
        raise HandshakeError(f"refused member {hello.frm}: {reason}")
    writer.write(encode_frame(FrameType.HELLO_OK))
    await writer.drain()
    return hello


async def dial(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: Hello) -> None:
    """Dialer side: send the magic and ``hello``, wait for the answer.

    Raises:
        HandshakeError: the listener refused (its one-line reason is in the message) or closed.
    """
    writer.write(encode_hello(hello))
    await writer.drain()
    frame = await _read_one_frame(reader)
    if frame.type == FrameType.HELLO_OK:
        return
    if frame.type == FrameType.HELLO_ERR:
        reason = one_line(frame.payload.decode("utf-8", "replace"))
        raise HandshakeError(f"member {hello.to} refused the connection: {reason}")
    raise HandshakeError(f"unexpected frame type 0x{frame.type:02x} in the handshake answer")
