"""Length-prefixed frames: the wire unit of peer (and, later, native client) connections.

A connection starts with a 4-byte magic naming its kind (``b"RKVP"`` for peers, ``b"RKVC"``
reserved for the native client protocol), sent by the dialer, so a port can sniff what a
connection speaks from its first bytes. Then both directions carry frames::

    frame: length u32 (big-endian, payload bytes only) | type u8 | payload

``FrameDecoder`` is sans-IO in the style of h11: feed it bytes as they arrive, get whole frames
back; it raises ``FrameError`` on a bad type byte and ``FrameTooLarge`` as soon as a length
prefix exceeds the limit (before buffering the payload). Types 0x01-0x3f are the peer protocol's
(``FrameType``); 0x40-0x7f are reserved for the native client protocol.

The peer protocol's payloads:

- ``HELLO`` / ``HELLO_OK`` / ``HELLO_ERR``: see ``raftkv.transport.handshake``.
- ``MESSAGES``: a msgpack array of ``raftkv.raft.Message``; a writer coalesces every message
  pending for a peer into as few of these as the frame limit allows.
- ``SNAP_BEGIN`` + ``SNAP_CHUNK``...: an ``InstallSnapshot`` whose data may be larger than a
  frame. ``SNAP_BEGIN`` is the total data length (u64 big-endian) followed by the encoded message
  with empty snapshot data; ``SNAP_CHUNK`` payloads are consecutive raw slices of the data. The
  receiver delivers one whole ``InstallSnapshot`` once the announced length has arrived.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Collection, Iterable, Sequence

import msgspec

from raftkv.raft.messages import InstallSnapshot, Message, decode_message, encode_message
from raftkv.transport.errors import FrameError, FrameTooLarge

PEER_MAGIC = b"RKVP"
CLIENT_MAGIC = b"RKVC"
MAGIC_LEN = 4

FRAME_HEADER = struct.Struct(">IB")
HEADER_LEN = FRAME_HEADER.size
DEFAULT_MAX_FRAME = 8 * 1024 * 1024
"""Default maximum payload size of one frame (8 MiB)."""

_SNAP_TOTAL = struct.Struct(">Q")
_ARRAY_HEADER_MAX = 5  # msgpack array32 header


class FrameType(enum.IntEnum):
    """The peer protocol's frame types."""

    HELLO = 0x01
    HELLO_OK = 0x02
    HELLO_ERR = 0x03
    MESSAGES = 0x04
    SNAP_BEGIN = 0x05
    SNAP_CHUNK = 0x06


PEER_FRAME_TYPES: frozenset[int] = frozenset(FrameType)
CLIENT_FRAME_TYPES: frozenset[int] = frozenset(range(0x40, 0x80))


class Frame(msgspec.Struct, frozen=True, gc=False):
    """One frame: its type byte and payload."""

    type: int
    payload: bytes


def encode_frame_header(type: int, length: int) -> bytes:
    """The 5-byte header of a frame of ``length`` payload bytes (for zero-copy writes)."""
    return FRAME_HEADER.pack(length, type)


