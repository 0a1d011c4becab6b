"""The frame codec: round trips, byte-by-byte decoding, limits and garbage."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import every_kind
from raftkv.raft.messages import InstallSnapshot, encode_message
from raftkv.raft.types import Snapshot
from raftkv.transport import Frame, FrameDecoder, FrameError, FrameTooLarge, encode_frame
from raftkv.transport.framing import (
    PEER_FRAME_TYPES,
    FrameType,
    SnapshotAssembler,
    decode_messages,
    encode_frame_header,
    message_frames,
    snapshot_begin_payload,
)

frames_st = st.lists(st.builds(Frame, st.integers(0, 255), st.binary(max_size=300)), max_size=20)


@given(frames=frames_st, cuts=st.lists(st.integers(0, 10_000), max_size=10))
def test_round_trip_any_split(frames: list[Frame], cuts: list[int]) -> None:
    data = b"".join(encode_frame(f.type, f.payload) for f in frames)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    dec = FrameDecoder(max_frame_size=300)
    out: list[Frame] = []
    for a, b in itertools.pairwise(points):
        out += dec.feed(data[a:b])
    assert out == frames
    assert dec.buffered == 0


def test_byte_by_byte() -> None:
    frames = [Frame(1, b""), Frame(4, b"hello"), Frame(6, bytes(range(256)) * 4)]
    data = b"".join(encode_frame(f.type, f.payload) for f in frames)
    dec = FrameDecoder(frame_types=PEER_FRAME_TYPES)
    out: list[Frame] = []
    for i in range(len(data)):
        got = dec.feed(data[i : i + 1])
        assert len(got) <= 1
        out += got
    assert out == frames


def test_oversized_length_prefix_rejected_at_once() -> None:
    dec = FrameDecoder(max_frame_size=1024)
    assert dec.feed(encode_frame(4, b"x" * 1024)) == [Frame(4, b"x" * 1024)]
    with pytest.raises(FrameTooLarge) as e:
        dec.feed(encode_frame_header(4, 1025))  # the header alone is enough
    assert e.value.size == 1025 and e.value.limit == 1024
    assert "exceeds the maximum frame size" in str(e.value)
    with pytest.raises(FrameError):  # the stream is out of sync: the decoder stays failed
        dec.feed(encode_frame(4, b"ok"))


def test_garbage_rejected() -> None:
    dec = FrameDecoder(frame_types=PEER_FRAME_TYPES)
    with pytest.raises(FrameError, match="unknown frame type 0xee"):
        dec.feed(b"\x00\x00\x00\x01\xee!")
    with pytest.raises(FrameTooLarge):
        FrameDecoder().feed(b"\xff\xff\xff\xff\x04garbage")


def test_encode_frame_checks_type() -> None:
    with pytest.raises(ValueError):
        encode_frame(256, b"")
    assert encode_frame(FrameType.HELLO_OK) == struct.pack(">IB", 0, 2)


def test_messages_frames_pack_in_order_within_limit() -> None:
    msgs = every_kind(1, 2) * 30
    encoded = [encode_message(m) for m in msgs]
    frames = message_frames(encoded, max_frame_size=4096)
    assert len(frames) > 1
    dec = FrameDecoder(max_frame_size=4096, frame_types=PEER_FRAME_TYPES)
    out = [m for f in dec.feed(b"".join(frames)) for m in decode_messages(f.payload)]
    assert out == msgs
    with pytest.raises(FrameTooLarge):
        message_frames([b"x" * 5000], max_frame_size=4096)


@given(n=st.sampled_from([0, 1, 15, 16, 17, 65535, 65536]))
def test_messages_array_header_sizes(n: int) -> None:
    from raftkv.transport.framing import messages_payload

    msg = every_kind(1, 2)[7]  # TimeoutNow: tiny
    assert decode_messages(messages_payload([encode_message(msg)] * n)) == [msg] * n


def test_malformed_messages_payload() -> None:
    with pytest.raises(FrameError, match="malformed messages frame"):
        decode_messages(b"\x91\xc1")


def test_snapshot_assembler() -> None:
    snap_msg = next(m for m in every_kind(1, 2) if isinstance(m, InstallSnapshot))
    asm = SnapshotAssembler(max_snapshot_size=10_000)
    assert asm.begin(snapshot_begin_payload(snap_msg)) is None
    data = snap_msg.snapshot.data
    assert asm.chunk(data[:100]) is None
    assert asm.chunk(data[100:]) == snap_msg
    assert not asm.in_progress
    empty = InstallSnapshot(to=2, frm=1, term=1, snapshot=Snapshot())
    assert asm.begin(snapshot_begin_payload(empty)) == empty
    with pytest.raises(FrameError, match="without a snapshot begin"):
        asm.chunk(b"x")
    with pytest.raises(FrameError, match="exceeds the maximum"):
        SnapshotAssembler(10).begin(snapshot_begin_payload(snap_msg))
    asm.begin(snapshot_begin_payload(snap_msg))
    with pytest.raises(FrameError, match="exceed the announced"):
        asm.chunk(data + b"!")