def encode_frame(type: int, payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One whole frame as bytes.

    Raises:
        ValueError: ``type`` is not a byte or the payload does not fit a u32 length.
    """
    if not 0 <= type <= 0xFF:
        raise ValueError(f"frame type {type} is not a byte")
    if len(payload) >= 1 << 32:
        raise ValueError(f"frame payload of {len(payload)} bytes does not fit a u32 length")
    return FRAME_HEADER.pack(len(payload), type) + bytes(payload)


class FrameDecoder:
    """Bytes in, frames out. Sans-IO: the caller owns the socket.

    Args:
        max_frame_size: the largest payload accepted; a larger length prefix raises
            ``FrameTooLarge`` at once.
        frame_types: the accepted type bytes; ``None`` accepts every byte.

    After it has raised, the decoder refuses further input (the stream is out of sync).
    """

    def __init__(
        self, max_frame_size: int = DEFAULT_MAX_FRAME, frame_types: Collection[int] | None = None
    ) -> None:
        if max_frame_size <= 0:
            raise ValueError("max_frame_size must be positive")
        self.max_frame_size = max_frame_size
        self._types = frame_types
        self._buf = bytearray()
        self._failed: FrameError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes; return every frame they complete, in order.

        Raises:
            FrameTooLarge: a length prefix exceeds ``max_frame_size``.
            FrameError: a type byte is not accepted, or the decoder failed before.
        """
        if self._failed is not None:
            raise FrameError(f"decoder already failed: {self._failed}")
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        try:
            while end - pos >= HEADER_LEN:
                length, ftype = FRAME_HEADER.unpack_from(buf, pos)
                if length > self.max_frame_size:
                    raise FrameTooLarge(length, self.max_frame_size)
                if self._types is not None and ftype not in self._types:
                    raise FrameError(f"unknown frame type 0x{ftype:02x}")
                start = pos + HEADER_LEN
                if end - start < length:
                    break
                frames.append(Frame(ftype, bytes(buf[start : start + length])))
                pos = start + length
        except FrameError as e:
            self._failed = e
            self._buf = bytearray()
            raise
        if pos:
            del buf[:pos]
        return frames


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def messages_payload(encoded: Sequence[bytes]) -> bytes:
    """A ``MESSAGES`` payload from messages already encoded with ``encode_message``."""
    return _array_header(len(encoded)) + b"".join(encoded)


def message_frames(encoded: Iterable[bytes], max_frame_size: int) -> list[bytes]:
    """Pack encoded messages, in order, into as few ``MESSAGES`` frames as fit the limit.

    Raises:
        FrameTooLarge: one message alone does not fit a frame.
    """
    frames: list[bytes] = []
    group: list[bytes] = []
    size = _ARRAY_HEADER_MAX
    for enc in encoded:
        n = len(enc)
        if n + _ARRAY_HEADER_MAX > max_frame_size:
            raise FrameTooLarge(n + _ARRAY_HEADER_MAX, max_frame_size)
        if group and size + n > max_frame_size:
            frames.append(encode_frame(FrameType.MESSAGES, messages_payload(group)))
            group, size = [], _ARRAY_HEADER_MAX
        group.append(enc)
        size += n
    if group:
        frames.append(encode_frame(FrameType.MESSAGES, messages_payload(group)))
    return frames


_batch_decoder: msgspec.msgpack.Decoder[list[Message]] = msgspec.msgpack.Decoder(list[Message])


def decode_messages(payload: bytes) -> list[Message]:
    """The messages of a ``MESSAGES`` payload.

    Raises:
        FrameError: the payload is not a msgpack array of valid messages.
    """
    try:
        return _batch_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise FrameError(f"malformed messages frame: {e}") from None


def snapshot_begin_payload(m: InstallSnapshot) -> bytes:
    """The ``SNAP_BEGIN`` payload of ``m``: total data length + the message without its data."""
    header = msgspec.structs.replace(m, snapshot=msgspec.structs.replace(m.snapshot, data=b""))
    return _SNAP_TOTAL.pack(len(m.snapshot.data)) + encode_message(header)


def decode_snapshot_begin(payload: bytes) -> tuple[InstallSnapshot, int]:
    """The header message and total data length of a ``SNAP_BEGIN`` payload.

    Raises:
        FrameError: the payload is malformed or does not hold an InstallSnapshot.
    """
    if len(payload) < _SNAP_TOTAL.size:
        raise FrameError("malformed snapshot frame: too short")
    (total,) = _SNAP_TOTAL.unpack_from(payload)
    try:
        m = decode_message(payload[_SNAP_TOTAL.size :])
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise FrameError(f"malformed snapshot frame: {e}") from None
    if not isinstance(m, InstallSnapshot):
        raise FrameError(f"snapshot frame holds a {type(m).__name__}, not an InstallSnapshot")
    return m, total


class SnapshotAssembler:
    """Receiving side of one connection's snapshot stream: ``SNAP_BEGIN`` then chunks.

    Args:
        max_snapshot_size: the largest snapshot data accepted (guards memory).
    """

    def __init__(self, max_snapshot_size: int) -> None:
        self.max_snapshot_size = max_snapshot_size
        self._header: InstallSnapshot | None = None
        self._total = 0
        self._buf = bytearray()

    @property
    def in_progress(self) -> bool:
        return self._header is not None

    def begin(self, payload: bytes) -> InstallSnapshot | None:
        """Start a snapshot; returns it at once when its data is empty.

        Raises:
            FrameError: malformed payload, a snapshot already in progress, or too large.
        """
        if self._header is not None:
            raise FrameError("snapshot begin frame while another snapshot is in progress")
        m, total = decode_snapshot_begin(payload)
        if total > self.max_snapshot_size:
            raise FrameError(
                f"snapshot of {total} bytes exceeds the maximum of {self.max_snapshot_size}"
            )
        if total == 0:
            return m
        self._header, self._total, self._buf = m, total, bytearray()
        return None

    def chunk(self, payload: bytes) -> InstallSnapshot | None:
        """Add a chunk; returns the whole InstallSnapshot once the last chunk arrived.

        Raises:
            FrameError: no snapshot in progress, or more data than announced.
        """
        if self._header is None:
            raise FrameError("snapshot chunk frame without a snapshot begin frame")
        if len(self._buf) + len(payload) > self._total:
            raise FrameError(f"snapshot chunks exceed the announced {self._total} bytes")
        self._buf += payload
        if len(self._buf) < self._total:
            return None
        header, data = self._header, bytes(self._buf)
        self._header, self._total, self._buf = None, 0, bytearray()
        return msgspec.structs.replace(
            header, snapshot=msgspec.structs.replace(header.snapshot, data=data)
        )
